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
    """The whole upload in memory (a query image): size-checked as it is read, then sniffed."""
    data = bytearray()
    async for chunk in _chunks(upload, settings):
        data.extend(chunk)
    _check_type(upload, bytes(data[:4096]), images_only)
    return bytes(data)


async def save_upload(upload: UploadFile, destination: Path, settings: ApiSettings) -> None:
    """Copy an upload to ``destination`` in chunks, so the files of one request are never all in memory.

    Nothing is left behind when it is refused.
    """
    chunks = _chunks(upload, settings)
    first = await anext(chunks, b"")
    _check_type(upload, first[:4096], images_only=False)
    try:
        with destination.open("wb") as handle:
            handle.write(first)
            async for chunk in chunks:
                handle.write(chunk)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


async def _chunks(upload: UploadFile, settings: ApiSettings):
    limit, seen = int(settings.max_upload_mb * 2**20), 0
    while chunk := await upload.read(CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise HTTPException(413, f"upload larger than {settings.max_upload_mb:g} MB")
        yield chunk


def _check_type(upload: UploadFile, head: bytes, images_only: bool) -> None:
    kind, _ = sniff(Path(upload.filename or "upload"), head)
    if kind is None or (images_only and kind != FileKind.IMAGE):
        wanted = "an image" if images_only else "an image, PDF, text, HTML or video file"
        raise HTTPException(415, f"{upload.filename or 'upload'} is not {wanted}")


def safe_name(name: str | None, fallback: str) -> str:
    """A file name without directories or odd characters, so an upload cannot be written elsewhere."""
    base = Path(name or "").name
    cleaned = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    return cleaned[:200] or fallback
