"""Store: the SQLite catalog (source of truth) and the vector index derived from it.

``Store`` is the boundary: callers get domain reads and, inside ``write()`` /
``snapshot()``, a ``Transaction`` / ``Snapshot``; SQL never leaves this package.
"""

from spyglass.store.catalog import PERSON
from spyglass.store.session import Snapshot, Transaction
from spyglass.store.store import STOP, Hit, Store

__all__ = ["PERSON", "STOP", "Hit", "Snapshot", "Store", "Transaction"]
