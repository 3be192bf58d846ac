"""Loaders, one module per kind of file, found through the MIME registry in ``base``."""

from __future__ import annotations

from pathlib import Path

from spyglass.indexer.loaders import image, pdf, text, video  # noqa: F401 - importing registers them
from spyglass.indexer.loaders.base import (
    ItemDraft,
    LoadedDocument,
    LoadError,
    LoadOptions,
    loader_for,
    register_loader,
)
from spyglass.indexer.sniff import sniff
from spyglass.kinds import FileKind

__all__ = ["ItemDraft", "LoadError", "LoadOptions", "LoadedDocument", "load", "register_loader"]


def load(path: Path, options: LoadOptions, *, kinds: frozenset[FileKind] | None = None) -> LoadedDocument:
    """Load one file into a document, or raise :class:`LoadError` with the reason.

    ``kinds`` restricts a source to some file families (e.g. only images); other files
    are reported, since a photo folder's stray file is worth knowing about.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise LoadError("empty file")
    kind, mime = sniff(path, head)
    loader = loader_for(mime) if kind is not None else None
    if kind is None or loader is None:
        raise LoadError(f"unsupported file type ({path.suffix or 'no extension'}, content not recognised)")
    if kinds is not None and kind.family not in kinds:
        raise LoadError(f"{kind.family} file; this source indexes only {', '.join(sorted(kinds))}")
    return loader(path, mime, kind, options)
