"""Split text into passages (for BM25 and the generator) and short chunks (for CLIP).

CLIP's text tower reads at most 77 tokens, so a chunk is about 45 words (BPE makes
~1.3 tokens a word for English prose), cut at sentence ends where possible and
overlapping its neighbour by a sentence or so. Each chunk belongs to a passage of
a few hundred words cut at paragraph ends, which keeps enough context for answers.
Spans are character offsets into the original text, so snippets can be located.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_WORDS = 45
OVERLAP_WORDS = 10
PASSAGE_WORDS = 300

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    span: Span
    chunks: list[Span]


def passages(text: str, start: int = 0, end: int | None = None) -> list[Passage]:
    """Passages of ``text[start:end]`` with their chunks; empty or whitespace-only text yields none."""
    end = len(text) if end is None else end
    result = []
    for p_start, p_end in _pack(text, _pieces(text, start, end, _PARAGRAPH_END), PASSAGE_WORDS, 0):
        chunks = [
            Span(s, e)
            for s, e in _pack(text, _pieces(text, p_start, p_end, _SENTENCE_END), CHUNK_WORDS, OVERLAP_WORDS)
        ]
        if chunks:
            result.append(Passage(Span(p_start, p_end), chunks))
    return result


def _pieces(text: str, start: int, end: int, separator: re.Pattern) -> list[tuple[int, int]]:
    """Non-blank (start, end) pieces of text[start:end] between separators, whitespace trimmed."""
    pieces, cursor = [], start
    for match in separator.finditer(text, start, end):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, end))
    trimmed = []
    for s, e in pieces:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            trimmed.append((s, e))
    return trimmed


def _words(text: str, span: tuple[int, int]) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(text, *span)]


def _pack(text: str, pieces: list[tuple[int, int]], limit: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Greedily join pieces up to ``limit`` words; split longer pieces at word boundaries.

    Consecutive windows share up to ``overlap`` words, taken as whole trailing pieces
    where they fit so overlaps also start at sentence boundaries.
    """
    units: list[tuple[int, int, int]] = []  # (start, end, words) with no unit above the limit
    for piece in pieces:
        words = _words(text, piece)
        for i in range(0, len(words), limit):
            part = words[i : i + limit]
            units.append((part[0][0], part[-1][1], len(part)))
    i = 0
    while i < len(units):
        j, count = i, 0
        while j < len(units) and (count + units[j][2] <= limit or j == i):
            count += units[j][2]
            j += 1
        yield units[i][0], units[j - 1][1]
        if j >= len(units):
            break
        back, kept = j, 0  # step back over trailing units that fit in the overlap
        while back - 1 > i and kept + units[back - 1][2] <= overlap:
            back -= 1
            kept += units[back][2]
        i = back
