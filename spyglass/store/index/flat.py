"""Exact inner-product search: the right choice below ~50k vectors, and the ground truth for recall."""

from __future__ import annotations

import faiss
import numpy as np

from spyglass.store.index.base import as_vectors
from spyglass.store.index.faiss_base import FaissIndex, selector


class FlatIndex(FaissIndex):
    kind = "flat"

    def __init__(self, dim: int) -> None:
        super().__init__(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), dim)

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        sel = selector(allow) if allow is not None else None  # referenced until the search returns
        return self.index.search(as_vectors(queries), k, params=faiss.SearchParameters(sel=sel))
