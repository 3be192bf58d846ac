"""Helpers shared by the store tests: clustered unit vectors and a one-call batch writer."""

from __future__ import annotations

import numpy as np

from spyglass.store import Store


def clustered(
    count: int, dim: int = 32, clusters: int = 20, seed: int = 0, spread: float = 0.3
) -> np.ndarray:
    """Unit vectors from a Gaussian mixture: realistic neighbourhoods, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    data = centres[rng.integers(0, clusters, count)] + spread * rng.standard_normal((count, dim))
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def add_batch(
    store: Store,
    vectors: np.ndarray,
    path: str = "doc",
    source: str = "/data",
    kind: str = "image",
    texts: list[str] | None = None,
) -> list[int]:
    """Add one document holding one item per vector; returns the item ids."""
    with store.write() as tx:
        source_id = tx.ensure_source("folder", source)
        document = tx.upsert_document(source_id, path, status="indexed")
        rows = [{"kind": kind, "text": texts[i] if texts else None} for i in range(len(vectors))]
        ids = tx.add_items(document, rows)
        tx.add_vectors(ids, vectors, store.model_id)
    return ids


def exact_top(vectors: np.ndarray, ids: list[int], query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [ids[i] for i in order]
