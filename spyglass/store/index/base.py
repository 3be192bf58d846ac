"""The vector index interface: a derived, rebuildable accelerator over vectors kept in SQLite.

Ids are item ids; scores are inner products of unit vectors (cosine). A backend
(one file each) declares its name, the options it accepts and whether it needs
training, and implements add/remove/search and persistence. The store relies on
nothing else, so a backend may be FAISS, plain numpy, or a remote vector database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np


class VectorIndex(ABC):
    """Add, remove and search vectors by integer id."""

    kind: ClassVar[str]  # the name settings use (``index = "hnsw"``)
    options: ClassVar[tuple[str, ...]] = ()  # keyword arguments the constructor accepts from settings
    sized: ClassVar[bool] = (
        False  # True: the constructor takes ``expected`` (the collection size it is built for)
    )
    file_suffix: ClassVar[str] = ".index"
    external: ClassVar[bool] = False  # True: the vectors live outside the saved file (a database)

    def __init__(self, dim: int) -> None:
        self.dim = dim

    @property
    @abstractmethod
    def ntotal(self) -> int:
        """Number of live vectors."""

    @property
    def trained(self) -> bool:
        return True

    def train(self, sample: np.ndarray) -> None:  # noqa: B027 - most indexes need no training
        """Fit quantisers on a representative sample (only quantising backends need it)."""

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ``ids``; ValueError if the backend cannot take one of them (the store rebuilds)."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Remove ids; unknown ids are ignored."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query, float32 and int64 arrays; ids of -1 pad short rows.

        ``allow`` (sorted int64 ids) restricts the search to those ids.
        """

    @property
    def needs_rebuild(self) -> bool:
        """True when the structure has degraded (e.g. too many tombstones) and a rebuild would pay."""
        return False

    def settings(self) -> dict:
        """Search knobs and state worth persisting next to the index file."""
        return {}

    def close(self) -> None:  # noqa: B027 - an index in memory holds nothing to release
        """Release connections or locks (the store is closing); the index is not used afterwards."""

    def discard(self) -> None:  # noqa: B027 - an index in memory just goes with its last reference
        """Release what the index holds outside this process; called once a rebuilt index replaced it."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to ``path`` (the store makes the write atomic)."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dim: int, settings: dict) -> VectorIndex:
        """Read an index saved by :meth:`save`, with the ``settings()`` saved beside it.

        Raise ValueError or RuntimeError for an unreadable file: the store then rebuilds.
        """


def as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64)


def as_vectors(vectors) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)
