"""Reading uploads safely: size limits (413), content sniffing (415), file names that cannot escape.

Uploads to the index (``POST /v1/documents``) are parsed as the body streams: each file part is
written to the upload folder as its bytes arrive and counted, so a part over the limit stops the
request within a chunk of the limit, before the rest of the body is read, and the folder is
removed. A form parser would first spool the whole body to disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, Request, UploadFile
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from spyglass.indexer.sniff import sniff
from spyglass.kinds import FileKind
from spyglass.settings import ApiSettings

CHUNK = 1 << 20
SNIFF_BYTES = 4096
# The OpenAPI body of a streamed upload (the handler reads the stream, so FastAPI cannot derive it).
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            }
        }
    },
}


def too_large(settings: ApiSettings) -> HTTPException:
    """413, closing the connection: the rest of the body is never read."""
    return HTTPException(
        413, f"upload larger than {settings.max_upload_mb:g} MB", headers={"Connection": "close"}
    )


@dataclass
class _Part:
    filename: str | None = None  # None: a form field, not a file
    head: bytearray = field(default_factory=bytearray)  # the first bytes, held until sniffed
    size: int = 0
    path: Path | None = None
    handle: BinaryIO | None = None
    refusal: HTTPException | None = None


class UploadReceiver:
    """Writes the file parts of one multipart request into ``folder`` as they stream in.

    ``saved`` lists the files kept; ``rejected`` the files refused by type (415), each with its
    reason. A file over ``max_upload_mb`` raises a 413 for the whole request: the caller removes the
    folder, so nothing of the request stays on disk.
    """

    def __init__(self, folder: Path, settings: ApiSettings) -> None:
        self.folder, self.settings = folder, settings
        self.limit = int(settings.max_upload_mb * 2**20)
        self.saved: list[str] = []
        self.rejected: list[dict] = []
        self.refusal: HTTPException | None = None
        self._part = _Part()
        self._header, self._value, self._disposition = b"", b"", b""

    async def receive(self, request: Request) -> None:
        kind, options = parse_options_header(request.headers.get("content-type", ""))
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            raise HTTPException(400, "expected a multipart/form-data body with a boundary")
        parser = MultipartParser(
            options[b"boundary"],
            {
                "on_part_begin": self._begin,
                "on_header_field": lambda data, start, end: self._add("_header", data[start:end]),
                "on_header_value": lambda data, start, end: self._add("_value", data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": lambda data, start, end: self._data(data[start:end]),
                "on_part_end": self._end,
            },
        )
        try:
            async for chunk in request.stream():
                parser.write(chunk)  # the callbacks write to disk: page-cache writes of <= 64 KB
            parser.finalize()
        except FormParserError:
            raise HTTPException(400, "the body is not well-formed multipart form data") from None
        finally:
            if self._part.handle is not None:
                self._part.handle.close()

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _begin(self) -> None:
        self._part, self._disposition = _Part(), b""

    def _header_end(self) -> None:
        if self._header.strip().lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"filename" in options:
            self._part.filename = options[b"filename"].decode("utf-8", "replace")

    def _data(self, data: bytes) -> None:
        part = self._part
        if part.filename is None:
            return  # form fields carry nothing an upload needs; the request limit bounds them
        part.size += len(data)
        if part.size > self.limit:
            raise too_large(self.settings)
        if part.handle is not None:
            part.handle.write(data)
        elif part.refusal is None:
            part.head.extend(data)
            if len(part.head) >= SNIFF_BYTES:
                self._open(part)

    def _end(self) -> None:
        part = self._part
        if part.filename is None:
            return
        if part.handle is None and part.refusal is None:
            self._open(part)
        if part.handle is not None:
            part.handle.close()
            part.handle = None
            self.saved.append(part.path.name)
        else:
            self.rejected.append(
                {"file": part.filename or "upload", "status": 415, "reason": part.refusal.detail}
            )
            self.refusal = self.refusal or part.refusal

    def _open(self, part: _Part) -> None:
        """Sniff the part's first bytes; a file of a kind we index is written from here on."""
        try:
            _check_type(part.filename, bytes(part.head[:SNIFF_BYTES]), images_only=False)
        except HTTPException as exc:
            part.refusal, part.head = exc, bytearray()
            return
        name = safe_name(part.filename, f"upload-{len(self.saved)}")
        while name in self.saved or (self.folder / name).exists():
            name = f"_{name}"
        part.path = self.folder / name
        part.handle = part.path.open("wb")
        part.handle.write(part.head)
        part.head = bytearray()


async def read_upload(upload: UploadFile, settings: ApiSettings, *, images_only: bool = False) -> bytes:
    """The whole upload in memory (a query image): size-checked as it is read, then sniffed."""
    data, limit = bytearray(), int(settings.max_upload_mb * 2**20)
    while chunk := await upload.read(CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            raise too_large(settings)
    _check_type(upload.filename, bytes(data[:SNIFF_BYTES]), images_only)
    return bytes(data)


def _check_type(filename: str | None, head: bytes, images_only: bool) -> None:
    kind, _ = sniff(Path(filename or "upload"), head)
    if kind is None or (images_only and kind != FileKind.IMAGE):
        wanted = "an image" if images_only else "an image, PDF, text, HTML or video file"
        raise HTTPException(415, f"{filename or 'upload'} is not {wanted}")


def safe_name(name: str | None, fallback: str) -> str:
    """A file name without directories or odd characters, so an upload cannot be written elsewhere."""
    base = Path(name or "").name
    cleaned = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    return cleaned[:200] or fallback
