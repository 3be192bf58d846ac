"""Text retrieval evaluation: BM25, CLIP text, the text space and their fusion, side by side.

Two kinds of sets, both indexed by the product's own ingest into a temporary data
directory (chunking, CLIP, BM25 and the text-space stage as a user gets them):

- captions (a folder with ``captions.csv``, ``image,caption``): every caption is a
  document and a query; the right answers are the *other* captions of the same image.
- questions (a CSV of ``question,document`` over a folder of documents): the right
  answer is any passage of the named document.

Each query's lists come from ``Retriever.rank`` with the relevance floor off, so each
method is measured on its raw ranking. Recall@k is the fraction of queries with a
right answer in the top k; MRR is the mean of 1/rank of the first right answer among
the top ``FETCH`` (0 beyond).
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.errors import SpyglassError
from spyglass.kinds import ItemKind

if TYPE_CHECKING:
    from spyglass.engine import Engine

KS = (1, 5, 10)
FETCH = 50
METHODS = ("bm25", "clip", "text", "fused")


@dataclass
class TextQuery:
    text: str
    relevant: set[str]  # document names (relative to the corpus folder) that answer it
    own: str | None = None  # the query's own document, never counted (captions)


@dataclass
class TextEvalReport:
    dataset: str
    documents: int
    queries: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metric -> value
    seconds: float = 0.0


def caption_queries(folder: Path, corpus: Path, limit: int | None = None) -> list[TextQuery]:
    """Write each caption of the first ``limit`` images as its own document; one query per caption."""
    by_image: dict[str, list[str]] = defaultdict(list)
    with open(folder / "captions.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_image[row["image"]].append(row["caption"].strip())
    images = sorted(by_image)[:limit] if limit else sorted(by_image)
    corpus.mkdir(parents=True, exist_ok=True)
    queries = []
    for number, image in enumerate(images):
        names = [f"{number:05d}-{n}.txt" for n in range(len(by_image[image]))]
        for name, caption in zip(names, by_image[image]):
            (corpus / name).write_text(caption + "\n", encoding="utf-8")
        for name, caption in zip(names, by_image[image]):
            queries.append(TextQuery(caption, set(names) - {name}, own=name))
    return queries


def question_queries(questions: Path, folder: Path) -> list[TextQuery]:
    """Questions from a ``question,document`` CSV whose documents must exist in ``folder``."""
    queries = []
    with open(questions, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not (folder / row["document"]).is_file():
                raise SpyglassError(f"{questions} names {row['document']!r}, which is not in {folder}")
            queries.append(TextQuery(row["question"], {row["document"]}))
    if not queries:
        raise SpyglassError(f"{questions} holds no questions (columns: question,document)")
    return queries


def evaluate_text(
    engine: Engine, dataset: Path, *, questions: Path | None = None, limit: int | None = None, seed: int = 0
) -> TextEvalReport:
    """Index ``dataset`` with ``engine``'s models into a temporary directory and score every method.

    ``limit``: captions of that many images, or that many questions (a seeded sample).
    """
    from spyglass.engine import Engine
    from spyglass.filters import Filters
    from spyglass.retriever import Query, RankingOptions

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spyglass-eval-") as scratch:
        if questions is not None:
            corpus, queries = dataset, question_queries(questions, dataset)
            if limit and limit < len(queries):
                queries = random.Random(seed).sample(queries, limit)
        elif (dataset / "captions.csv").is_file():
            corpus = Path(scratch) / "captions"
            queries = caption_queries(dataset, corpus, limit)
        else:
            raise SpyglassError(f"{dataset} has no captions.csv; for a folder of documents give --questions")
        settings = engine.settings.model_copy(update={"data_dir": Path(scratch) / "data"})
        probe = Engine(settings, encoder=engine.encoder)
        if "text_encoder" in engine.__dict__:
            probe.__dict__["text_encoder"] = engine.text_encoder
        used_text = False
        try:
            probe.index(corpus, progress=False)
            root = str(corpus.absolute())
            options = RankingOptions(relevance_floor=False, dedupe=False)
            found: dict[str, list[int | None]] = {method: [] for method in METHODS}
            for query in queries:
                ranking = probe.retriever.rank(Query(text=query.text), Filters(), FETCH, options)
                names = {i: row["path"][len(root) + 1 :] for i, row in ranking.rows.items()}
                lists = {
                    "bm25": [i for i, _ in ranking.bm25],
                    "clip": [i for i, _ in ranking.dense if ranking.rows[i]["kind"] == ItemKind.CHUNK],
                    "text": [i for i, _ in ranking.semantic],
                    "fused": ranking.order,
                }
                used_text = used_text or bool(ranking.semantic)
                for method, ids in lists.items():
                    found[method].append(_first_right(ids, names, query))
            documents = probe.store.counts()["documents"]
        finally:
            probe.close()
    if not used_text:  # no text space here (off, or its model missing): nothing to report for it
        del found["text"]
    metrics = {method: _metrics(ranks) for method, ranks in found.items()}
    return TextEvalReport(str(dataset), documents, len(queries), metrics, time.monotonic() - started)


def _first_right(ids: list[int], names: dict[int, str], query: TextQuery) -> int | None:
    """0-based position of the first right answer, skipping the query's own document; None: not found."""
    position = 0
    for item in ids:
        name = names[item]
        if name == query.own:
            continue
        if name in query.relevant:
            return position
        position += 1
    return None


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = max(len(ranks), 1)
    metrics = {f"R@{k}": sum(r is not None and r < k for r in ranks) / n for k in KS}
    metrics["MRR"] = sum(1.0 / (r + 1) for r in ranks if r is not None) / n
    return metrics
