"""The kinds of things Spyglass indexes, named once.

``FileKind`` is what a file is (decided by sniffing its content); ``ItemKind`` is
what a retrievable unit is. Both are ``StrEnum`` s, so they compare equal to the
strings stored in the catalog and sent over the API, and every module asks these
properties instead of keeping its own list of names.
"""

from __future__ import annotations

from enum import StrEnum


class FileKind(StrEnum):
    IMAGE = "image"
    PDF = "pdf"
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    VIDEO = "video"

    @property
    def family(self) -> FileKind:
        """What ``--only`` selects by: Markdown and HTML are text."""
        return FileKind.TEXT if self in (FileKind.TEXT, FileKind.MARKDOWN, FileKind.HTML) else self


FAMILIES = tuple(kind for kind in FileKind if kind.family == kind)


class ItemKind(StrEnum):
    IMAGE = "image"  # a photo or other image file
    PAGE = "page"  # a rendered PDF page
    FIGURE = "figure"  # an image cropped from a PDF page
    KEYFRAME = "keyframe"  # a frame of a video
    CHUNK = "chunk"  # a short span of text: embedded in both spaces, the unit a text result shows
    PASSAGE = "passage"  # a section: a chunk's surrounding text; scores its document, quoted in answers

    @property
    def visual(self) -> bool:
        """Has pixels: embedded from an image, shown with a thumbnail."""
        return self in (ItemKind.IMAGE, ItemKind.PAGE, ItemKind.FIGURE, ItemKind.KEYFRAME)

    @property
    def textual(self) -> bool:
        """A text result: shown as itself, found by its own vectors and its section's words."""
        return self is ItemKind.CHUNK

    @property
    def section(self) -> bool:
        """Evidence for its document (BM25, the text space), never a result of its own."""
        return self is ItemKind.PASSAGE

    @property
    def modality(self) -> str | None:
        return "image" if self.visual else "text" if self.textual else None


VISUAL_KINDS = tuple(kind for kind in ItemKind if kind.visual)
TEXT_KINDS = tuple(kind for kind in ItemKind if kind.textual)
MODALITIES = {"image": VISUAL_KINDS, "text": TEXT_KINDS}
SECTION_KINDS = (ItemKind.PASSAGE,)
WORD_KINDS = (
    SECTION_KINDS + VISUAL_KINDS
)  # found by words (BM25): sections by their text, pictures by names and OCR
# What the text space embeds: chunks and sections by their text, pictures by the text read in them.
MEANING_KINDS = TEXT_KINDS + SECTION_KINDS + VISUAL_KINDS
KIND_ALIASES = {
    "photo": ItemKind.IMAGE,
    "photos": ItemKind.IMAGE,
    "images": ItemKind.IMAGE,
    "pages": ItemKind.PAGE,
    "figures": ItemKind.FIGURE,
    "chunks": ItemKind.CHUNK,
    "text": ItemKind.CHUNK,
    "keyframes": ItemKind.KEYFRAME,
}


# Vectors of the text space carry model ids with this prefix; the rest are CLIP-space vectors. Models of
# different spaces live side by side for the same items, so only models of one space replace each other.
TEXT_SPACE_PREFIX = "text:"


def space_of(model_id: str) -> str:
    """``text`` or ``clip``: which embedding space a model's vectors belong to."""
    return "text" if model_id.startswith(TEXT_SPACE_PREFIX) else "clip"


def item_kind(name: str) -> ItemKind:
    """An item kind from a user's word for it (``photo``, ``pages`` ...); ValueError for unknown words."""
    return KIND_ALIASES.get(name) or ItemKind(name)


# A model's vectors made in a precision other than its own (see ``encoders.fast.image_tower``) are a
# space of their own: the precision is part of their model id, so they are never compared silently.
_SPACE_PRECISIONS = ("int8",)


def space_id(model_id: str, precision: str) -> str:
    """The model id vectors of ``model_id`` made in ``precision`` are stored under."""
    return f"{model_id}#{precision}" if precision in _SPACE_PRECISIONS else model_id


def precision_of(space: str) -> str:
    """The precision a space id records: ``int8``, or ``fp32`` for the model's own vectors."""
    model_id, _, precision = space.rpartition("#")
    return precision if model_id and precision in _SPACE_PRECISIONS else "fp32"


def base_model_id(space: str) -> str:
    """The model a space id belongs to."""
    return space.rpartition("#")[0] if precision_of(space) != "fp32" else space
