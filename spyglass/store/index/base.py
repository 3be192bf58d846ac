"""The vector index interface: a derived, rebuildable accelerator over vectors kept in SQLite.

Ids are item ids. Scores are inner products of unit vectors (cosine). Each backend
(one file each) states whether it needs training and how it honours an allow-list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import faiss
import numpy as np


class VectorIndex(ABC):
    """Add, remove and search vectors by integer id."""

    kind: ClassVar[str]

    def __init__(self, index: faiss.Index, dim: int) -> None:
        self.index = index
        self.dim = dim

    @property
    def ntotal(self) -> int:
        """Number of live vectors."""
        return int(self.index.ntotal)

    @property
    def trained(self) -> bool:
        return bool(self.index.is_trained)

    def train(self, sample: np.ndarray) -> None:  # noqa: B027 - most indexes need no training
        """Fit quantisers on a representative sample (only IVF needs it)."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add_with_ids(as_vectors(vectors), as_ids(ids))

    def remove(self, ids: np.ndarray) -> None:
        """Remove ids (unknown ids are ignored); backends that cannot remove override this."""
        self.index.remove_ids(selector(ids))

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query; ids of -1 pad short rows. ``allow`` restricts to those ids."""

    @property
    def needs_rebuild(self) -> bool:
        """True when the structure has degraded (e.g. too many tombstones) and a rebuild would pay."""
        return False

    def settings(self) -> dict:
        """Search knobs and state worth persisting next to the index file."""
        return {}

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict) -> VectorIndex:
        index = cls.__new__(cls)
        VectorIndex.__init__(index, faiss.read_index(str(path)), dim)
        index._restore(settings)
        return index

    def _restore(self, settings: dict) -> None:  # noqa: B027 - stateless backends keep nothing
        """Re-apply what ``settings()`` returned when the index was saved."""


def as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64)


def as_vectors(vectors) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def selector(ids: np.ndarray) -> faiss.IDSelector:
    return faiss.IDSelectorBatch(as_ids(ids))
