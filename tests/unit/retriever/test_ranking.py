"""The ranking pipeline (spyglass/retriever/ranking.py) on hand-made signals with known answers."""

from __future__ import annotations

import pytest

from spyglass.retriever.ranking import MEANING_WEIGHT, SECTIONS, Signals, min_max, rank, rank_documents


def row(
    item: int, kind: str, document: int, parent: int | None = None, text: str = "", names: str = ""
) -> dict:
    return {
        "id": item,
        "kind": kind,
        "document_id": document,
        "parent_id": parent,
        "text": text,
        "names": names,
    }


# Two documents: 1 (section 10, chunks 11, 12) and 2 (section 20, chunk 21).
ROWS = {
    10: row(10, "passage", 1),
    11: row(11, "chunk", 1, 10, "herons wait at the water"),
    12: row(12, "chunk", 1, 10, "the part number RE16 is on the box"),
    20: row(20, "passage", 2),
    21: row(21, "chunk", 2, 20, "grey birds near a lake"),
}


def signals(**fields) -> Signals:
    defaults = {"dense": [], "words": [], "meaning": {}, "chunks": {}, "rows": ROWS, "terms": ["RE16"]}
    return Signals(**{**defaults, **fields})


def test_min_max_maps_the_pool_onto_0_1():
    assert min_max({1: 0.2, 2: 0.6, 3: 0.4}) == pytest.approx({1: 0.0, 2: 1.0, 3: 0.5})
    assert min_max({1: 0.3, 2: 0.3}) == {1: 1.0, 2: 1.0}
    assert min_max({}) == {}


def test_a_document_fuses_its_sections_chunks_and_words_with_the_documented_weights():
    found = signals(
        meaning={10: 0.8, 20: 0.4, 11: 0.6, 21: 0.7},
        chunks={11: 0.6, 12: 0.2, 21: 0.7},
        words=[(20, 9.0), (10, 3.0)],
    )
    scores = rank_documents(found)
    # meaning: doc 1 = 0.5*0.8 + 0.5*0.6 = 0.70, doc 2 = 0.5*0.4 + 0.5*0.7 = 0.55 -> min-max 1, 0
    # words: doc 2 best (9 > 3) -> min-max 0, 1; fused: doc 1 = 0.8, doc 2 = 0.2
    assert (SECTIONS, MEANING_WEIGHT) == (0.5, 0.8)
    assert scores[11] == pytest.approx(0.8) and scores[21] == pytest.approx(0.2)
    assert 0.0 <= scores[12] < scores[11]  # a weaker chunk of document 1 follows it
    assert rank_documents(found, meaning_weight=1.0)[21] == pytest.approx(0.0)  # meaning alone: doc 1 wins
    assert rank_documents(found, meaning_weight=0.0)[21] == pytest.approx(1.0)  # words alone: doc 2 wins


def test_the_chunk_holding_the_query_words_is_the_one_a_document_shows():
    found = signals(chunks={11: 0.50, 12: 0.46, 21: 0.10}, words=[(10, 5.0)], terms=["RE16"])
    scores = rank_documents(found)
    assert scores[12] > scores[11]  # a little less similar, but it holds "RE16" and its section has the words
    assert max(scores, key=scores.get) == 12
    far = rank_documents(signals(chunks={11: 0.50, 12: 0.10, 21: 0.30}, words=[(10, 5.0)]))
    assert far[11] > far[12]  # the words settle near-ties; they do not overrule a far better passage


def test_without_a_text_space_clip_stands_in_with_the_same_weight_as_words():
    found = signals(chunks={11: 0.30, 21: 0.32}, words=[(10, 4.0), (20, 1.0)], text_space=False)
    scores = rank_documents(found)
    assert scores[11] == pytest.approx(0.5) and scores[21] == pytest.approx(0.5)  # 0.5*0 + 0.5*1 both ways


def test_pictures_whose_words_hold_the_whole_query_come_first_and_scores_never_rise():
    rows = {
        1: row(1, "image", 1, names="red circle"),
        2: row(2, "image", 2, names="blue square"),
        3: row(3, "image", 3, names="red square"),
    }
    found = Signals(
        dense=[(2, 0.9), (3, 0.8), (1, 0.7)],
        words=[(3, 2.0), (1, 1.5)],
        meaning={},
        chunks={},
        rows=rows,
        terms=["a", "red", "circle"],
    )
    scores = rank(found)
    order = sorted(scores, key=lambda i: -scores[i])
    assert order[0] == 1  # "red circle" holds the whole query, though CLIP put it last
    assert all(0.0 <= s <= 1.0 for s in scores.values()) and scores[1] == 1.0
    assert [scores[i] for i in order] == sorted(scores.values(), reverse=True)


def test_a_negative_term_keeps_a_picture_out_of_the_word_matches():
    rows = {1: row(1, "image", 1, names="red circle"), 2: row(2, "image", 2, names="circle")}
    found = Signals(
        dense=[(2, 0.9), (1, 0.8)],
        words=[(1, 2.0), (2, 1.0)],
        meaning={},
        chunks={},
        rows=rows,
        terms=["circle"],
        negatives=["red"],
    )
    scores = rank(found)
    assert scores[2] > scores[1]
