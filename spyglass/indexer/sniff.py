"""Decide what a file is from its first bytes, falling back on the extension only for text.

A JPEG named ``.png`` is still a JPEG; a ``.jpg`` that is really HTML is not an image.
"""

from __future__ import annotations

from pathlib import Path

from spyglass.kinds import FileKind

TEXT_SUFFIXES = {
    ".txt": FileKind.TEXT,
    ".text": FileKind.TEXT,
    ".md": FileKind.MARKDOWN,
    ".markdown": FileKind.MARKDOWN,
    ".html": FileKind.HTML,
    ".htm": FileKind.HTML,
}
TEXT_MIMES = {FileKind.TEXT: "text/plain", FileKind.MARKDOWN: "text/markdown", FileKind.HTML: "text/html"}
_IMAGE_BRANDS = (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif", b"avis")
_VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"qt  ", b"M4V ", b"dash", b"3gp4", b"3gp5")


def sniff(path: Path, head: bytes) -> tuple[FileKind | None, str]:
    """(kind, MIME type) from the file's first bytes; kind is None for unsupported files."""
    if head.startswith(b"\xff\xd8\xff"):
        return FileKind.IMAGE, "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind.IMAGE, "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return FileKind.IMAGE, "image/gif"
    if head.startswith(b"BM"):
        return FileKind.IMAGE, "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return FileKind.IMAGE, "image/tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileKind.IMAGE, "image/webp"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return FileKind.IMAGE, "image/jp2"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n":
        return FileKind.IMAGE, "image/x-portable-anymap"
    if head.startswith(b"%PDF-"):
        return FileKind.PDF, "application/pdf"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return FileKind.IMAGE, "image/avif" if brand.startswith(b"avi") else "image/heic"
        if brand in _VIDEO_BRANDS or brand.startswith(b"3g"):
            return FileKind.VIDEO, "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return FileKind.VIDEO, "video/webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return FileKind.VIDEO, "video/x-msvideo"
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, "application/octet-stream"
    kind = TEXT_SUFFIXES.get(path.suffix.lower())
    if kind is None and head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        kind = FileKind.HTML
    if kind is None:
        return None, "application/octet-stream"
    return kind, TEXT_MIMES[kind]
