"""A toy vector backend registered from outside ``spyglass/store/index``: exact search in numpy.

It proves the registry is the only seam a backend needs: the store test suite runs on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spyglass.store.index import register_backend
from spyglass.store.index.base import VectorIndex, as_ids, as_vectors


@register_backend
class NumpyIndex(VectorIndex):
    kind = "numpy"
    file_suffix = ".npz"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.ids = np.zeros(0, np.int64)
        self.matrix = np.zeros((0, dim), np.float32)

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, as_ids(ids)])
        self.matrix = np.concatenate([self.matrix, as_vectors(vectors)])

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self.ids, as_ids(ids))
        self.ids, self.matrix = self.ids[keep], self.matrix[keep]

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, matrix = self.ids, self.matrix
        if allow is not None:
            mask = np.isin(ids, allow)
            ids, matrix = ids[mask], matrix[mask]
        scores = as_vectors(queries) @ matrix.T
        out_scores = np.full((len(scores), k), -np.inf, np.float32)
        out_ids = np.full((len(scores), k), -1, np.int64)
        for row, values in enumerate(scores):
            best = np.argsort(-values, kind="stable")[:k]
            out_scores[row, : len(best)], out_ids[row, : len(best)] = values[best], ids[best]
        return out_scores, out_ids

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, ids=self.ids, matrix=self.matrix)

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict) -> NumpyIndex:
        index = cls(dim)
        with np.load(path) as saved:
            index.ids, index.matrix = saved["ids"], saved["matrix"]
        return index
