"""Vector index backends, one per file, found by name through a registry.

A new backend is one module with a :class:`VectorIndex` subclass, registered with
``register_backend`` (the FAISS family and Milvus register here; pymilvus is imported only when
a Milvus index is opened). ``auto`` picks
exact search for small collections and IVF for large ones.
"""

from __future__ import annotations

from spyglass.store.index.base import VectorIndex
from spyglass.store.index.flat import FlatIndex
from spyglass.store.index.hnsw import HNSWIndex
from spyglass.store.index.ivf import IVFIndex
from spyglass.store.index.milvus import MilvusIndex

_BACKENDS: dict[str, type[VectorIndex]] = {}
# Exact search over 50k x 512 floats is ~5 ms on one core; beyond that an IVF index wins.
AUTO_FLAT_LIMIT = 50_000


def register_backend(backend: type[VectorIndex]) -> type[VectorIndex]:
    """Make ``backend`` selectable as ``index = backend.kind``; usable as a class decorator."""
    if backend.kind == "auto":
        raise ValueError("'auto' is reserved for the size-based choice")
    _BACKENDS[backend.kind] = backend
    return backend


def backend(kind: str) -> type[VectorIndex]:
    """The registered backend class for ``kind`` (a concrete name, not ``auto``)."""
    try:
        return _BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(kinds())}") from None


def kinds() -> tuple[str, ...]:
    return ("auto", *_BACKENDS)


def resolve_kind(kind: str, count: int) -> str:
    """``auto`` means exact search for small collections and IVF for large ones."""
    if kind == "auto":
        return "flat" if count < AUTO_FLAT_LIMIT else "ivf"
    return backend(kind).kind


def create_index(kind: str, dim: int, count: int, options: dict | None = None) -> VectorIndex:
    """A new, empty index of ``kind`` sized for ``count`` vectors; options it does not declare are dropped."""
    cls = backend(resolve_kind(kind, count))
    accepted = {key: value for key, value in (options or {}).items() if key in cls.options}
    if cls.sized:
        accepted["expected"] = count
    return cls(dim, **accepted)


for _builtin in (FlatIndex, IVFIndex, HNSWIndex, MilvusIndex):
    register_backend(_builtin)

__all__ = ["VectorIndex", "backend", "create_index", "kinds", "register_backend", "resolve_kind"]
