"""What every part of the catalog shares: the database engine, and the ``meta`` table's keys."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, text

from spyglass.store.schema import (
    meta,
)


class CatalogBase:
    """Reads open their own short connections; writes use the connection they are given."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- bookkeeping ----------------------------------------------------------------------
    def store_id(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == "store_id")).scalar_one()

    def get_meta(self, conn: Connection, key: str) -> str | None:
        return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value})
