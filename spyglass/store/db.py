"""The SQLite engine: WAL for concurrent readers, foreign keys on, migrations applied at open."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event

from spyglass.errors import SpyglassError
from spyglass.store import migrations


def writable(path: Path) -> bool:
    """Whether the catalog at ``path`` can be written (its folder, and the file if it exists).

    ``os.access`` honours read-only mounts even for root, which is how data directories
    are usually shared read-only (a container volume mounted ``:ro``, a snapshot).
    """
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def open_engine(path: Path, *, read_only: bool = False) -> Engine:
    """An engine on the catalog file, migrated to the latest schema.

    WAL lets readers run against the last committed snapshot while one writer
    appends; ``busy_timeout`` makes a second writer wait instead of failing.
    ``read_only`` opens an existing catalog for reading only: no WAL switch, no
    migration, nothing written beside it.
    """
    if read_only:
        return _open_read_only(path)
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
        # Deleted rows' bytes are zeroed, not left in free pages: builds differ in this default.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")

    with engine.connect() as connection:
        migrations.migrate(connection.connection.driver_connection)
    return engine


def _open_read_only(path: Path) -> Engine:
    if not path.is_file():
        raise SpyglassError(
            f"There is no catalog at {path}, and its folder is read-only; index something first."
        )
    # immutable: on a read-only medium SQLite cannot create the WAL index (-shm) it would need otherwise.
    uri = f"file:{quote(str(path))}?mode=ro&immutable=1"
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA query_only=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")

    with engine.connect() as connection:
        found = migrations.version(connection.connection.driver_connection)
    if found != migrations.LATEST:
        engine.dispose()
        raise SpyglassError(
            f"The catalog at {path} is read-only and its schema (v{found}) needs an upgrade to "
            f"v{migrations.LATEST}; open it once with write access."
        )
    return engine
