"""A consistent copy of a live catalog, and the checks a copy must pass before it replaces one.

SQLite's online backup API copies the database page by page while other connections keep
reading and writing; a write in between makes it start over from that page, so the copy is
one committed state of the catalog, never half of a transaction. Vector indexes are not
copied: they are derived from the vectors the catalog holds and are rebuilt on first open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

PAGES_PER_STEP = 1024  # ~4 MB between progress reports, and between chances for writers to go on


def copy_catalog(source: Path, target: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Copy the catalog at ``source`` (in use or not) to ``target``, a new file; ``progress(done, total)`` pages."""

    def report(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    reader = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=30)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer, pages=PAGES_PER_STEP, progress=report)
    finally:
        writer.close()
        reader.close()


def problems(catalog: Path) -> list[str]:
    """Why the catalog at ``catalog`` must not be restored (empty: it may): SQLite's own integrity
    check, and vectors that belong to no item or whose size differs from their model's others."""
    if not catalog.is_file():
        return [f"{catalog} does not exist"]
    connection = sqlite3.connect(f"file:{quote(str(catalog))}?mode=ro", uri=True)
    try:
        found = [row[0] for row in connection.execute("PRAGMA integrity_check") if row[0] != "ok"]
        found += [
            f"{count} vectors of {model} belong to no item"
            for model, count in connection.execute(
                "SELECT model_id, count(*) FROM vectors WHERE item_id NOT IN (SELECT id FROM items) GROUP BY model_id"
            )
        ]
        found += [
            f"vectors of {model} differ in size"
            for (model,) in connection.execute(
                "SELECT model_id FROM vectors GROUP BY model_id, dtype HAVING min(length(data)) != max(length(data))"
            )
        ]
        return found
    except sqlite3.DatabaseError as exc:
        return [f"{catalog} is not a readable catalog: {exc}"]
    finally:
        connection.close()
