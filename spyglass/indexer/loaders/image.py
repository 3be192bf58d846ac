"""Images: one item per file (first frame of animations), EXIF facts and the owner's words
(titles, descriptions, keywords from EXIF, IPTC and XMP) as metadata, a thumbnail."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, IptcImagePlugin

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
    metadata = {"width": image.width, "height": image.height, **file_metadata(path)}
    item = ItemDraft(kind=ItemKind.IMAGE, image=image, thumbnail=thumbnail(image))
    return LoadedDocument(path, kind, mime, [item], metadata)


def file_metadata(path: Path) -> dict[str, Any]:
    """What the file says about itself (EXIF facts, the owner's words), read in one opening.

    A bonus: anything unreadable is left out, never an error (the image itself decoded fine).
    """
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            iptc = IptcImagePlugin.getiptcinfo(image) or {}
            xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
            return {**_facts(exif), **_described(exif, iptc, xmp)}
    except Exception:  # noqa: BLE001 - see above
        return {}


def _facts(exif: Image.Exif) -> dict[str, Any]:
    """Capture time (epoch seconds), camera, and GPS position in decimal degrees, when present."""
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


# EXIF tags people fill in (Windows' XP* tags are UTF-16), IPTC datasets, and XMP Dublin Core fields.
_EXIF_WORDS = {
    ExifTags.Base.ImageDescription: "description",
    ExifTags.Base.Artist: "author",
    ExifTags.Base.XPTitle: "title",
    ExifTags.Base.XPComment: "description",
    ExifTags.Base.XPKeywords: "keywords",
    ExifTags.Base.XPSubject: "subject",
    ExifTags.Base.XPAuthor: "author",
}
_IPTC_WORDS = {(2, 5): "title", (2, 25): "keywords", (2, 120): "description", (2, 80): "author"}
_XMP_WORDS = {"title": "title", "description": "description", "subject": "keywords", "creator": "author"}
_XMP_ITEM = re.compile(rb"<rdf:li[^>]*>([^<]*)</rdf:li>")


def _described(exif: Image.Exif, iptc: dict, xmp: bytes | str) -> dict[str, str]:
    """Title, description, keywords and author the file carries (EXIF, IPTC, XMP), each joined into one string."""
    found: dict[str, list[str]] = {}
    for tag, key in _EXIF_WORDS.items():
        if value := exif.get(tag):
            found.setdefault(key, []).append(_text(value, utf16=tag >= ExifTags.Base.XPTitle))
    for dataset, key in _IPTC_WORDS.items():
        values = iptc.get(dataset)
        for value in values if isinstance(values, list) else [values] if values else []:
            found.setdefault(key, []).append(_text(value))
    if isinstance(xmp, str):
        xmp = xmp.encode()
    for field, key in _XMP_WORDS.items():
        block = re.search(
            rb"<dc:" + field.encode() + rb"\b[^>]*>(.*?)</dc:" + field.encode() + rb">", xmp, re.S
        )
        if block:
            found.setdefault(key, []).extend(_text(v) for v in _XMP_ITEM.findall(block.group(1)))
    joined = {key: " ; ".join(dict.fromkeys(v for v in values if v)) for key, values in found.items()}
    return {key: value for key, value in joined.items() if value}


def _text(value: Any, utf16: bool = False) -> str:
    if isinstance(value, tuple):  # some readers give XP* tags as tuples of byte values
        value = bytes(value)
    if isinstance(value, bytes):
        value = value.decode("utf-16-le" if utf16 else "utf-8", errors="replace")
    return str(value).strip("\x00 ").strip()
