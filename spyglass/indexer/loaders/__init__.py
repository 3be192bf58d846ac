"""Loaders, one per kind of file, chosen by the sniffed content type."""

from __future__ import annotations

from pathlib import Path

from spyglass.indexer.loaders.base import ItemDraft, LoadedDocument, LoadError
from spyglass.indexer.sniff import sniff

__all__ = ["ItemDraft", "LoadError", "LoadedDocument", "load"]


def load(path: Path, *, kinds: frozenset[str] | None, min_side: int, max_pixels: int) -> LoadedDocument:
    """Load one file into a document, or raise :class:`LoadError` with the reason.

    ``kinds`` restricts a source to some kinds (e.g. only images); other files are
    reported, since a photo folder's stray file is worth knowing about.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise LoadError("empty file")
    kind, mime = sniff(path, head)
    if kind is None:
        raise LoadError(f"unsupported file type ({path.suffix or 'no extension'}, content not recognised)")
    if kinds is not None and _family(kind) not in kinds:
        raise LoadError(f"{_family(kind)} file; this source indexes only {', '.join(sorted(kinds))}")
    if kind == "image":
        from spyglass.indexer.loaders.image import load_image

        return load_image(path, mime, min_side=min_side, max_pixels=max_pixels)
    if kind == "pdf":
        from spyglass.indexer.loaders.pdf import load_pdf

        return load_pdf(path, mime)
    if kind == "video":
        from spyglass.indexer.loaders.video import load_video

        return load_video(path, mime)
    from spyglass.indexer.loaders.text import load_text

    return load_text(path, kind, mime, path.read_bytes())


def _family(kind: str) -> str:
    return "text" if kind in ("text", "markdown", "html") else kind
