"""``indexer/chunking.py``: passages cut at paragraphs, chunks at sentences, spans into the original."""

from __future__ import annotations

import itertools

from spyglass.indexer.chunking import CHUNK_WORDS, OVERLAP_WORDS, PASSAGE_WORDS, passages


def sentences(count: int, words: int = 9, tag: str = "s") -> str:
    return " ".join(
        f"{tag}{i} " + " ".join(f"w{i}x{j}" for j in range(words - 1)) + "." for i in range(count)
    )


def test_blank_text_has_no_passages():
    assert passages("") == [] and passages(" \n\n \t") == []


def test_spans_point_into_the_original_text_without_surrounding_blanks():
    text = "\n\n  First paragraph here.  \n\n\nSecond one.\n"
    found = passages(text)
    assert [text[p.span.start : p.span.end] for p in found] == ["First paragraph here.  \n\n\nSecond one."]
    (passage,) = found
    for chunk in passage.chunks:
        piece = text[chunk.start : chunk.end]
        assert piece == piece.strip() and passage.span.start <= chunk.start < chunk.end <= passage.span.end


def test_chunks_stay_under_the_limit_and_overlap_at_sentence_ends():
    text = sentences(30)  # 270 words: one passage, several chunks
    (passage,) = passages(text)
    pieces = [text[c.start : c.end] for c in passage.chunks]
    assert len(pieces) > 5
    assert all(len(piece.split()) <= CHUNK_WORDS for piece in pieces)
    assert all(piece.endswith(".") for piece in pieces)  # cut at sentence ends
    for before, after in itertools.pairwise(pieces):
        shared = set(before.split()) & set(after.split())
        assert 0 < len(shared) <= OVERLAP_WORDS  # neighbours share a trailing sentence
    assert pieces[0].startswith("s0 ")
    assert "s29" in pieces[-1]  # nothing at the end is lost


def test_long_text_is_split_into_passages_at_paragraphs():
    paragraphs = [sentences(20, tag=f"p{k}s") for k in range(4)]  # 180 words each: two never fit in one
    assert 180 < PASSAGE_WORDS < 360
    text = "\n\n".join(paragraphs)
    found = passages(text)
    assert [text[p.span.start : p.span.end] for p in found] == paragraphs


def test_a_sentence_longer_than_a_chunk_is_cut_at_word_boundaries():
    text = " ".join(f"word{i}" for i in range(CHUNK_WORDS * 2 + 5))  # no sentence end at all
    (passage,) = passages(text)
    assert [len(text[c.start : c.end].split()) for c in passage.chunks] == [CHUNK_WORDS, CHUNK_WORDS, 5]
