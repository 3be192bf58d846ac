"""Store: the SQLite catalog (source of truth) and the derived FAISS index."""

from spyglass.store.catalog import Catalog
from spyglass.store.store import Hit, Store

__all__ = ["Catalog", "Hit", "Store"]
