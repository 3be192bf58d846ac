"""Video keyframes through PyAV (optional): a frame every ``interval`` seconds and at scene changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spyglass.images import thumbnail
from spyglass.indexer.loaders.base import ItemDraft, LoadedDocument, LoadError, LoadOptions, register_loader
from spyglass.kinds import FileKind, ItemKind

INTERVAL_S = 10.0
SCENE_CHANGE = 0.25  # mean absolute difference of 16x16 colour thumbnails, 0..1 (grey misses hue cuts)
MAX_KEYFRAMES = 300


@register_loader("video/")
def load_video(path: Path, mime: str, kind: FileKind, options: LoadOptions) -> LoadedDocument:
    try:
        import av
    except ImportError:
        raise LoadError("video support needs PyAV: pip install 'spyglass[video]'") from None
    handle = open(path, "rb")  # a file object: the name need not be valid UTF-8
    try:
        container = av.open(handle)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:  # corrupt metadata is not UTF-8
        handle.close()
        raise LoadError(f"cannot open video ({exc})") from None
    document = LoadedDocument(path, kind, mime)
    try:
        stream = container.streams.video[0] if container.streams.video else None
        if stream is None:
            raise LoadError("no video stream")
        stream.thread_type = "AUTO"
        last_time, last_small = None, None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            small = np.asarray(frame.to_image().convert("RGB").resize((16, 16)), np.float32) / 255
            due = last_time is None or frame.time - last_time >= INTERVAL_S
            changed = last_small is not None and float(np.abs(small - last_small).mean()) > SCENE_CHANGE
            if due or changed:
                image = frame.to_image().convert("RGB")
                document.items.append(
                    ItemDraft(
                        kind=ItemKind.KEYFRAME,
                        image=image,
                        timestamp=round(float(frame.time), 3),
                        thumbnail=thumbnail(image),
                    )
                )
                last_time = frame.time
                if len(document.items) >= MAX_KEYFRAMES:
                    break
            last_small = small
        document.metadata["duration_s"] = (
            float(stream.duration * stream.time_base) if stream.duration else None
        )
    except av.error.FFmpegError as exc:
        if not document.items:
            raise LoadError(f"cannot decode video ({exc})") from None
    finally:
        container.close()
        handle.close()
    if not document.items:
        raise LoadError("no decodable frames")
    return document
