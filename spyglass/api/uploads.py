"""Reading uploads safely: size limits (413), content sniffing (415), file names that cannot escape."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import HTTPException, UploadFile

from spyglass.indexer.sniff import sniff
from spyglass.kinds import FileKind
from spyglass.settings import ApiSettings

CHUNK = 1 << 20


async def read_upload(upload: UploadFile, settings: ApiSettings, *, images_only: bool = False) -> bytes:
    limit = int(settings.max_upload_mb * 2**20)
    data = bytearray()
    while chunk := await upload.read(CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            raise HTTPException(413, f"upload larger than {settings.max_upload_mb:g} MB")
    kind, _ = sniff(Path(upload.filename or "upload"), bytes(data[:4096]))
    if kind is None or (images_only and kind != FileKind.IMAGE):
        wanted = "an image" if images_only else "an image, PDF, text, HTML or video file"
        raise HTTPException(415, f"{upload.filename or 'upload'} is not {wanted}")
    return bytes(data)


def safe_name(name: str | None, fallback: str) -> str:
    """A file name without directories or odd characters, so an upload cannot be written elsewhere."""
    base = Path(name or "").name
    cleaned = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    return cleaned[:200] or fallback
