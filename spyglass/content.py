"""An indexed item's visual content, read back from its document: the photo, the page, the figure.

Used when a generator shows evidence to a model, when the API serves an item's content,
and by the OCR stage, which needs full resolution. Only paths recorded in the catalog are
opened, never a path from a client.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from spyglass.errors import ImageLoadError
from spyglass.images import open_image
from spyglass.kinds import ItemKind
from spyglass.paths import path_text, real_path
from spyglass.pdfium_lock import PDFIUM

PAGE_SCALE = 2.0  # 144 dpi: small print stays legible for a vision-language model and for OCR


def item_image(row: dict, *, max_side: int | None = 1024, max_pixels: int = 178_956_970) -> Image.Image:
    """The image an item stands for, at most ``max_side`` pixels on its longer side (None: as decoded).

    ``row`` is a catalog item row with its document ``path`` (``Catalog.items``). A figure
    is cropped from its page; a keyframe is decoded again (its thumbnail without PyAV).
    Raises :class:`ImageLoadError` when the file cannot give the pixels any more.
    """
    kind, path = row["kind"], real_path(row["path"], row.get("raw_path"))
    if kind == ItemKind.IMAGE:
        image = open_image(path, min_side=max_side // 2 if max_side else None, max_pixels=max_pixels)
    elif kind in (ItemKind.PAGE, ItemKind.FIGURE):
        bbox = json.loads(row["bbox"]) if kind == ItemKind.FIGURE and row.get("bbox") else None
        image = _render_page(path, row["page"], bbox, max_side)
    elif kind == ItemKind.KEYFRAME and (frame := _video_frame(path, row.get("timestamp") or 0.0)):
        image = frame
    elif row.get("thumbnail"):
        image = Image.open(io.BytesIO(row["thumbnail"])).convert("RGB")
    else:
        raise ImageLoadError(f"item {row['id']} ({kind}) has no visual content")
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.BICUBIC)
    return image


def content_scale(kind: str) -> float:
    """Factor from :func:`item_image` pixels to the item's own coordinates (a page's index-time render)."""
    from spyglass.pages import RENDER_SCALE

    return RENDER_SCALE / PAGE_SCALE if kind in (ItemKind.PAGE, ItemKind.FIGURE) else 1.0


def _render_page(path: Path, page: int, bbox: list[float] | None, max_side: int | None) -> Image.Image:
    """The page (or its ``bbox``, in points) rendered no larger than asked for (``max_side``, and at
    most ``PAGE_SCALE``): a small look at a page costs a small render, not a full one shrunk."""
    import pypdfium2 as pdfium

    from spyglass.pages import render_page

    with PDFIUM:
        try:  # through a Python file object: the name need not be valid UTF-8
            pdf = pdfium.PdfDocument(open(path, "rb"), autoclose=True)  # pdfium closes it
        except (pdfium.PdfiumError, OSError) as exc:
            raise ImageLoadError(f"{path_text(path)}: cannot open PDF ({exc})") from None
        try:
            sheet = pdf[page - 1]
            width, height = sheet.get_size() if bbox is None else (bbox[2] - bbox[0], bbox[3] - bbox[1])
            scale = min(PAGE_SCALE, max_side / max(width, height, 1.0)) if max_side else PAGE_SCALE
            render = render_page(sheet, scale)
        finally:
            pdf.close()
    if bbox:
        render = render.crop(tuple(round(v * scale) for v in bbox))
    return render


def _video_frame(path: Path, timestamp: float) -> Image.Image | None:
    """The first frame at or after ``timestamp``; None without PyAV or when the video cannot be read."""
    try:
        import av
    except ImportError:
        return None
    try:
        with open(path, "rb") as handle, av.open(handle) as container:
            stream = container.streams.video[0]
            container.seek(int(timestamp / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= timestamp - 1e-3:
                    return frame.to_image().convert("RGB")
    except (av.error.FFmpegError, OSError, IndexError):
        pass
    return None


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
