"""BM25 from postings held in memory: FTS5's own scores, never stale, read by a process that searches twice."""

from __future__ import annotations

import csv
import time

import pytest
from conftest import shared_path

from spyglass.kinds import ItemKind
from spyglass.store import Store
from spyglass.store.catalog import fulltext
from spyglass.store.catalog.postings import Postings, QueryTokens
from spyglass.words import content_words, query_terms


def _store_of(tmp_path, texts: list[str], kinds: list[str]) -> tuple[Store, list[int]]:
    store = Store(tmp_path / "data", "m", 4)
    with store.write() as tx:
        document = tx.upsert_document(tx.ensure_source("folder", "/data"), "docs", status="indexed")
        ids = tx.add_items(document, [{"kind": kind, "text": body} for body, kind in zip(texts, kinds)])
    return store, ids


@pytest.fixture(scope="module")
def cisi(tmp_path_factory) -> tuple[Store, list[int], list[str]]:
    """CISI's 1,460 abstracts as sections (every tenth a picture's OCR text) and its 76 questions."""
    folder = shared_path("data", "cisi")
    texts = [path.read_text(encoding="utf-8") for path in sorted((folder / "docs").glob("*.txt"))]
    kinds = [ItemKind.IMAGE if i % 10 == 0 else ItemKind.PASSAGE for i in range(len(texts))]
    store, ids = _store_of(tmp_path_factory.mktemp("cisi"), texts, kinds)
    with open(folder / "queries.csv", newline="", encoding="utf-8") as handle:
        questions = [row["query"] for row in csv.DictReader(handle)]
    return store, ids, questions


def _terms(question: str) -> list[str]:
    words, phrases = query_terms(question)
    return [*content_words(words), *phrases]


def test_scores_are_fts5_bm25_on_every_cisi_question(cisi):
    store, ids, questions = cisi
    engine = store._catalog.engine
    tokens = QueryTokens()
    with engine.connect() as conn:
        postings = Postings.read(conn)
        where, params = fulltext._restriction([ItemKind.PASSAGE], ids[::3])
        phrased_questions = 0
        for question in [*questions, '"information retrieval" evaluated in "library science" schools']:
            terms = _terms(question)
            singles, phrases = tokens.split(terms)
            phrased = fulltext._phrases(conn, phrases)  # a quoted phrase: FTS5's score, added
            phrased_questions += bool(phrased)
            expected = dict(fulltext._match(conn, "items_fts", terms, "", {}, 50))
            found = dict(postings.top(singles, 50, None, None, phrased))
            assert sorted(found.values()) == pytest.approx(sorted(expected.values()), rel=1e-9)
            for item in found.keys() & expected.keys():
                assert found[item] == pytest.approx(expected[item], rel=1e-9)
            restricted = postings.top(singles, 20, [ItemKind.PASSAGE], ids[::3], phrased)
            assert [s for _, s in restricted] == pytest.approx(
                [s for _, s in fulltext._match(conn, "items_fts", terms, where, params, 20)], rel=1e-9
            )
    assert phrased_questions  # a phrase found in the abstracts: that path is held to FTS5 too


def test_a_word_split_in_two_or_a_phrase_is_left_to_fts5():
    tokens = QueryTokens()
    assert tokens.split(["Titles", "retrieving"]) == (["titl", "retriev"], [])  # porter, as items_fts stems
    assert tokens.split(["Café", "information retrieval", "—"]) == (["cafe"], ["information retrieval"])


def test_searches_use_the_postings_once_read_and_fts5_while_they_are_stale(tmp_path, monkeypatch):
    store, _ = _store_of(
        tmp_path,
        ["a quokka in the field", "notes on wombats", "quokka quokka sightings"],
        [ItemKind.PASSAGE] * 3,
    )
    calls = []
    match = fulltext._match
    monkeypatch.setattr(
        fulltext, "_match", lambda conn, table, *rest: calls.append(table) or match(conn, table, *rest)
    )
    before = store.bm25("quokka sightings")
    store.read_postings()
    calls.clear()
    after = store.bm25("quokka sightings")
    assert [item for item, _ in after] == [item for item, _ in before] == [3, 1]
    assert [score for _, score in after] == pytest.approx([score for _, score in before], rel=1e-9)
    assert "items_fts" not in calls  # whole words answered from memory (substrings still fill up to k)
    with store.write() as tx:  # a write: the postings are stale until read again
        document = tx.upsert_document(tx.ensure_source("folder", "/data"), "more", status="indexed")
        (new,) = tx.add_items(document, [{"kind": ItemKind.PASSAGE, "text": "sightings of a quokka family"}])
    assert new in [item for item, _ in store.bm25("quokka family")]
    assert "items_fts" in calls


def test_a_process_that_searches_twice_reads_the_postings_in_the_background(tmp_path, monkeypatch):
    store, ids = _store_of(
        tmp_path, [f"passage {i} about wombats" for i in range(50)], [ItemKind.PASSAGE] * 50
    )
    calls = []
    match = fulltext._match
    monkeypatch.setattr(
        fulltext, "_match", lambda conn, table, *rest: calls.append(table) or match(conn, table, *rest)
    )
    store.bm25("wombats", k=5)
    assert calls == ["items_fts"]  # one search: FTS5, and nothing read
    deadline = time.monotonic() + 30
    while calls and time.monotonic() < deadline:  # the second search starts the read
        calls.clear()
        hits = store.bm25("wombats", k=5)
        assert len(hits) == 5 and {item for item, _ in hits} <= set(ids)
        time.sleep(0.05)
    assert calls == []
