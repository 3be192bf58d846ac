"""What loaders produce (a document's metadata and its items, ready to embed and store), and how
loaders register: by MIME type or MIME prefix, so a new format is one new module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from spyglass.kinds import FileKind


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


class LoadError(Exception):
    """A file that cannot be indexed; the message is the reason users see."""


@dataclass(frozen=True)
class LoadOptions:
    min_side: int = 224  # the encoder's input size: images may be decoded at reduced scale down to it
    max_pixels: int = 178_956_970  # decompression-bomb guard


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
