"""Ranking quality on a judged collection, documents as the unit, measured by ranx.

The collection is indexed by the product's own ingest into a temporary data directory
(chunking, CLIP, BM25 and the text-space stage, as a user gets them), and every query is
ranked by ``Retriever.rank`` with the relevance floor off, so each method is measured on its
raw ranking, at least ``DEPTH`` documents deep. A ranking of items becomes a ranking of
documents by each document's first (best) item. The rows:

- ``bm25``: BM25 over sections (a document's passages);
- ``clip``: CLIP's cosine of chunks;
- ``text``: the text space alone (a document's best section and best chunk, ``ranking``);
- ``fused``: what ``spyglass search`` returns;
- ``rrf``: a reference, plain reciprocal rank fusion (k = 60) of the ``bm25`` and ``text`` rows:
  if ``fused`` is not above it, the fusion does not earn its keep.

nDCG@10, Recall@100, MRR@10, MAP@100 and R@1 (the share of queries whose first document is
relevant) come from ranx, not from code of ours.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.errors import SpyglassError
from spyglass.evaluation.collections import JudgedCollection, document_id, load_collection
from spyglass.kinds import ItemKind

if TYPE_CHECKING:
    from spyglass.engine import Engine
    from spyglass.retriever.retriever import Ranking

DEPTH = 100  # documents every method is asked for: Recall@100 needs 100
MEASURES = {
    "nDCG@10": "ndcg@10",
    "R@100": "recall@100",
    "MRR@10": "mrr@10",
    "MAP": "map@100",
    "R@1": "hit_rate@1",
}
METHODS = ("bm25", "clip", "text", "fused", "rrf")


@dataclass
class JudgedReport:
    collection: str
    documents: int
    queries: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> measure -> value
    seconds: float = 0.0


def evaluate_judged(
    engine: Engine,
    dataset: Path,
    *,
    questions: Path | None = None,
    limit: int | None = None,
) -> JudgedReport:
    """Index ``dataset`` (any layout of ``collections``) with ``engine``'s models into a temporary
    directory and score every method."""
    from spyglass.engine import Engine

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spyglass-eval-") as scratch:
        collection = load_collection(dataset, Path(scratch), questions=questions, limit=limit)
        settings = engine.settings.model_copy(update={"data_dir": Path(scratch) / "data"})
        with Engine(settings, encoder=engine.encoder) as probe:
            probe.index(collection.corpus, progress=False)
            found = rank_all(probe, collection)
            documents = probe.store.counts()["documents"]
    metrics = {method: measure(collection, run) for method, run in found.items()}
    return JudgedReport(
        collection.name, documents, len(collection.queries), metrics, time.monotonic() - started
    )


def rank_all(engine: Engine, collection: JudgedCollection) -> dict[str, dict[str, dict[str, float]]]:
    """Every method's run over the collection's queries: method -> query -> document -> score."""
    runs: dict[str, dict[str, dict[str, float]]] = {}
    text_space = engine.state.text_space() is not None
    for qid, ranking in rankings(engine, collection):
        for method, run in method_runs(ranking, collection, qid, text_space).items():
            runs.setdefault(method, {})[qid] = run
    return runs


def rankings(engine: Engine, collection: JudgedCollection) -> Iterator[tuple[str, Ranking]]:
    """Each query's ranking, raw: no relevance floor, no duplicate collapse, ``DEPTH`` deep."""
    from spyglass.filters import Filters
    from spyglass.retriever import Query, RankingOptions

    options = RankingOptions(relevance_floor=False, dedupe=False, pool=DEPTH)
    for qid, text in collection.queries.items():
        yield qid, engine.retriever.rank(Query(text=text), Filters(), DEPTH, options)


def method_runs(
    ranking: Ranking, collection: JudgedCollection, qid: str, text_space: bool
) -> dict[str, dict[str, float]]:
    """One query's document ranking by each method (see the module's list)."""
    from spyglass.retriever.fusion import reciprocal_rank_fusion
    from spyglass.retriever.ranking import rank_documents

    signals, rows = ranking.signals, ranking.rows
    lists = {
        "bm25": [i for i, _ in signals.words if ItemKind(rows[i]["kind"]).section],
        "clip": [i for i, _ in signals.dense if ItemKind(rows[i]["kind"]).textual],
    }
    if text_space:
        meaning = rank_documents(signals, meaning_weight=1.0)
        lists["text"] = sorted(meaning, key=lambda i: -meaning[i])
    lists["fused"] = ranking.order
    runs = {method: document_run(ranking, items, collection, qid) for method, items in lists.items()}
    if text_space:
        runs["rrf"] = reciprocal_rank_fusion({m: list(runs[m]) for m in ("bm25", "text")}, {})
    return runs


def document_run(
    ranking: Ranking, items: list[int], collection: JudgedCollection, qid: str
) -> dict[str, float]:
    """Documents in the order of their first item, scored by position (ranx takes scores, not ranks);
    the query's own document (a caption) left out."""
    root, own = collection.corpus.absolute(), collection.own.get(qid)
    order: dict[str, float] = {}
    for item in items:
        name = document_id(Path(ranking.rows[item]["path"]), root)
        if name != own and name not in order:
            order[name] = float(-len(order))
    return order


def measure(collection: JudgedCollection, run: dict[str, dict[str, float]]) -> dict[str, float]:
    """The report's measures of one run, computed by ranx."""
    Qrels, Run, evaluate = _ranx()
    # ranx refuses an empty ranking: a query that found nothing gets one irrelevant placeholder
    filled = {q: run.get(q) or {"\x00nothing": 0.0} for q in collection.qrels}
    with warnings.catch_warnings():  # interpreted, numba warns of its own uint64 indexing
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        values = evaluate(Qrels(collection.qrels), Run(filled), list(MEASURES.values()), make_comparable=True)
    return {name: float(values[key]) for name, key in MEASURES.items()}


def _ranx():
    """ranx's ``Qrels``, ``Run`` and ``evaluate``, with its measures run by the interpreter.

    numba compiling them cost 30-80 s on their first use in a fresh environment (a new install,
    every CI run), against about a second interpreted for 300 queries and 7 measures, with the
    same values (checked to 1e-15). So numba's JIT is turned off before ranx is first imported;
    it stays off in this process (its typed lists check it when used), and nothing else here
    uses numba. A ranx imported earlier, compiled, is used as it is.
    """
    try:
        if "ranx" not in sys.modules:
            import numba

            numba.config.DISABLE_JIT = True
        from ranx import Qrels, Run, evaluate
    except ImportError:
        raise SpyglassError("judged evaluation needs ranx: pip install 'spyglass[eval]'") from None
    return Qrels, Run, evaluate
