"""What every part of the catalog shares: the database engine, and the ``meta`` table's keys."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, text

from spyglass.store.schema import (
    meta,
)


class Records:
    """Reads and writes bound to one connection: one snapshot or one transaction.

    Each table group's module has such classes (``DocumentReads``, ``DocumentWrites``, ...);
    the store's sessions are made of them, so they forward nothing and hand out no connection.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_meta(self, key: str) -> str | None:
        return self._conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value}
        )


class CatalogBase:
    """Reads that open their own short connections (writes are ``Records`` of a transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def run_alone(self, statement: str) -> None:
        """A statement SQLite refuses inside a transaction (``VACUUM``, a WAL checkpoint)."""
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute(statement)
        finally:
            raw.close()

    # --- bookkeeping ----------------------------------------------------------------------
    def store_id(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == "store_id")).scalar_one()
