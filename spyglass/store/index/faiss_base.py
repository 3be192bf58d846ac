"""What the FAISS backends share: an ``faiss.Index`` with ids, its persistence and id selectors."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from spyglass.store.index.base import VectorIndex, as_ids, as_vectors


class FaissIndex(VectorIndex):
    """A FAISS index holding item ids; subclasses build it and choose the search parameters."""

    file_suffix = ".faiss"

    def __init__(self, index: faiss.Index, dim: int) -> None:
        super().__init__(dim)
        self.index = index

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def trained(self) -> bool:
        return bool(self.index.is_trained)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add_with_ids(as_vectors(vectors), as_ids(ids))

    def remove(self, ids: np.ndarray) -> None:
        self.index.remove_ids(selector(ids))

    def save(self, path: Path) -> None:
        """Written through a Python file: a full disk is an OSError here, not a message FAISS prints itself."""
        with open(path, "wb") as file:
            faiss.write_index(self.index, faiss.PyCallbackIOWriter(file.write))

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict) -> FaissIndex:
        index = cls.__new__(cls)
        FaissIndex.__init__(index, faiss.read_index(str(path)), dim)
        index._restore(settings)
        return index

    def _restore(self, settings: dict) -> None:
        """Re-apply what ``settings()`` returned when the index was saved."""


def selector(ids: np.ndarray) -> faiss.IDSelector:
    return faiss.IDSelectorBatch(as_ids(ids))
