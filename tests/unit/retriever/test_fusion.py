"""Rank fusion, MMR and duplicate collapse on hand-made inputs with known answers."""

import numpy as np
import pytest

from spyglass.retriever.fusion import RRF_K, collapse_duplicates, mmr, reciprocal_rank_fusion


def test_rrf_sums_weighted_reciprocal_ranks():
    fused = reciprocal_rank_fusion({"dense": [1, 2, 3], "bm25": [3, 4]}, {"dense": 1.0, "bm25": 2.0})
    assert fused[1] == pytest.approx(1 / (RRF_K + 1))
    assert fused[3] == pytest.approx(1 / (RRF_K + 3) + 2 / (RRF_K + 1))
    assert max(fused, key=fused.get) == 3  # found by both lists, first in the heavier one


def test_mmr_trades_relevance_for_novelty():
    a = np.array([1.0, 0.0])
    near_a = np.array([0.995, 0.0998])
    other = np.array([0.0, 1.0])
    vectors = {1: a, 2: near_a, 3: other}
    relevance = {1: 1.0, 2: 0.95, 3: 0.6}
    assert mmr([1, 2, 3], relevance, vectors, lam=1.0, k=3) == [1, 2, 3]  # pure relevance
    assert mmr([1, 2, 3], relevance, vectors, lam=0.5, k=3)[:2] == [1, 3]  # the near-copy of 1 drops


def test_collapse_by_hash_and_by_cosine():
    vectors = {
        1: np.array([1.0, 0.0]),
        2: np.array([0.999, 0.0447]),
        3: np.array([0.0, 1.0]),
        4: np.array([0.6, 0.8]),
    }
    hashes = {1: "h1", 2: "h2", 3: "h1", 4: None}
    assert collapse_duplicates([1, 2, 3, 4], hashes, {}, 1.0) == [1, 2, 4]  # 3 has 1's content
    assert collapse_duplicates([1, 2, 3, 4], hashes, vectors, 0.99) == [1, 4]  # 2 is 1 re-encoded
