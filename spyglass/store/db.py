"""The SQLite engine: WAL for concurrent readers, foreign keys on, migrations applied at open."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from spyglass.store import migrations


def open_engine(path: Path) -> Engine:
    """An engine on the catalog file, migrated to the latest schema.

    WAL lets readers run against the last committed snapshot while one writer
    appends; ``busy_timeout`` makes a second writer wait instead of failing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's BEGIN below control transactions (pysqlite's own handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")

    with engine.connect() as connection:
        migrations.migrate(connection.connection.driver_connection)
    return engine
