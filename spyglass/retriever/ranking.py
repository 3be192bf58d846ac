"""How a query's candidates become one ranked list: signals, normalised, fused, aggregated.

**Signals.** The store answers each with raw scores, best first (``Signals``):

- ``dense``: CLIP cosine, pictures and chunks (the one space that bridges words and pixels);
- ``words``: BM25 over sections (a document's passages, a few hundred words each) and over
  the words of pictures (file names, descriptions, text read in them), in the store's tiers;
- ``meaning``: the text-space cosine of chunks, sections and the text read in pictures.

**Text documents** are the unit a text query ranks (what judged collections judge): a document's
evidence is its best chunk and its best section in the text space, and its best section's BM25.

1. ``MEANING = SECTIONS·best section + (1 - SECTIONS)·best chunk``: a short document is one
   section, so its section vector reads it whole, while its chunks pinpoint a sentence; each
   alone ranked documents worse than the two together on every judged collection.
2. Each signal is min-max normalised over the query's candidate documents, so 1 is the best
   document that signal found for this query and 0 the weakest in its pool.
3. ``score = MEANING_WEIGHT·meaning + (1 - MEANING_WEIGHT)·words`` (0.8 : 0.2), in [0, 1].
4. A document is shown as its chunks (``passages_follow``): each at the document's score times its
   own evidence over the best chunk's of that document. A chunk's evidence is fused like a
   document's, from its cosine and its section's BM25 scaled by the share of the query's words it
   holds itself (so the chunk with the rare word is the one shown). A document's strong passages
   stay near it, weak ones fall back, and the unit a user reads (and ``k`` counts) is a chunk.

Both weights were chosen leave-one-collection-out (README, "Ranking"), never on one collection.
Without a text space, CLIP's cosine of chunks stands in for meaning and there are no sections.

**Pictures** are ranked by their own rules, all here:

- ``WHOLE_QUERY_WORDS``: a picture whose words hold the whole query ranks before CLIP's picks;
  words holding most of it (``coverage`` > 0.5) join by reciprocal rank fusion, fewer do not
  count ("red" of "a red circle" in ``red-square.png``); a negative term keeps pictures out;
- ``READ_MEANING``: text read in a picture that means what the query says (text-space cosine
  >= 0.35: a sign "Blueberry pancake recipe" for "how to cook breakfast with berries") joins too;
- their fused value over the best picture's is their score, never above a picture ranked before it.

**One scale.** ``score`` is in [0, 1] for every result: 1 is the best candidate of its kind on
every signal that ranked it. It orders results (pictures and passages are merged by it), MMR
trades it against novelty, and the web page, the API and MCP show it; it is relative to the
query. Whether a match is good at all is the relevance floor's question, asked of CLIP's raw
cosine (``calibration``), not of ``score``.

**Passages not embedded yet** (the text stage's backlog) are still found by their words, with the
lowest meaning any candidate has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from spyglass.kinds import ItemKind
from spyglass.retriever.fusion import reciprocal_rank_fusion
from spyglass.words import coverage, held, holds, query_words

# Chosen leave-one-collection-out on CISI, the wiki100 questions and the Flickr8k captions: the pair
# with the best mean nDCG@10 on the other two sets is this one when CISI or the captions are held
# out; holding out the wiki100 questions picks (0.5, 0.9) instead (README, "Ranking").
SECTIONS = 0.5  # a document's meaning: its best section's share beside its best chunk's
MEANING_WEIGHT = 0.8  # a document's score: meaning's share beside words (BM25)
# Text-space cosine from which text read in a picture counts as saying what the query says
# (MiniLM: paraphrases score 0.4-0.8, unrelated sentences around 0-0.2).
READ_MEANING = 0.35
MOST_OF_THE_QUERY = 0.5  # words a picture holds count when they are more than this share of the query

Scores = dict[int, float]


@dataclass
class Signals:
    """What the store found for one text query; every list best first as (item id, raw score)."""

    dense: list[tuple[int, float]]  # CLIP cosine, pictures and chunks, above the relevance floor
    words: list[tuple[int, float]]  # BM25, sections and pictures
    meaning: Scores  # text-space cosine of every candidate that has one (chunks, sections, pictures)
    chunks: Scores  # every candidate chunk's meaning: its text-space cosine, or CLIP's without a text space
    rows: dict[int, dict]  # every candidate's catalog row (kind, document_id, words)
    terms: list[str] = field(default_factory=list)  # the query's words, for the pictures' rules
    negatives: list[str] = field(default_factory=list)  # "- red": pictures holding these never count
    text_space: bool = True  # ``chunks`` holds text-space cosines (else CLIP's)


def rank(signals: Signals) -> Scores:
    """Every candidate result's score in [0, 1]; sections only score their documents."""
    return {**rank_pictures(signals), **rank_documents(signals)}


def rank_documents(
    signals: Signals, sections: float = SECTIONS, meaning_weight: float | None = None
) -> Scores:
    """Chunks of text documents, scored by their document's fused evidence (steps 1-4 above).

    ``meaning_weight``: MEANING_WEIGHT with a text space; without one, CLIP's cosine of chunks is a
    weaker stand-in, given no more weight than words (equal weights, as plain fusion would).
    """
    if meaning_weight is None:
        meaning_weight = MEANING_WEIGHT if signals.text_space else 0.5
    evidence = document_evidence(signals)
    documents = fuse_documents(evidence, sections, meaning_weight)
    return passages_follow(evidence, documents, meaning_weight)


