"""Full-text search in three tiers: whole words (BM25), substrings, near spellings."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, text
from sqlalchemy.exc import SQLAlchemyError

from spyglass.store.catalog.base import CatalogBase, Records
from spyglass.store.catalog.postings import Postings, QueryTokens, structure
from spyglass.store.migrations import FORGET_FLAG
from spyglass.store.schema import meta
from spyglass.words import NEAR_MIN_LENGTH, content_words, fold, near_any, query_terms

CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"  # the WAL copied into the catalog and emptied, unless read
NEAR_CANDIDATES = 200  # items sharing the most trigrams with a misspelt word, checked one by one
# While files are being indexed every write makes the postings stale: read them again at most this
# many read-durations apart, so a search beside an ingest spends at most a tenth of a core on it.
READ_SPACING = 10

log = logging.getLogger(__name__)


class FullText(CatalogBase):
    """BM25 tiers over FTS5, whole words scored from postings held in memory once a process searches twice."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._postings: Postings | None = None
        self._reading = threading.Lock()  # one read of the postings at a time
        self._query_tokens = QueryTokens()
        self._searched = False
        self._next_read = 0.0  # monotonic time before which a stale search does not start a read

    def read_postings(self) -> None:
        """Hold the whole-word index's postings in memory now (a read of ~2 s per million postings).

        Searching does this by itself, in the background, from its second query on: a process
        that searches once (``spyglass search``) never pays for it. A write makes the postings
        stale; searches then use FTS5 until they are read again.
        """
        with self._reading:
            self._read()

    def _read(self) -> None:
        started = time.monotonic()
        try:
            with self.engine.connect() as conn:
                postings = Postings.read(conn)
                # a write that landed mid-read leaves them unused: a later search reads again
                if structure(conn) == postings.version:
                    self._postings = postings
        finally:
            self._next_read = time.monotonic() + READ_SPACING * (time.monotonic() - started)

    # --- forgetting -------------------------------------------------------------------------
    def forget_deleted_words(self, *, always: bool = False) -> None:
        """Merge the words of deleted or rewritten items out of the FTS5 indexes (``always``: even
        when no deletion raised the flag, as ``spyglass compact`` does).

        FTS5 records a deletion as a marker beside the old entry, which stays in its segment
        until a merge: a deleted note's words would live on in the file. FTS5's own
        ``secure-delete`` option removes them at once but needs SQLite 3.42 (the interpreter's
        here is 3.40), so the indexes are merged whole (``optimize``) once after the writes that
        raised the flag (migration v10): a cost proportional to the text held, paid per deletion
        or per index run, not per row. ``PRAGMA secure_delete`` (``db.py``) zeroes the freed
        pages, and the WAL, which still holds the old pages, is checkpointed and truncated when
        no reader holds it.
        """
        with self.engine.begin() as conn:
            if not (always or Records(conn).get_meta(FORGET_FLAG)):
                return
            for table in ("items_fts", "items_grams"):
                conn.execute(text(f"INSERT INTO {table} ({table}) VALUES ('optimize')"))
            conn.execute(delete(meta).where(meta.c.key == FORGET_FLAG))
        self.run_alone(CHECKPOINT)

    # --- text search ------------------------------------------------------------------------
    def bm25(
        self,
        query: str,
        k: int = 10,
        *,
        kinds: Sequence[str] | None = None,
        allow: Sequence[int] | None = None,
    ) -> list[tuple[int, float]]:
        """Best ``k`` items for a full-text query as (item id, score), higher is better.

        Three tiers over an item's body text, names and OCR text, each filling only what
        the one before left, and each scored below every hit of the one before:

        1. whole words, stemmed, case- and accent-insensitive, quoted phrases in order (BM25);
        2. substrings of three or more characters (``RE16`` inside ``ARE160``; a trigram index);
        3. for a word found nowhere, near spellings of it (OCR reads ``Revenue`` as ``Revenne``).

        ``kinds`` and ``allow`` restrict the items.
        """
        words, phrases = query_terms(query)
        words = content_words(words)
        terms = [*words, *phrases]
        if not terms:
            return []
        where, params = _restriction(kinds, allow)
        with self.engine.connect() as conn:
            hits = self._whole_words(conn, terms, where, params, k, kinds=kinds, allow=allow)
            if len(hits) < k and (long := [t for t in terms if len(t) >= 3]):
                hits = _below(hits, _match(conn, "items_grams", long, where, params, k), k)
            if len(hits) < k:
                unknown = [
                    w
                    for w in words
                    if len(w) >= NEAR_MIN_LENGTH and not _match(conn, "items_grams", [w], "", {}, 1)
                ]
                if unknown:
                    hits = _below(hits, _near(conn, unknown, where, params, k), k)
        return hits

    def _whole_words(
        self,
        conn: Connection,
        terms: list[str],
        where: str,
        params: dict[str, Any],
        k: int,
        *,
        kinds: Sequence[str] | None,
        allow: Sequence[int] | None,
    ) -> list[tuple[int, float]]:
        """Tier 1 from the postings when they are current (a quoted phrase scored by FTS5 and added);
        else FTS5 alone."""
        postings = self._postings
        if postings is not None and postings.version == structure(conn):
            singles, phrases = self._query_tokens.split(terms)
            return postings.top(singles, k, kinds, allow, _phrases(conn, phrases))
        if self._searched and not self._reading.locked() and time.monotonic() >= self._next_read:
            threading.Thread(target=self._read_quietly, name="spyglass-postings", daemon=True).start()
        self._searched = True
        return _match(conn, "items_fts", terms, where, params, k)

    def _read_quietly(self) -> None:
        if not self._reading.acquire(blocking=False):
            return  # another search started the read
        try:
            self._read()
        except (SQLAlchemyError, sqlite3.Error, RuntimeError) as error:  # closed, locked, written mid-read:
            # searches keep using FTS5 until the next try
            log.debug("postings not read: %s", error)
        finally:
            self._reading.release()


