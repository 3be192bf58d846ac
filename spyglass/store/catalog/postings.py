"""The BM25 index's postings held in memory, so a long query scores in milliseconds at 100k items.

FTS5 ranks a query by scoring every row that holds any of its words: a CISI question (25 words,
most of them common) matches nine sections in ten, and at ~1.3 µs a row that is 60 ms at 100,000
items. The same postings as arrays (term -> rows, with each row's BM25 weight for the term already
computed) score the same query with one ``bincount`` in about a millisecond.

Nothing here is a second source of truth:

- the postings are read from FTS5 itself (``fts5vocab``), so words are split and stemmed by the
  very tokenizer that indexed them, and the query's words go through that tokenizer too;
- the scores are FTS5's ``bm25()`` (k1 = 1.2, b = 0.75, idf floored at 1e-6, a row's length is
  all its columns), equal to it to rounding; a test holds them side by side;
- a snapshot knows the FTS5 structure record it was read at (every write changes it), and one
  that is not current is never used: the caller falls back to FTS5 while a new one is read.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from spyglass.store.migrations import WORD_TOKENIZER

K1, B = 1.2, 0.75  # FTS5's bm25() constants
IDF_FLOOR = 1e-6  # FTS5 gives a word in more than half the rows this idf, not a negative one


def structure(conn: Connection, table: str = "items_fts") -> bytes | None:
    """FTS5's structure record: it changes with every write to the index (its cookie counts them)."""
    return conn.execute(text(f"SELECT block FROM {table}_data WHERE id = 10")).scalar()


@dataclass(frozen=True)
class Postings:
    """One read of the full-text index: per term, its rows and their BM25 weights."""

    version: bytes | None
    terms: dict[str, int]  # stemmed token -> its slice of ``starts``
    starts: np.ndarray  # term t's postings are rows[starts[t]:starts[t + 1]]
    rows: np.ndarray  # positions in ``ids`` (int32)
    weights: np.ndarray  # idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b |row| / avg |row|))
    ids: np.ndarray  # item id of each row
    kind_names: tuple[str, ...]
    kinds: np.ndarray  # each row's item kind, as a position in ``kind_names``

    @classmethod
    def read(cls, conn: Connection, table: str = "items_fts") -> Postings:
        """Every (term, row, frequency) of ``table``: about 2 s per million postings.

        ``fts5vocab``'s row table lists the terms in index order with how many rows hold each;
        grouping its instance table by (term, row) walks the same order, so the counts cut the
        rows into terms without a string per posting.
        """
        version = structure(conn, table)
        raw = conn.connection.driver_connection  # plain tuples: a million result rows, no wrappers
        for view in ("row", "instance"):
            raw.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_{view}s USING fts5vocab(main, {table}, {view})"
            )
        vocabulary = raw.execute(f"SELECT term, doc FROM temp.{table}_rows").fetchall()
        pairs = np.array(
            raw.execute(f"SELECT doc, count(*) FROM temp.{table}_instances GROUP BY term, doc").fetchall(),
            dtype=np.int64,
        ).reshape(-1, 2)
        members = raw.execute(
            f"SELECT f.id, coalesce(i.kind, '') FROM {table}_docsize f LEFT JOIN items i ON i.id = f.id ORDER BY f.id"
        ).fetchall()
        hits = np.array([count for _, count in vocabulary], dtype=np.int64)  # rows holding each term
        if hits.sum() != len(pairs):
            raise RuntimeError("the full-text index changed while it was read")
        ids = np.array([row[0] for row in members], dtype=np.int64)
        kind_names, kind_codes = np.unique(
            np.array([row[1] for row in members], dtype=object), return_inverse=True
        )
        rows = np.searchsorted(ids, pairs[:, 0])
        frequency = pairs[:, 1].astype(np.float64)
        lengths = np.bincount(rows, weights=frequency, minlength=len(ids))  # every token is an instance
        average = lengths.sum() / max(len(ids), 1)
        idf = np.log((len(ids) - hits + 0.5) / (hits + 0.5))
        idf[idf <= 0] = IDF_FLOOR
        norm = K1 * (1 - B + B * lengths[rows] / average) if average else K1
        weights = np.repeat(idf, hits) * frequency * (K1 + 1) / (frequency + norm)
        return cls(
            version,
            {term: position for position, (term, _) in enumerate(vocabulary)},
            np.concatenate([[0], np.cumsum(hits)]),
            rows.astype(np.int32),  # 12 bytes a posting with its weight: 18 MB at 100k items
            weights,
            ids,
            tuple(str(name) for name in kind_names),
            kind_codes.astype(np.int16),
        )

    def top(
        self,
        tokens: Sequence[str],
        k: int,
        kinds: Sequence[str] | None,
        allow: Sequence[int] | None,
        phrases: Mapping[int, float] | None = None,
    ) -> list[tuple[int, float]]:
        """Best ``k`` (item id, BM25 score) for rows holding any of ``tokens``; a repeated token counts
        again, as in FTS5. ``phrases``: item id -> the BM25 of the query's phrases (FTS5 scored them;
        BM25 is a sum over a query's phrases, so the two add up to the whole query's score)."""
        wanted = [self.terms[token] for token in tokens if token in self.terms]
        slices = [slice(self.starts[t], self.starts[t + 1]) for t in wanted]
        rows = np.concatenate([self.rows[s] for s in slices] + [np.zeros(0, np.int32)])
        weights = np.concatenate([self.weights[s] for s in slices] + [np.zeros(0)])
        if phrases:
            held = np.fromiter(phrases, np.int64, len(phrases))
            rows = np.concatenate([rows, np.searchsorted(self.ids, held)])
            weights = np.concatenate([weights, np.fromiter(phrases.values(), np.float64, len(phrases))])
        scores = np.bincount(rows, weights=weights, minlength=len(self.ids))
        found = np.flatnonzero(scores)  # every weight is positive
        if kinds is not None:
            wanted_kinds = {str(kind) for kind in kinds}
            codes = [code for code, name in enumerate(self.kind_names) if name in wanted_kinds]
            found = found[np.isin(self.kinds[found], codes)]
        if allow is not None:
            found = found[np.isin(self.ids[found], np.asarray(allow, dtype=np.int64))]
        if len(found) > k:
            found = found[np.argpartition(-scores[found], k - 1)[:k]]
        order = found[np.lexsort((self.ids[found], -scores[found]))]
        return [(int(self.ids[row]), float(scores[row])) for row in order]


class QueryTokens:
    """A query's words split and stemmed by the index's own tokenizer (a private in-memory FTS5 table)."""

    def __init__(self, tokenizer: str = WORD_TOKENIZER) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(f"CREATE VIRTUAL TABLE words USING fts5(word, tokenize='{tokenizer}')")
        self._db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(words, instance)")
        self._lock = threading.Lock()

    def split(self, terms: Sequence[str]) -> tuple[list[str], list[str]]:
        """(the tokens of the terms that are one token, the terms that are several: phrases, which need
        FTS5's positions); a term of no token is dropped, as FTS5 drops it."""
        with self._lock:
            self._db.executemany("INSERT INTO words (rowid, word) VALUES (?, ?)", enumerate(terms))
            found = self._db.execute("SELECT doc, term FROM tokens ORDER BY doc, offset").fetchall()
            self._db.execute("DELETE FROM words")
        by_term: dict[int, list[str]] = {}
        for position, token in found:
            by_term.setdefault(position, []).append(token)
        singles = [tokens[0] for tokens in by_term.values() if len(tokens) == 1]
        return singles, [terms[position] for position, tokens in by_term.items() if len(tokens) > 1]