@dataclass
class Evidence:
    """Per text document: its best chunk's and best section's meaning, its best section's words;
    per chunk: its meaning and its section's words."""

    chunk: Scores = field(default_factory=dict)
    section: Scores = field(default_factory=dict)
    words: Scores = field(default_factory=dict)
    chunks: dict[int, Scores] = field(default_factory=lambda: defaultdict(dict))  # doc -> chunk -> meaning
    chunk_words: Scores = field(default_factory=dict)  # chunk -> its section's BM25 x its share of the words


def document_evidence(signals: Signals) -> Evidence:
    rows, evidence = signals.rows, Evidence()
    wanted = query_words(signals.terms)
    section_words: Scores = {}
    for item, score in signals.words:
        if item in rows and ItemKind(rows[item]["kind"]).section:
            section_words[item] = score
            _keep_best(evidence.words, rows[item]["document_id"], score)
    for chunk, cosine in signals.chunks.items():
        if chunk in rows:
            evidence.chunks[rows[chunk]["document_id"]][chunk] = cosine
            if (section := rows[chunk].get("parent_id")) in section_words:
                # its section's BM25, as far as the chunk itself holds the query's words
                held_here = held(rows[chunk].get("text") or "", wanted)
                evidence.chunk_words[chunk] = section_words[section] * held_here
    for document, chunks in evidence.chunks.items():
        evidence.chunk[document] = max(chunks.values())
    for item, cosine in signals.meaning.items():
        if item in rows and ItemKind(rows[item]["kind"]).section:
            _keep_best(evidence.section, rows[item]["document_id"], cosine)
    return evidence


def fuse_documents(evidence: Evidence, sections: float, meaning_weight: float) -> Scores:
    """Documents that show a chunk, scored in [0, 1] (steps 1-3)."""
    documents = list(evidence.chunks)
    if evidence.section:
        meaning = _blend(evidence.section, evidence.chunk, sections, documents)
    else:
        meaning = {d: evidence.chunk[d] for d in documents}
    words = {d: evidence.words[d] for d in documents if d in evidence.words}
    return _convex(meaning, words, meaning_weight)


def passages_follow(evidence: Evidence, documents: Scores, meaning_weight: float) -> Scores:
    """Step 4: each chunk at its document's score times its own evidence (its meaning and its
    section's words, fused as documents are) over the best chunk's of that document."""
    everything = {c: m for chunks in evidence.chunks.values() for c, m in chunks.items()}
    own = _convex(everything, evidence.chunk_words, meaning_weight)
    scores = {}
    for document, chunks in evidence.chunks.items():
        best = max(own[c] for c in chunks)
        for chunk in chunks:
            scores[chunk] = documents[document] * (own[chunk] / best if best > 0 else 1.0)
    return scores


def rank_pictures(signals: Signals) -> Scores:
    """Pictures by CLIP, their words and the meaning of the text read in them (see the module's rules)."""
    rows = signals.rows

    def visual(item: int) -> bool:
        return item in rows and ItemKind(rows[item]["kind"]).visual

    pictures = [i for i, _ in signals.dense if visual(i)]
    share = {
        i: coverage(words_of(rows[i]), signals.terms)
        for i, _ in signals.words
        if visual(i) and not (signals.negatives and holds(words_of(rows[i]), signals.negatives))
    }
    lists = {"dense": pictures}
    if worded := [i for i, _ in signals.words if share.get(i, 0.0) > MOST_OF_THE_QUERY]:
        lists["words"] = worded
    meant = sorted(
        (i for i, s in signals.meaning.items() if visual(i) and s >= READ_MEANING),
        key=lambda i: -signals.meaning[i],
    )
    if meant:
        lists["meaning"] = meant
    fused = reciprocal_rank_fusion(lists, {})
    order = sorted(fused, key=lambda i: (share.get(i) != 1.0, -fused[i]))  # WHOLE_QUERY_WORDS
    return _monotone(order, fused)


def words_of(row: dict) -> str:
    """Everything a picture is found by in words: its names, the text read in it, its body text."""
    return " ".join(filter(None, (row.get("names"), row.get("ocr"), row.get("text"))))


def _convex(meaning: Scores, words: Scores, meaning_weight: float) -> Scores:
    """``meaning_weight``·meaning + the rest·words, each min-max normalised; a key without words gets 0 there."""
    meaning = min_max(meaning)
    if not words:
        return meaning
    words = min_max(words)
    return {k: meaning_weight * m + (1 - meaning_weight) * words.get(k, 0.0) for k, m in meaning.items()}


def min_max(scores: Scores) -> Scores:
    """Scores mapped onto [0, 1] over this pool: 1 for the best, 0 for the weakest (1 when all tie)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 1.0)
    return {item: (score - low) / (high - low) for item, score in scores.items()}


def _blend(first: Scores, second: Scores, weight: float, keys: Iterable[int]) -> Scores:
    """``weight``·first + (1 - weight)·second, a missing value taken as that signal's lowest."""
    low_first, low_second = min(first.values(), default=0.0), min(second.values(), default=0.0)
    return {k: weight * first.get(k, low_first) + (1 - weight) * second.get(k, low_second) for k in keys}


def _keep_best(best: Scores, key: int, score: float) -> None:
    if score > best.get(key, float("-inf")):
        best[key] = score


def _monotone(order: list[int], fused: Scores) -> Scores:
    """``order``'s fused values over the best one, each capped by the one before: [0, 1], non-increasing."""
    top = max(fused.values(), default=0.0)
    scores, ceiling = {}, 1.0
    for item in order:
        ceiling = min(ceiling, fused[item] / top if top > 0 else 0.0)
        scores[item] = ceiling
    return scores
