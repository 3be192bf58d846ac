"""HNSW graph index: the fastest queries at high recall, but FAISS's HNSW cannot delete.

Deletes become tombstones, filtered out at search time through an id selector
(and over-fetched for), and ``needs_rebuild`` turns true once they exceed a fraction
of the graph, so the store rebuilds it from SQLite.
"""

from __future__ import annotations

import faiss
import numpy as np

from spyglass.store.index.base import as_ids, as_vectors
from spyglass.store.index.faiss_base import FaissIndex, selector

REBUILD_FRACTION = 0.2


class HNSWIndex(FaissIndex):
    kind = "hnsw"
    options = ("m", "ef_construction", "ef_search")

    def __init__(self, dim: int, m: int = 32, ef_construction: int = 80, ef_search: int = 128) -> None:
        graph = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ef_construction
        super().__init__(faiss.IndexIDMap2(graph), dim)
        self.ef_search = ef_search
        self.tombstones: set[int] = set()

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        revived = self.tombstones.intersection(ids.tolist())
        if revived:  # the graph cannot hold an id twice; vectors are immutable per id, so un-delete
            raise ValueError(
                f"ids {sorted(revived)[:5]} were deleted from this HNSW index and cannot be re-added"
            )
        self.index.add_with_ids(as_vectors(vectors), ids)

    def remove(self, ids: np.ndarray) -> None:
        self.tombstones.update(as_ids(ids).tolist())

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        # SWIG selectors hold raw pointers to their children: keep every part referenced here.
        parts = []
        if self.tombstones:
            parts.append(selector(np.fromiter(self.tombstones, np.int64)))
            parts.append(faiss.IDSelectorNot(parts[-1]))
        if allow is not None:
            parts.append(selector(allow))
            if self.tombstones:
                parts.append(faiss.IDSelectorAnd(parts[-1], parts[1]))
        # IndexIDMap translates the selector to internal ids; efSearch must cover k.
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k), sel=parts[-1] if parts else None)
        return self.index.search(as_vectors(queries), k, params=params)

    @property
    def needs_rebuild(self) -> bool:
        return len(self.tombstones) > REBUILD_FRACTION * max(int(self.index.ntotal), 1)

    def settings(self) -> dict:
        return {"ef_search": self.ef_search, "tombstones": sorted(self.tombstones)}

    def _restore(self, settings: dict) -> None:
        self.ef_search = int(settings.get("ef_search", 128))
        self.tombstones = set(settings.get("tombstones", []))
