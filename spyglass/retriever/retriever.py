"""Cross-modal search: CLIP similarity, the text space and BM25, fused; filtered, diversified, floored.

A query's CLIP vector (see ``query.py``) is searched in the store, restricted to the
filter's allow-list. A text query is also routed by what it looks for:

- pictures (images, pages, figures, keyframes) are ranked by CLIP, the one space that
  bridges words and pixels (dense hits below the calibrated relevance floor for their
  modality are dropped), fused with BM25 over their own words (file names, descriptions,
  text read in them): a picture whose words hold the whole query comes first;
- passages (text chunks) are ranked by the text space (a sentence-embedding model, when
  one has embedded the collection), with BM25 only settling near-ties
  (``fusion.tie_break_fusion``); without a text space, by CLIP's text similarity and BM25
  through reciprocal rank fusion;

and the two rankings are interleaved by reciprocal rank fusion into one list. Then
near-duplicates are collapsed, MMR applied on request, and the page is returned with snippets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spyglass.filters import Filters
from spyglass.kinds import MODALITIES, WORD_KINDS, ItemKind
from spyglass.retriever.calibration import relevance_floor
from spyglass.retriever.fusion import collapse_duplicates, mmr, reciprocal_rank_fusion, tie_break_fusion
from spyglass.retriever.query import Query, embed
from spyglass.retriever.results import SearchResponse, SearchResult, matched_lines, parse_bbox, snippet
from spyglass.store import Store
from spyglass.words import coverage, holds, query_terms

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder
    from spyglass.encoders.sentence import SentenceEncoder

# Text-space cosine from which text read in a picture counts as saying what the query says
# (MiniLM: paraphrases score 0.4-0.8, unrelated sentences around 0-0.2).
READ_MEANING = 0.35
EMPTY_INDEX = (
    "The index is empty: add your files with `spyglass index PATH` "
    "(or upload them on the web page / POST /v1/documents), then search again."
)


@dataclass
class RankingOptions:
    hybrid: bool = True  # BM25 joins text queries
    semantic: bool = True  # the text space ranks passages, when it is filled
    # With the text space: BM25, scaled to its best hit = 1, added to the text-space cosine at this weight.
    bm25_boost: float = 0.015
    # Without it: reciprocal-rank-fusion weights of CLIP's passage ranking and BM25's.
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    diversity: float | None = None  # MMR lambda in (0, 1]; None: off
    dedupe: bool = True  # same file content (hash) shown once
    # also collapse items at least this similar (e.g. 0.98 for re-encodes)
    duplicate_cosine: float | None = None
    relevance_floor: bool = True
    overfetch: int = 4


@dataclass
class Ranking:
    """Every list a query produced, each best first as (item id, score), and their fusion."""

    dense: list[tuple[int, float]]  # CLIP cosine, all kinds
    bm25: list[tuple[int, float]]
    semantic: list[tuple[int, float]]  # text-space cosine, passages
    semantic_scores: dict[int, float]  # text-space cosine of every passage candidate (BM25's too)
    fused: dict[int, float]
    order: list[int]  # fused, best first
    rows: dict[int, dict]
    floors: dict[str, float]
    hidden: int = 0  # CLIP candidates below the relevance floor that nothing else found


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
        signals = {name: _positions(getattr(ranking, name)) for name in ("dense", "bm25", "semantic")}
        results = [
            self._result(rows[i], ranking.fused[i], {n: s.get(i) for n, s in signals.items()}, words)
            for i in order[offset : offset + k]
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
        """Every ranking list of a query and their fusion (the evaluation compares them)."""
        vector = embed(query, self.encoder, self.store, ensemble=self.ensemble, max_pixels=self.max_pixels)
        allow = self.store.allowed(filters)
        dense = [h for h in self.store.search(vector, fetch, allow)[0] if h.item_id != query.item_id]
        text_only = bool(query.terms()[0]) and not query.images and query.item_id is None
        bm25, semantic = [], []
        if text_only and options.hybrid and query.bm25_text:
            bm25 = self.store.bm25(query.bm25_text, fetch, kinds=WORD_KINDS, allow=allow)
        space = self.text_space() if text_only and options.semantic and self.text_space else None
        semantic_scores: dict[int, float] = {}
        if space is not None:
            store, model = space
            question = model.encode_texts([" ".join(query.terms()[0])])
            semantic = [(h.item_id, h.score) for h in store.search(question, fetch, allow)[0]]
            semantic_scores = dict(semantic)
        ids = [h.item_id for h in dense] + [i for i, _ in bm25] + [i for i, _ in semantic]
        rows = self.store.items(ids)
        if space is not None:
            # BM25's passages outside the text space's top: their own cosine, so fusion compares like with like.
            found = [i for i, _ in bm25 if i in rows and ItemKind(rows[i]["kind"]).textual]
            ids, matrix = store.vectors([i for i in found if i not in semantic_scores])
            if len(ids):
                semantic_scores.update(zip(ids.tolist(), (matrix @ question[0]).tolist()))
            # Passages the text stage has not embedded yet (its backlog) still count, after all it scored.
            lowest = min(semantic_scores.values(), default=0.0)
            semantic_scores.update((i, lowest) for i in found if i not in semantic_scores)
        dense = [h for h in dense if h.item_id in rows]  # rows deleted since the search are gone
        floors, dropped = {}, set()
        if options.relevance_floor and text_only:
            kept, floors = self._apply_floors(dense, rows, allow, filters)
            dropped = {h.item_id for h in dense} - {h.item_id for h in kept}
            dense = kept
        dense_pairs = [(h.item_id, h.score) for h in dense]
        bm25 = [(i, s) for i, s in bm25 if i in rows]
        semantic = [(i, s) for i, s in semantic if i in rows]
        semantic_scores = {i: s for i, s in semantic_scores.items() if i in rows}
        if text_only:
            terms = [term for group in query_terms(query.bm25_text) for term in group]
            fused = self._blend(dense_pairs, bm25, semantic_scores, rows, options, terms, query.terms()[1])
        else:  # a picture or an item asks "what looks like this": CLIP alone
            fused = dict(dense_pairs)
        order = sorted(fused, key=lambda i: -fused[i])
        hidden = len(dropped - fused.keys())  # found by nothing but CLIP, below its floor
        return Ranking(dense_pairs, bm25, semantic, semantic_scores, fused, order, rows, floors, hidden)

    @staticmethod
    def _blend(
        dense, bm25, semantic_scores, rows, options: RankingOptions, terms, negatives
    ) -> dict[int, float]:
        """Pictures: CLIP's ranking, the word matches of pictures' names and OCR text, and the text
        space's matches of their OCR text, by RRF, those whose words hold the whole query first. Passages: by the text space with BM25
        settling ties (or CLIP and BM25 by RRF when there is no text space). Then the two
        lists interleaved."""

        def visual(i: int) -> bool:
            return ItemKind(rows[i]["kind"]).visual

        pictures = [i for i, _ in dense if visual(i)]
        # "EN-FR" printed in a table, "invoice" in a file name: the user's own words beat any similarity.
        # Words holding less than most of the query ("red" of "a red circle" in red-square.png) do not count.
        share = {
            i: coverage(_words_of(rows[i]), terms)
            for i, _ in bm25
            if visual(i) and not (negatives and holds(_words_of(rows[i]), negatives))  # "- red": not these
        }
        lists = {"dense": pictures}
        if worded := [i for i, _ in bm25 if share.get(i, 0.0) > 0.5]:
            lists["bm25"] = worded
        # Text read in a picture that means what the query says, in other words (the text space).
        meant = sorted(
            (i for i in semantic_scores if visual(i) and semantic_scores[i] >= READ_MEANING),
            key=lambda i: -semantic_scores[i],
        )
        if meant:
            lists["meaning"] = meant
        if len(lists) > 1:
            fused = reciprocal_rank_fusion(lists, {})
            pictures = sorted(fused, key=lambda i: (share.get(i) != 1.0, -fused[i]))
        semantic_scores = {i: s for i, s in semantic_scores.items() if not visual(i)}
        bm25 = [(i, s) for i, s in bm25 if not visual(i)]
        if semantic_scores:
            passages = tie_break_fusion(semantic_scores, bm25, options.bm25_boost)
        else:
            clip_passages = [i for i, _ in dense if not visual(i)]
            passages = reciprocal_rank_fusion(
                {"dense": clip_passages, "bm25": [i for i, _ in bm25]},
                {"dense": options.dense_weight, "bm25": options.bm25_weight},
            )
        if not pictures:
            return passages
        if not passages:
            # all pictures: in the order just decided, or CLIP's scores when no words counted
            return (
                {i: 1.0 / rank for rank, i in enumerate(pictures, start=1)} if len(lists) > 1 else dict(dense)
            )
        passage_order = sorted(passages, key=lambda i: -passages[i])
        return reciprocal_rank_fusion({"pictures": pictures, "passages": passage_order}, {})

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


def _words_of(row: dict) -> str:
    return " ".join(filter(None, (row.get("names"), row.get("ocr"), row.get("text"))))


def _positions(hits: list[tuple[int, float]]) -> dict[int, tuple[int, float]]:
    """item id -> (1-based rank, score) in one list."""
    return {item: (rank, score) for rank, (item, score) in enumerate(hits, start=1)}
