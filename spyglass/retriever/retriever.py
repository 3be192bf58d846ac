"""Cross-modal search: dense CLIP similarity, BM25 for text, fused; filtered, diversified, floored.

One query vector (see ``query.py``) is searched in the store, restricted to the
filter's allow-list. Text queries also run BM25 over text chunks, and the two
rankings are fused with reciprocal rank fusion. Dense hits below the calibrated
relevance floor for their modality are dropped, near-duplicates collapsed, MMR
applied on request, and the requested page is returned with snippets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spyglass.filters import Filters
from spyglass.kinds import MODALITIES, TEXT_KINDS, ItemKind
from spyglass.retriever.calibration import relevance_floor
from spyglass.retriever.fusion import collapse_duplicates, mmr, reciprocal_rank_fusion
from spyglass.retriever.query import Query, embed
from spyglass.retriever.results import SearchResponse, SearchResult, parse_bbox, snippet
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder

EMPTY_INDEX = (
    "The index is empty: add your files with `spyglass index PATH` "
    "(or upload them on the web page / POST /v1/documents), then search again."
)


@dataclass
class RankingOptions:
    hybrid: bool = True
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    diversity: float | None = None  # MMR lambda in (0, 1]; None: off
    dedupe: bool = True  # same file content (hash) shown once
    # also collapse items at least this similar (e.g. 0.98 for re-encodes)
    duplicate_cosine: float | None = None
    relevance_floor: bool = True
    overfetch: int = 4


class Retriever:
    def __init__(
        self,
        store: Store,
        encoder: Encoder | QueryEncoder,
        *,
        ensemble: bool = False,
        max_pixels: int = 178_956_970,
    ) -> None:
        self.store, self.encoder = store, encoder
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
        vector = embed(query, self.encoder, self.store, ensemble=self.ensemble, max_pixels=self.max_pixels)
        allow = self.store.allowed(filters)
        fetch = max((offset + k) * options.overfetch, 50)
        dense = [h for h in self.store.search(vector, fetch, allow)[0] if h.item_id != query.item_id]
        text_only = bool(query.terms()[0]) and not query.images and query.item_id is None
        bm25 = []
        if options.hybrid and text_only and query.bm25_text:
            bm25 = self.store.bm25(query.bm25_text, fetch, kinds=TEXT_KINDS, allow=allow)
        rows = self.store.items([h.item_id for h in dense] + [i for i, _ in bm25])
        floors = {}
        dense = [h for h in dense if h.item_id in rows]  # rows deleted since the search are gone
        if options.relevance_floor and text_only:
            dense, floors = self._apply_floors(dense, rows, allow, filters)
        dense_score = {h.item_id: h.score for h in dense}
        bm25_score = dict(bm25)
        rankings = {"dense": [h.item_id for h in dense], "bm25": [i for i, _ in bm25]}
        fused = reciprocal_rank_fusion(rankings, {"dense": options.dense_weight, "bm25": options.bm25_weight})
        order = [i for i in sorted(fused, key=lambda i: -fused[i]) if i in rows]
        if options.dedupe or options.diversity:
            order = self._rerank(order, fused, rows, options)
        if not order:
            message = "No good match in the collection" + (
                " for these filters." if not filters.empty else "."
            )
            return SearchResponse([], no_match=True, message=message, floors=floors, offset=offset, k=k)
        dense_rank = {i: r for r, i in enumerate(rankings["dense"], start=1)}
        bm25_rank = {i: r for r, i in enumerate(rankings["bm25"], start=1)}
        words = " ".join(query.terms()[0]).split()
        results = [
            self._result(
                rows[i],
                fused[i],
                dense_score.get(i),
                bm25_score.get(i),
                dense_rank.get(i),
                bm25_rank.get(i),
                words,
            )
            for i in order[offset : offset + k]
        ]
        return SearchResponse(results, floors=floors, offset=offset, k=k)

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
        row: dict,
        score: float,
        dense: float | None,
        bm25: float | None,
        dense_rank: int | None,
        bm25_rank: int | None,
        words: list[str],
    ) -> SearchResult:
        text_snippet, spans = snippet(row["text"], words) if row["kind"] == ItemKind.CHUNK else (None, [])
        return SearchResult(
            item_id=row["id"],
            kind=row["kind"],
            score=score,
            dense=dense,
            bm25=bm25,
            dense_rank=dense_rank,
            bm25_rank=bm25_rank,
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
