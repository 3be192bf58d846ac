"""Vector index backends (one per file) and the factory that picks one by collection size."""

from __future__ import annotations

from spyglass.store.index.base import VectorIndex
from spyglass.store.index.flat import FlatIndex
from spyglass.store.index.hnsw import HNSWIndex
from spyglass.store.index.ivf import IVFIndex

BACKENDS: dict[str, type[VectorIndex]] = {"flat": FlatIndex, "ivf": IVFIndex, "hnsw": HNSWIndex}
KINDS = ("auto", *BACKENDS)
# Exact search over 50k x 512 floats is ~5 ms on one core; beyond that an IVF index wins.
AUTO_FLAT_LIMIT = 50_000


def resolve_kind(kind: str, count: int) -> str:
    """``auto`` means exact search for small collections and IVF for large ones."""
    if kind == "auto":
        return "flat" if count < AUTO_FLAT_LIMIT else "ivf"
    if kind not in BACKENDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def create_index(kind: str, dim: int, count: int, options: dict | None = None) -> VectorIndex:
    """A new, empty index of ``kind`` sized for ``count`` vectors; ``options`` are the backend's knobs."""
    options = dict(options or {})
    concrete = resolve_kind(kind, count)
    if concrete == "ivf":
        options.setdefault("expected", count)
    if concrete == "flat":
        options = {}
    elif concrete == "hnsw":
        options = {key: value for key, value in options.items() if key in ("m", "ef_construction", "ef_search")}
    else:
        options = {key: value for key, value in options.items() if key in ("nlist", "expected", "nprobe")}
    return BACKENDS[concrete](dim, **options)


__all__ = ["BACKENDS", "KINDS", "VectorIndex", "create_index", "resolve_kind"]
