"""Words people search by that are not an item's body text: its file and folder names, the
titles, descriptions and keywords its file carries, and how a query is split into them.

A photo's words are mostly outside its pixels: ``IMG_2041 Holiday in Rome.jpg`` in a folder
``2023 SummerTrip``, a keyword its owner typed in Lightroom, a PDF's title. The catalog keeps
them in the ``names`` column of a document's lead item, where BM25 (whole words and
substrings) sees them; filters see the same values in the metadata table.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher
from pathlib import PurePosixPath
from typing import Any

# Metadata keys whose values describe the content (loaders fill them from EXIF/IPTC/XMP and PDF info).
DESCRIPTIVE_KEYS = ("title", "description", "keywords", "subject", "author")
FOLDERS_NAMED = 2  # parent folders whose names count ("Holiday 2023/Rome/IMG_1.jpg": both)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_SEPARATORS = re.compile(r"[\W_]+")
_QUOTED = re.compile(r'"([^"]+)"')
# Words BM25 leaves out of a query: the stop set of Lucene's EnglishAnalyzer (Elasticsearch's
# ``_english_``), a published standard, not a list fitted here. They rank nothing (IDF near 0) and
# cost the most: each matches nearly every section, and every match is scored.
BM25_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
NEAR_MIN_LENGTH = 4  # shorter words have too many near spellings to guess from
NEAR_RATIO = 0.75  # difflib similarity: one wrong letter in 7, two in 8 or more
# Words a query holds that a picture's text need not: "the invoice from acme" is found by "invoice ... acme".
STOP_WORDS = frozenset(
    "a an the of in on at to for from with by and or is are was were this that these those "
    "which what who where when why how do does did show find me my photo photos picture pictures "
    "image images".split()
)


def split_name(name: str) -> str:
    """``IMG_2041-finalDraft`` -> ``IMG_2041-finalDraft IMG 2041 final Draft``: the name as typed, then its parts."""
    parts = [piece for token in _SEPARATORS.split(name) for piece in _CAMEL.split(token) if piece]
    split = " ".join(parts)
    return name if split == name else f"{name} {split}".strip()


def path_words(path: str) -> str:
    """The file's stem and its nearest folders' names, split on separators and camelCase."""
    pure = PurePosixPath(path)
    names = [pure.stem, *(parent.name for parent in list(pure.parents)[:FOLDERS_NAMED])]
    return " ".join(split_name(name) for name in names if name)


def document_names(path: str, metadata: Mapping[str, Any]) -> str:
    """Everything a document is called or described as, for its lead item's ``names``."""
    described = [str(metadata[key]) for key in DESCRIPTIVE_KEYS if metadata.get(key)]
    return "\n".join([path_words(path), *described])


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """(words, phrases): quoted parts are phrases kept in order; every other run of letters and digits a word.

    Only letters and digits survive, so user input cannot inject FTS5 syntax.
    """
    phrases = [" ".join(_words(p)) for p in _QUOTED.findall(query)]
    rest = _QUOTED.sub(" ", query)
    return _words(rest), [p for p in phrases if p]


def content_words(words: list[str]) -> list[str]:
    """``words`` without BM25's stop words; all of them when nothing else is left ("to be or not to be")."""
    return [word for word in words if fold(word) not in BM25_STOP_WORDS] or words


def _words(text: str) -> list[str]:
    return [word for word in "".join(c if c.isalnum() else " " for c in text).split() if word]


def fold(text: str) -> str:
    """Case- and accent-free form for comparing words (``Grüße`` -> ``grusse``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def near_any(term: str, words: Iterable[str]) -> bool:
    """One of ``words`` is spelled nearly like ``term`` (OCR reads ``Revenue`` as ``Revenne``); all folded.

    Runs for every word of a page against each query word, so the matcher keeps the term
    (difflib caches its second sequence) and cheap bounds (lengths, then shared letters)
    rule most words out before the full comparison.
    """
    if len(term) < NEAR_MIN_LENGTH:
        return False
    matcher = SequenceMatcher(None, b=term)
    for word in words:
        if 2 * min(len(term), len(word)) < NEAR_RATIO * (len(term) + len(word)):
            continue
        matcher.set_seq1(word)
        if matcher.quick_ratio() >= NEAR_RATIO and matcher.ratio() >= NEAR_RATIO:
            return True
    return False


def coverage(body: str, terms: list[str]) -> float:
    """The share of the query's terms that matter (not stop words) found in ``body``: as a word,
    inside one, or nearly spelled. 0 when no term matters."""
    wanted = [term for term in map(fold, terms) if term not in STOP_WORDS]
    if not wanted:
        return 0.0
    folded = fold(body)
    words = set(_words(folded))
    return sum(_found(term, folded, words) for term in wanted) / len(wanted)


def held(body: str, wanted: list[str]) -> float:
    """The share of ``wanted`` (``query_words``: folded, no stop words) that ``body`` holds, as a word
    or inside one ("berber" in "Berbers"); cheap enough for every chunk of a query's candidates."""
    if not wanted:
        return 0.0
    folded = body.casefold() if body.isascii() else fold(body)
    return sum(term in folded for term in wanted) / len(wanted)


def query_words(terms: list[str]) -> list[str]:
    """A query's content words (not BM25's stop words), folded once for ``held``."""
    return [fold(term) for term in content_words(terms)]


def holds(body: str, terms: list[str]) -> bool:
    """Any of ``terms`` is in ``body``, as a word, inside one, or nearly spelled (case and accents ignored)."""
    folded = fold(body)
    words = set(_words(folded))
    return any(_found(fold(term), folded, words) for term in terms)


def _found(term: str, folded: str, words: set[str]) -> bool:
    return term in folded or near_any(term, words)