def _restriction(kinds: Sequence[str] | None, allow: Sequence[int] | None) -> tuple[str, dict[str, Any]]:
    where, params = "", {}
    if kinds is not None:
        where += " AND i.kind IN (SELECT value FROM json_each(:kinds))"
        params["kinds"] = json.dumps([str(kind) for kind in kinds])
    if allow is not None:
        where += " AND i.id IN (SELECT value FROM json_each(:allow))"
        params["allow"] = json.dumps([int(i) for i in allow])
    return where, params


def _match(
    conn: Connection, table: str, terms: Sequence[str], where: str, params: dict[str, Any], k: int
) -> list[tuple[int, float]]:
    """(item id, BM25 score) for any of ``terms`` (each quoted: a word or an ordered phrase)."""
    sql = (
        f"SELECT i.id, -bm25({table}) AS score FROM {table} f JOIN items i ON i.id = f.rowid "
        f"WHERE {table} MATCH :q{where} ORDER BY score DESC LIMIT :k"
    )
    match = " OR ".join(f'"{term}"' for term in terms)
    return [(int(r[0]), float(r[1])) for r in conn.execute(text(sql), {**params, "q": match, "k": k})]


def _phrases(conn: Connection, phrases: Sequence[str]) -> dict[int, float]:
    """Every row holding any of ``phrases``, with their BM25 (phrases are rare: no limit needed)."""
    if not phrases:
        return {}
    match = " OR ".join(f'"{phrase}"' for phrase in phrases)
    sql = "SELECT rowid, -bm25(items_fts) FROM items_fts WHERE items_fts MATCH :q"
    return {int(row): float(score) for row, score in conn.execute(text(sql), {"q": match})}


def _near(
    conn: Connection, words: Sequence[str], where: str, params: dict[str, Any], k: int
) -> list[tuple[int, float]]:
    """Items holding a near spelling of any of ``words``: candidates share trigrams, difflib decides."""
    grams = {word.lower()[i : i + 3] for word in words for i in range(len(word) - 2)}
    sql = (
        "SELECT i.id, coalesce(i.text, '') || ' ' || coalesce(i.names, '') || ' ' || coalesce(i.ocr, '') "
        f"FROM items_grams f JOIN items i ON i.id = f.rowid WHERE items_grams MATCH :q{where} "
        "ORDER BY bm25(items_grams) LIMIT :k"
    )
    match = " OR ".join(f'"{gram}"' for gram in sorted(grams))
    wanted = [fold(word) for word in words]
    scored = []
    for item_id, body in conn.execute(text(sql), {**params, "q": match, "k": NEAR_CANDIDATES}):
        found = set(query_terms(fold(body))[0])
        close = sum(near_any(word, found) for word in wanted)
        if close:
            scored.append((int(item_id), float(close)))
    return sorted(scored, key=lambda hit: -hit[1])[:k]


def _below(
    better: list[tuple[int, float]], worse: list[tuple[int, float]], k: int
) -> list[tuple[int, float]]:
    """``better`` then ``worse``'s new items, rescaled to score under the lowest of ``better``."""
    seen = {item for item, _ in better}
    extra = [(item, score) for item, score in worse if item not in seen]
    if better and extra:
        floor, top = min(s for _, s in better), max(s for _, s in extra)
        extra = [(item, 0.9 * floor * score / top) for item, score in extra] if top > 0 else extra
    return (better + extra)[:k]
