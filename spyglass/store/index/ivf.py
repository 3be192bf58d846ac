"""Inverted-file index: k-means cells, search visits ``nprobe`` of them.

Cheap to build and to update (plain ``remove_ids``), small per-query cost at 1M
vectors. ``nlist`` defaults to ~4*sqrt(n) cells; ``nprobe`` trades recall for speed.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from spyglass.store.index.base import as_vectors
from spyglass.store.index.faiss_base import FaissIndex, selector

TRAIN_POINTS_PER_CELL = 64  # faiss warns below 39; more adds build time with little recall gain


class IVFIndex(FaissIndex):
    kind = "ivf"
    options = ("nlist", "nprobe")
    sized = True

    def __init__(self, dim: int, nlist: int | None = None, expected: int = 100_000, nprobe: int = 32) -> None:
        nlist = nlist or suggested_nlist(expected)
        quantizer = faiss.IndexFlatIP(dim)
        super().__init__(faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT), dim)
        self.nprobe = nprobe

    @property
    def nlist(self) -> int:
        return int(self.index.nlist)

    def train(self, sample: np.ndarray) -> None:
        sample = as_vectors(sample)
        limit = self.nlist * TRAIN_POINTS_PER_CELL
        if len(sample) > limit:
            sample = sample[np.random.default_rng(0).choice(len(sample), limit, replace=False)]
        self.index.train(sample)

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        sel = selector(allow) if allow is not None else None  # referenced until the search returns
        return self.index.search(
            as_vectors(queries), k, params=faiss.SearchParametersIVF(nprobe=self.nprobe, sel=sel)
        )

    def settings(self) -> dict:
        return {"nprobe": self.nprobe}

    def _restore(self, settings: dict) -> None:
        self.nprobe = int(settings.get("nprobe", 32))


def suggested_nlist(expected: int) -> int:
    """~4*sqrt(n) cells: the usual balance of quantiser cost and cell size.

    Capped so k-means sees the 39 points per centroid faiss asks for.
    """
    return max(1, min(int(4 * math.sqrt(max(expected, 1))), expected // 39))
