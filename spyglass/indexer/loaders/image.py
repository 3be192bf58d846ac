"""Images: one item per file (first frame of animations), EXIF facts as metadata, a thumbnail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

from spyglass.errors import ImageLoadError
from spyglass.images import open_image, thumbnail
from spyglass.indexer.loaders.base import ItemDraft, LoadedDocument, LoadError, LoadOptions, register_loader
from spyglass.kinds import FileKind, ItemKind


@register_loader("image/")
def load_image(path: Path, mime: str, kind: FileKind, options: LoadOptions) -> LoadedDocument:
    try:  # 192: enough for a 256 thumbnail
        image = open_image(path, min_side=max(options.min_side, 192), max_pixels=options.max_pixels)
    except ImageLoadError as exc:
        raise LoadError(str(exc).removeprefix(f"{path}: ")) from None
    metadata = {"width": image.width, "height": image.height, **exif_metadata(path)}
    item = ItemDraft(kind=ItemKind.IMAGE, image=image, thumbnail=thumbnail(image))
    return LoadedDocument(path, kind, mime, [item], metadata)


def exif_metadata(path: Path) -> dict[str, Any]:
    """Capture time (epoch seconds), camera, and GPS position in decimal degrees, when present."""
    try:
        with Image.open(path) as image:
            exif = image.getexif()
    except Exception:  # noqa: BLE001 - EXIF is a bonus; the image itself decoded fine
        return {}
    found: dict[str, Any] = {}
    details = exif.get_ifd(ExifTags.IFD.Exif)
    taken = details.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    if taken:
        try:
            found["taken_at"] = (
                datetime.strptime(str(taken).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
                .replace(tzinfo=UTC)
                .timestamp()
            )
        except ValueError:
            pass
    camera = " ".join(
        str(exif.get(tag, "")).strip("\x00 ") for tag in (ExifTags.Base.Make, ExifTags.Base.Model)
    ).strip()
    if camera:
        found["camera"] = camera
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    for key, ref, name in ((2, 1, "gps_lat"), (4, 3, "gps_lon")):
        if key in gps:
            try:
                degrees, minutes, seconds = (float(v) for v in gps[key])
                value = degrees + minutes / 60 + seconds / 3600
                found[name] = -value if str(gps.get(ref, "")).upper() in ("S", "W") else value
            except (TypeError, ValueError, ZeroDivisionError):
                pass
    return found
