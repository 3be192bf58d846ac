"""What a search needs from a model: text through the exported text tower, images through the
engine's model (its ONNX export where there is one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from spyglass.encoders.base import Encoder
    from spyglass.encoders.fast.text_tower import TextTower


class QueryEncoder:
    """An encoder for queries that loads the image side (and torch) only when an image query needs it.

    Both halves belong to one ``model_id``, so their vectors share one space.
    """

    def __init__(self, text: TextTower, full: Callable[[], Encoder], space: str) -> None:
        self.text, self._full = text, full
        self.model_id, self.dim = space, text.dim  # the space: the image tower's precision is in it

    def encode_texts(self, texts: Sequence[str], *, ensemble: bool = False) -> np.ndarray:
        return self.text.encode_texts(list(texts), ensemble=ensemble)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._full().encode_images(images)

    @property
    def image_size(self) -> int:
        return self._full().image_size
