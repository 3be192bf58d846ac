"""What a search asks for, and how it becomes one query vector.

Text, images and an already indexed item can be combined with weights; text may
carry rclip-style extra terms: ``"a cat + at night - daylight"`` adds "at night" and
subtracts "daylight". Each part is a unit vector; the weighted sum is renormalised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from spyglass.errors import SpyglassError
from spyglass.images import ImageSource, open_image
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder

_TERM = re.compile(r"\s+([+-])\s+")


class QueryError(SpyglassError, ValueError):
    """A query that asks for nothing, or names an item that does not exist."""


@dataclass
class Query:
    text: str | None = None
    images: list[ImageSource] = field(default_factory=list)
    item_id: int | None = None  # "more like this": an indexed item's own vector
    text_weight: float = 1.0
    image_weight: float = 1.0
    negative: list[str] = field(default_factory=list)
    negative_weight: float = 1.0
    # Items scored with every signal whatever the pools found (a conversation's cited evidence):
    # candidates like any other, still subject to the filters, ranked by their own scores.
    keep: tuple[int, ...] = ()

    def terms(self) -> tuple[list[str], list[str]]:
        """Positive and negative text terms, from ``text`` and ``negative``."""
        positive, negative = [], list(self.negative)
        if self.text and self.text.strip():
            parts = _TERM.split(" " + self.text.strip() + " ")
            positive.append(parts[0].strip())
            for sign, term in zip(parts[1::2], parts[2::2]):
                (positive if sign == "+" else negative).append(term.strip())
        return [t for t in positive if t], [t for t in negative if t]

    @property
    def bm25_text(self) -> str:
        """The words BM25 should look for: the positive terms only."""
        return " ".join(self.terms()[0])


def embed(
    query: Query,
    encoder: Encoder | QueryEncoder,
    store: Store,
    *,
    ensemble: bool = False,
    max_pixels: int = 178_956_970,
) -> np.ndarray:
    positive, negative = query.terms()
    parts: list[np.ndarray] = []
    if positive:
        parts.append(query.text_weight * encoder.encode_texts(positive, ensemble=ensemble).mean(axis=0))
    pictures = [
        open_image(source, min_side=encoder.image_size, max_pixels=max_pixels) for source in query.images
    ]
    image_vectors = [encoder.encode_images(pictures)] if pictures else []
    if query.item_id is not None:
        ids, matrix = store.vectors([query.item_id])
        if not len(ids):
            raise QueryError(f"item {query.item_id} does not exist or has no vector for {store.model_id}")
        image_vectors.append(matrix)
    if image_vectors:
        parts.append(query.image_weight * np.concatenate(image_vectors).mean(axis=0))
    if negative:
        parts.append(-query.negative_weight * encoder.encode_texts(negative, ensemble=ensemble).mean(axis=0))
    if not parts or not (positive or image_vectors):
        raise QueryError("the query is empty: give text, an image, or an item id")
    vector = np.sum(parts, axis=0)
    norm = np.linalg.norm(vector)
    if norm < 1e-6:
        raise QueryError("the query's terms cancel out")
    return (vector / norm).astype(np.float32)
