"""Cross-modal search: the store's signals for a query, ranked by ``ranking``; filtered, diversified, floored.

A query's CLIP vector (see ``query.py``) is searched in the store, restricted to the filter's
allow-list; a text query is also looked up by its words (BM25 over sections and pictures' words)
and by its meaning (the text space, when one has embedded the collection). CLIP candidates below
the calibrated relevance floor for their modality are dropped. ``ranking`` fuses what is left into
one score in [0, 1]; then near-duplicates are collapsed, MMR applied on request, and the page is
returned with snippets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from spyglass.filters import Filters
from spyglass.kinds import MODALITIES, WORD_KINDS, ItemKind
from spyglass.retriever.calibration import relevance_floor
from spyglass.retriever.fusion import collapse_duplicates, mmr
from spyglass.retriever.query import Query, embed
from spyglass.retriever.ranking import Signals, min_max, rank
from spyglass.retriever.results import SearchResponse, SearchResult, matched_lines, parse_bbox, snippet
from spyglass.store import Hit, Store
from spyglass.words import query_terms

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder
    from spyglass.encoders.sentence.model import SentenceEncoder

T = TypeVar("T")

EMPTY_INDEX = (
    "The index is empty: add your files with `spyglass index PATH` "
    "(or upload them on the web page / POST /v1/documents), then search again."
)


@dataclass
class RankingOptions:
    hybrid: bool = True  # BM25 joins text queries
    semantic: bool = True  # the text space ranks passages, when it is filled
    # Documents each signal is asked for at least (the text space: 4 items a document; BM25: 2 sections),
    # or as many as the page reaches (offset + k) if more. The evaluation asks for 100, as Recall@100
    # needs; a page of 10 needs far fewer: CISI's nDCG@10 is 0.468 with 25, 0.466 with 100, and a
    # search costs a quarter less.
    pool: int = 25
    diversity: float | None = None  # MMR lambda in (0, 1]; None: off
    dedupe: bool = True  # same file content (hash) shown once
    # also collapse items at least this similar (e.g. 0.98 for re-encodes)
    duplicate_cosine: float | None = None
    relevance_floor: bool = True
    overfetch: int = 4


@dataclass
class Ranking:
    """What the store found for a query (``signals``) and their fusion."""

    signals: Signals
    fused: dict[int, float]  # each result's score, in [0, 1]
    order: list[int]  # fused, best first
    floors: dict[str, float]
    hidden: int = 0  # CLIP candidates below the relevance floor that nothing else found

    @property
    def rows(self) -> dict[int, dict]:
        return self.signals.rows


TextSpace = Callable[[], "tuple[Store, SentenceEncoder] | None"]


class Retriever:
    def __init__(
        self,
        store: Store,
        encoder: Encoder | QueryEncoder,
        *,
        text_space: TextSpace | None = None,
        ensemble: bool = False,
        max_pixels: int = 178_956_970,
    ) -> None:
        """``text_space`` is asked per search, so a text space filled after start-up is used at once."""
        self.store, self.encoder, self.text_space = store, encoder, text_space
        self.ensemble, self.max_pixels = ensemble, max_pixels
        self._floors: dict[tuple, tuple[float, float] | None] = {}

    def search(
        self,
        query: Query,
        filters: Filters | None = None,
        *,
        k: int = 10,
        offset: int = 0,
        options: RankingOptions | None = None,
    ) -> SearchResponse:
        filters, options = filters or Filters(), options or RankingOptions()
        if k < 1 or offset < 0:
            raise ValueError("k must be >= 1 and offset >= 0")
        # "No good match" would send a new user looking for better queries; counted only when the index is empty.
        if self.store.index.ntotal == 0 and self.store.counts()["items"] == 0:
            return SearchResponse([], no_match=True, message=EMPTY_INDEX, offset=offset, k=k)
        ranking = self.rank(query, filters, max((offset + k) * options.overfetch, 50), options)
        order, rows = ranking.order, ranking.rows
        if options.dedupe or options.diversity:
            order = self._rerank(order, ranking.fused, rows, options)
        if not order:
            message = "No good match in the collection" + (" for these filters" if not filters.empty else "")
            if ranking.hidden:  # all it found is below the floor: say so, and how to see it anyway
                matches = f"{ranking.hidden} match" + ("es" if ranking.hidden > 1 else "")
                message += (
                    f": {matches} below the relevance floor — `--all` / `relevance_floor: false` shows them"
                )
            message += "."
            return SearchResponse(
                [],
                no_match=True,
                message=message,
                floors=ranking.floors,
                offset=offset,
                k=k,
                hidden=ranking.hidden,
            )
        words = " ".join(query.terms()[0]).split()
        found = ranking.signals
        signals = {
            "dense": _positions(found.dense),
            "bm25": _positions(found.words),
            "semantic": _positions(sorted(found.meaning.items(), key=lambda pair: -pair[1])),
        }

        def found_by(item: int) -> dict[str, tuple[int, float] | None]:
            """Each signal's (rank, raw score) for a result; a chunk's words are its section's."""
            section = rows[item].get("parent_id")
            return {n: s.get(item) or (s.get(section) if n == "bm25" else None) for n, s in signals.items()}

        results = [
            self._result(rows[i], ranking.fused[i], found_by(i), words) for i in order[offset : offset + k]
        ]
        self._show_where_read(results, words)
        self._show_pages(results)
        return SearchResponse(results, floors=ranking.floors, offset=offset, k=k, hidden=ranking.hidden)

    def _show_pages(self, results: list[SearchResult]) -> None:
        """Passages from a PDF page carry the page's item, so a result can show the page it is on."""
        textual = [r for r in results if not r.has_thumbnail and r.page is not None]
        if textual:
            pages = self.store.page_items({r.document_id for r in textual})
            for result in textual:
                if (page := pages.get((result.document_id, result.page))) is not None:
                    result.page_item_id, box = page
                    result.page_size = box[2:] if box else None

    def _show_where_read(self, results: list[SearchResult], words: list[str]) -> None:
        """Pictures found by their words carry the OCR lines that hold them (to highlight and cite)."""
        read = [r.item_id for r in results if r.has_thumbnail and r.bm25 is not None]
        if read:
            outputs = self.store.stage_outputs("ocr", read)
            terms = [term for group in query_terms(" ".join(words)) for term in group]
            for result in results:
                result.ocr = matched_lines(outputs.get(result.item_id), terms)

    def rank(self, query: Query, filters: Filters, fetch: int, options: RankingOptions) -> Ranking:
        """Every signal of a query and their fusion (``ranking``); the evaluation compares them."""
        vector = embed(query, self.encoder, self.store, ensemble=self.ensemble, max_pixels=self.max_pixels)
        allow = self.store.allowed(filters)
        kept = self._kept(query.keep, allow)
        dense = self.store.search(vector, fetch, allow)[0]
        if kept is not None:
            dense = _merged(dense, self.store.search(vector, len(kept), kept)[0], _hit)
        dense = [h for h in dense if h.item_id != query.item_id]
        text_only = bool(query.terms()[0]) and not query.images and query.item_id is None
        if not text_only:  # a picture or an item asks "what looks like this": CLIP alone
            rows = self.store.items([h.item_id for h in dense])
            pairs = [(h.item_id, h.score) for h in dense if h.item_id in rows]
            fused = min_max(dict(pairs))
            signals = Signals(pairs, [], {}, {}, rows)
            return Ranking(signals, fused, sorted(fused, key=lambda i: -fused[i]), {})
        pool = max(fetch // options.overfetch, options.pool)
        by_words = bool(options.hybrid and query.bm25_text)
        words = self.store.bm25(query.bm25_text, 2 * pool, kinds=WORD_KINDS, allow=allow) if by_words else []
        if by_words and kept is not None:
            more = self.store.bm25(query.bm25_text, len(kept), kinds=WORD_KINDS, allow=kept)
            words = _merged(words, more, lambda pair: pair)
        space = self.text_space() if options.semantic and self.text_space else None
        meaning: dict[int, float] = {}
        if space is not None:
            text_store, model = space
            question = model.encode_texts([" ".join(query.terms()[0])])[0]
            found = text_store.search(question, 4 * pool, allow)[0]
            if kept is not None:
                found += text_store.search(question, len(kept), kept)[0]
            meaning = {h.item_id: h.score for h in found}
        # one read of every candidate's row, and of the chunks of every section found (any could be shown)
        parents = [i for i, _ in words] + list(meaning)
        children = [c for group in self.store.chunks_of(parents).values() for c in group]
        rows = self.store.items([h.item_id for h in dense] + parents + children)
        dense = [h for h in dense if h.item_id in rows]  # rows deleted since the search are gone
        floors, dropped = {}, set()
        if options.relevance_floor:
            kept, floors = self._apply_floors(dense, rows, allow, filters)
            dropped = {h.item_id for h in dense} - {h.item_id for h in kept}
            dense = kept
        dense_pairs = [(h.item_id, h.score) for h in dense]
        words = [(i, s) for i, s in words if i in rows]
        meaning = {i: s for i, s in meaning.items() if i in rows}
        if space is not None:
            unscored = [i for i, _ in words if i not in meaning and ItemKind(rows[i]["kind"]).section]
            chunks, sections = _complete_meaning(meaning, children, rows, text_store, question, unscored)
            meaning.update(sections)
        else:  # CLIP's cosine of chunks stands in for meaning
            clip_chunks = {i: s for i, s in dense_pairs if ItemKind(rows[i]["kind"]).textual}
            chunks, _ = _complete_meaning(clip_chunks, children, rows, self.store, np.ravel(vector))
        terms = [term for group in query_terms(query.bm25_text) for term in group]
        signals = Signals(
            dense_pairs, words, meaning, chunks, rows, terms, query.terms()[1], space is not None
        )
        fused = rank(signals)
        order = sorted(fused, key=lambda i: -fused[i])
        hidden = len(dropped - fused.keys())  # found by nothing but CLIP, below its floor
        return Ranking(signals, fused, order, floors, hidden)

    def _kept(self, keep: Sequence[int], allow: np.ndarray | None) -> np.ndarray | None:
        """``keep`` and the sections of its chunks (the words and meaning a chunk is ranked by), as
        sorted ids that pass the filters; None when none is left."""
        if not keep:
            return None
        rows = self.store.items(list(keep)).values()
        ids = np.unique(np.asarray([*keep, *(row["parent_id"] for row in rows if row.get("parent_id"))]))
        ids = ids if allow is None else np.intersect1d(ids, allow)
        return ids if len(ids) else None

    def _rerank(
        self, order: list[int], fused: dict[int, float], rows: dict[int, dict], options: RankingOptions
    ) -> list[int]:
        vectors: dict[int, np.ndarray] = {}
        if options.duplicate_cosine or options.diversity:  # only these compare candidates' vectors
            ids, matrix = self.store.vectors(order)
            vectors = {int(i): v for i, v in zip(ids, matrix)}
        if options.dedupe:
            hashes = {
                i: rows[i]["document_hash"] if rows[i]["kind"] == ItemKind.IMAGE else None for i in order
            }
            order = collapse_duplicates(order, hashes, vectors, options.duplicate_cosine or 1.0)
        if options.diversity:
            top = max(fused.values(), default=1.0)
            order = mmr(order, {i: fused[i] / top for i in order}, vectors, options.diversity, len(order))
        return order

    def _apply_floors(
        self, dense: list, rows: dict[int, dict], allow: np.ndarray | None, filters: Filters
    ) -> tuple[list, dict[str, float]]:
        """Per modality: drop the group unless its best hit clears the floor, then cut at the noise level."""
        best: dict[str, float] = {}
        for hit in dense:
            group = ItemKind(rows[hit.item_id]["kind"]).modality
            best[group] = max(best.get(group, -1.0), hit.score)
        floors, noise = {}, {}
        for group in best:
            calibrated = self._calibration(group, allow, filters) if group else None
            if calibrated is not None:
                floors[group], noise[group] = calibrated
        kept = [
            h
            for h in dense
            if (group := ItemKind(rows[h.item_id]["kind"]).modality) not in floors
            or (best[group] >= floors[group] and h.score >= noise[group])
        ]
        return kept, floors

    def _calibration(
        self, group: str, allow: np.ndarray | None, filters: Filters
    ) -> tuple[float, float] | None:
        """Cached per group and filter until the collection size doubles or halves."""
        key = (group, filters, self.store.index.ntotal.bit_length())
        if key not in self._floors:
            members = self.store.allowed(Filters(kinds=MODALITIES[group]))
            if allow is not None:
                members = np.intersect1d(members, allow)
            self._floors[key] = relevance_floor(self.store, self.encoder, members)
        return self._floors[key]

    @staticmethod
    def _result(
        row: dict, score: float, signals: dict[str, tuple[int, float] | None], words: list[str]
    ) -> SearchResult:
        text_snippet, spans = snippet(row["text"], words) if row["kind"] == ItemKind.CHUNK else (None, [])
        dense, bm25, semantic = (signals[name] or (None, None) for name in ("dense", "bm25", "semantic"))
        return SearchResult(
            item_id=row["id"],
            kind=row["kind"],
            score=score,
            dense=dense[1],
            bm25=bm25[1],
            semantic=semantic[1],
            dense_rank=dense[0],
            bm25_rank=bm25[0],
            semantic_rank=semantic[0],
            document_id=row["document_id"],
            path=row["path"],
            mime=row["mime"],
            page=row["page"],
            bbox=parse_bbox(row["bbox"]),
            timestamp=row["timestamp"],
            text=row["text"],
            snippet=text_snippet,
            highlights=spans,
            has_thumbnail=ItemKind(row["kind"]).visual,
        )


def _hit(hit: Hit) -> tuple[int, float]:
    return hit.item_id, hit.score


def _merged(hits: list[T], more: list[T], pair: Callable[[T], tuple[int, float]]) -> list[T]:
    """One signal's two lists as one, best first, each item once; ``pair`` reads (item, score)."""
    seen = {pair(hit)[0] for hit in hits}
    return sorted([*hits, *(hit for hit in more if pair(hit)[0] not in seen)], key=lambda hit: -pair(hit)[1])


def _positions(hits: list[tuple[int, float]]) -> dict[int, tuple[int, float]]:
    """item id -> (1-based rank, score) in one list."""
    return {item: (rank, score) for rank, (item, score) in enumerate(hits, start=1)}


def _complete_meaning(
    found: dict[int, float],
    children: list[int],
    rows: dict[int, dict],
    space: Store,
    question: np.ndarray,
    unscored: Sequence[int] = (),
) -> tuple[dict[int, float], dict[int, float]]:
    """Every candidate document's meaning, scored against ``question`` in ``space``, not only what the
    nearest-neighbour search returned: (chunks, sections).

    - chunks: those found and the ``children`` of every section found, by its words or its meaning
      (the chunk that holds a rare word is in one, whatever else of its document was found);
    - sections: the ``unscored`` ones (BM25 found them, the search did not return them), so a
      document found by its words is judged by its real meaning, not by the weakest one in the pool
      (Recall@100 on CISI: 0.492 imputing it, 0.517 reading it).

    ``found`` holds chunks and possibly sections and pictures. A chunk without a vector yet (the
    text stage's backlog) gets the lowest meaning of all the chunks scored.
    """
    chunks = {i: s for i, s in found.items() if ItemKind(rows[i]["kind"]).textual}
    new = [c for c in children if c in rows and c not in chunks and ItemKind(rows[c]["kind"]).textual]
    sections: dict[int, float] = {}
    if new or unscored:
        ids, matrix = space.vectors([*new, *unscored])
        cosines = (matrix @ question).tolist() if len(ids) else []
        for item, cosine in zip(ids.tolist(), cosines):
            (sections if ItemKind(rows[item]["kind"]).section else chunks)[item] = cosine
        lowest = min(chunks.values(), default=0.0)
        chunks.update((c, lowest) for c in new if c not in chunks)
    return chunks, sections
