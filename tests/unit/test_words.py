"""``spyglass/words.py``: how names, queries and bodies are cut into words and compared."""

from __future__ import annotations

from spyglass.words import (
    content_words,
    coverage,
    document_names,
    fold,
    held,
    holds,
    near_any,
    path_words,
    query_terms,
    query_words,
    split_name,
)


def test_names_keep_what_was_typed_and_add_their_parts():
    assert split_name("IMG_2041-finalDraft") == "IMG_2041-finalDraft IMG 2041 final Draft"
    assert split_name("beach") == "beach"  # nothing to split: not repeated
    assert path_words("/photos/Holiday 2023/Rome/IMG_1.jpg").split()[:3] == ["IMG_1", "IMG", "1"]
    assert "Rome" in path_words("/photos/Holiday 2023/Rome/IMG_1.jpg")
    assert "photos" not in path_words("/photos/Holiday 2023/Rome/IMG_1.jpg")  # only the nearest two folders
    named = document_names("/a/scan.pdf", {"title": "Lease agreement", "pages": 3})
    assert named.splitlines() == ["scan a", "Lease agreement"]


def test_query_terms_keep_phrases_and_drop_fts_syntax():
    words, phrases = query_terms('red "multi head attention" NEAR(x) OR -y*')
    assert phrases == ["multi head attention"]
    assert words == ["red", "NEAR", "x", "OR", "y"]  # only letters and digits: nothing FTS5 would parse
    assert query_terms('""') == ([], [])


def test_stop_words_go_unless_nothing_else_is_left():
    assert content_words(["the", "history", "of", "Rome"]) == ["history", "Rome"]
    assert content_words(["to", "be", "or", "not"]) == ["to", "be", "or", "not"]
    assert query_words(["The", "Café"]) == ["cafe"]


def test_folding_ignores_case_and_accents():
    assert fold("Grüße CAFÉ") == "grusse cafe"


def test_near_spellings_are_found_and_short_words_are_not_guessed():
    assert near_any("revenue", ["total", "revenne"])  # one letter read wrong
    assert not near_any("revenue", ["invoice", "total"])
    assert not near_any("cat", ["cot"])  # too short to guess from


def test_coverage_counts_the_share_of_the_query_a_body_holds():
    assert coverage("A red square on white", ["red", "circle"]) == 0.5
    assert coverage("Quarterly Revenne report", ["revenue"]) == 1.0  # nearly spelled counts
    assert coverage("anything", ["the", "of"]) == 0.0  # no term matters
    assert holds("Berbers of the Atlas", ["berber"]) and not holds("Atlas", ["berber"])


def test_held_is_the_share_of_wanted_words_inside_a_body():
    wanted = query_words(["berber", "languages", "Atlas"])
    assert held("The Berbers speak many LANGUAGES.", wanted) == 2 / 3
    assert held("Ça và: l'Atlas", wanted) == 1 / 3  # accents folded in a non-ASCII body
    assert held("anything", []) == 0.0
