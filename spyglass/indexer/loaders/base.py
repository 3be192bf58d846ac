"""What loaders produce (a document's metadata and its items, ready to embed and store), and how
loaders register: by MIME type or MIME prefix, so a new format is one new module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from spyglass.kinds import FileKind
from spyglass.settings import IngestSettings


@dataclass
class ItemDraft:
    """One retrievable unit before it has an id.

    Exactly one of ``image`` / ``embed_text`` is set for items that get a vector;
    passages have neither (they serve BM25 and the generator). ``parent`` is the
    index of an earlier draft of the same document (chunk -> passage, figure -> page).
    """

    kind: str
    text: str | None = None
    embed_text: str | None = None
    image: Image.Image | None = None
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    char_start: int | None = None
    char_end: int | None = None
    timestamp: float | None = None
    parent: int | None = None
    thumbnail: bytes | None = None
    pixels: Any = None  # the encoder's preprocessed tensor, filled in by a worker thread
    vector: Any = None  # its embedding, when a long document was embedded while it loaded

    def row(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "page": self.page,
            "bbox": self.bbox,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "timestamp": self.timestamp,
            "thumbnail": self.thumbnail,
            "parent_index": self.parent,
        }


@dataclass
class LoadedDocument:
    path: Path
    kind: str
    mime: str
    items: list[ItemDraft] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why the document is indexed only in part

    def limit(self, note: str) -> None:
        """Record that a limit cut the document short; the note is stored and reported."""
        self.notes.append(note)


class LoadError(Exception):
    """A file that cannot be indexed; the message is the reason users see."""


_DEFAULT = IngestSettings()  # the limits' defaults are defined once, with the settings


@dataclass(frozen=True)
class LoadOptions:
    """What a loader may spend on one file. Limits cut a document short with a note, never fail it."""

    min_side: int = 224  # the encoder's input size: images may be decoded at reduced scale down to it
    max_pixels: int = _DEFAULT.max_image_pixels  # decompression-bomb guard
    max_pages: int = _DEFAULT.max_pdf_pages
    max_text_bytes: int = _DEFAULT.max_text_bytes  # of a text, Markdown or HTML file
    max_chunks: int = _DEFAULT.max_chunks  # text chunks of one text file (each one is embedded)
    max_seconds: float = _DEFAULT.max_document_seconds  # loading one document (checked between pages)
    # Long documents hand each page's new items here as they go (the pipeline preprocesses and,
    # past a batch, embeds them), so memory does not grow with the page count.
    digest: Callable[[list[ItemDraft]], None] | None = None

    @classmethod
    def from_settings(cls, ingest: IngestSettings) -> LoadOptions:
        return cls(
            max_pixels=ingest.max_image_pixels,
            max_pages=ingest.max_pdf_pages,
            max_text_bytes=ingest.max_text_bytes,
            max_chunks=ingest.max_chunks,
            max_seconds=ingest.max_document_seconds,
        )


Loader = Callable[[Path, str, FileKind, LoadOptions], LoadedDocument]
_LOADERS: dict[str, Loader] = {}


def register_loader(*mimes: str) -> Callable[[Loader], Loader]:
    """Register a loader for MIME types (``application/pdf``) or prefixes (``image/``)."""

    def decorate(loader: Loader) -> Loader:
        for mime in mimes:
            _LOADERS[mime] = loader
        return loader

    return decorate


def loader_for(mime: str) -> Loader | None:
    """The loader registered for ``mime`` exactly, else for its prefix (``image/``)."""
    return _LOADERS.get(mime) or _LOADERS.get(mime.split("/", 1)[0] + "/")
