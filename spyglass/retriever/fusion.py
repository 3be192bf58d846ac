"""Fusion and reranking helpers: reciprocal rank fusion, MMR diversity, duplicate collapse."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RRF_K = 60  # the constant from Cormack et al.; damps the head of each list


def reciprocal_rank_fusion(rankings: dict[str, Sequence[int]], weights: dict[str, float]) -> dict[int, float]:
    """Fuse ranked id lists: score = sum over lists of weight / (RRF_K + rank), rank from 1."""
    fused: dict[int, float] = {}
    for name, ranking in rankings.items():
        weight = weights.get(name, 1.0)
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (RRF_K + rank)
    return fused


def mmr(
    order: Sequence[int], relevance: dict[int, float], vectors: dict[int, np.ndarray], lam: float, k: int
) -> list[int]:
    """Maximal marginal relevance: trade relevance against similarity to what is already picked."""
    chosen: list[int] = []
    pool = [i for i in order if i in vectors]
    rest = [i for i in order if i not in vectors]  # items without vectors keep their place after
    while pool and len(chosen) < k:

        def gain(item: int) -> float:
            redundancy = max((float(vectors[item] @ vectors[c]) for c in chosen), default=0.0)
            return lam * relevance[item] - (1 - lam) * redundancy

        best = max(pool, key=gain)
        chosen.append(best)
        pool.remove(best)
    return chosen + pool + rest


def collapse_duplicates(
    order: Sequence[int], hashes: dict[int, str | None], vectors: dict[int, np.ndarray], threshold: float
) -> list[int]:
    """Keep the first of items with the same content hash or cosine above ``threshold``."""
    kept: list[int] = []
    seen_hashes: set[str] = set()
    for item in order:
        digest = hashes.get(item)
        if digest and digest in seen_hashes:
            continue
        vector = vectors.get(item)
        if vector is not None and any(float(vector @ vectors[k]) >= threshold for k in kept if k in vectors):
            continue
        if digest:
            seen_hashes.add(digest)
        kept.append(item)
    return kept
