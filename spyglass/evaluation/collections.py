"""Judged collections: documents, queries and relevance judgements in the layouts people publish them in.

- **BEIR**: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``)
  and ``qrels/test.tsv`` (``query-id corpus-id score``, with a header);
- **a folder of files**: ``docs/`` (or the folder itself) holding one file per document, its
  stem the document id, ``queries.csv`` (``qid,query``) and a qrels file (``qrels.tsv``,
  ``qrels.txt`` or ``qrels``) with BEIR's three columns (``qid doc relevance``) or TREC's four
  (``qid 0 doc relevance``) — ``../shared/data/cisi`` is one;
- **captions** (``captions.csv``, ``image,caption``): every caption is a document and a query,
  and the right answers are the *other* captions of the same image;
- **questions** (a CSV of ``question,document`` over a folder of documents): the right answer
  is the named document.

Every layout becomes a :class:`JudgedCollection`: a folder of files that ``spyglass index``
reads as a user's would, plus queries and judgements keyed by document id (a file's path
relative to the folder, without its suffix).
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spyglass.errors import SpyglassError

QRELS_NAMES = ("qrels.tsv", "qrels.txt", "qrels")


@dataclass
class JudgedCollection:
    name: str
    corpus: Path  # a folder of documents, one file each
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> document id -> relevance (> 0: relevant)
    own: dict[str, str] = field(default_factory=dict)  # query id -> its own document, never counted

    def sample(self, limit: int | None, seed: int = 0) -> JudgedCollection:
        """At most ``limit`` judged queries, a seeded sample: the same ones on every run."""
        judged = sorted(q for q in self.queries if self.qrels.get(q))
        if limit is None or limit >= len(judged):
            chosen = judged
        else:
            chosen = sorted(random.Random(seed).sample(judged, limit))
        return JudgedCollection(
            self.name,
            self.corpus,
            {q: self.queries[q] for q in chosen},
            {q: self.qrels[q] for q in chosen},
            {q: self.own[q] for q in chosen if q in self.own},
        )


def document_id(path: Path, corpus: Path) -> str:
    """A document's id: its path under the corpus folder, without the suffix."""
    return path.relative_to(corpus).with_suffix("").as_posix()


def judged(folder: Path) -> bool:
    """Is ``folder`` a judged collection of documents (BEIR's layout, or queries.csv with qrels)?"""
    folder = Path(folder)
    return folder.is_dir() and ((folder / "corpus.jsonl").is_file() or (folder / "queries.csv").is_file())


def load_collection(
    folder: Path, scratch: Path, *, questions: Path | None = None, limit: int | None = None
) -> JudgedCollection:
    """Read a judged collection in any layout above; documents that need writing out (BEIR's
    ``corpus.jsonl``, captions) are written under ``scratch``. ``limit`` samples that many queries
    (for captions: the captions of that many images)."""
    folder = Path(folder)
    if questions is not None:
        collection = _questions(folder, Path(questions))
    elif (folder / "corpus.jsonl").is_file():
        collection = _beir(folder, scratch / "corpus")
    elif (folder / "captions.csv").is_file():
        return _captions(folder, scratch / "captions", limit)
    elif (folder / "queries.csv").is_file():
        collection = _files(folder)
    else:
        raise SpyglassError(
            f"{folder} is not a judged collection: expected BEIR's corpus.jsonl, queries.jsonl and "
            "qrels/test.tsv; or queries.csv, a qrels file and docs/; or captions.csv; "
            "or a folder of documents with --questions"
        )
    if not collection.queries:
        raise SpyglassError(f"{folder} has no query with a relevance judgement")
    return collection.sample(limit)


def _files(folder: Path) -> JudgedCollection:
    corpus = folder / "docs" if (folder / "docs").is_dir() else folder
    qrels_file = next((folder / n for n in QRELS_NAMES if (folder / n).is_file()), None)
    if qrels_file is None:
        raise SpyglassError(f"{folder} has queries.csv but no qrels file ({', '.join(QRELS_NAMES)})")
    with open(folder / "queries.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"qid", "query"} <= rows[0].keys():
        raise SpyglassError(f"{folder / 'queries.csv'} needs the columns qid,query")
    queries = {row["qid"]: row["query"] for row in rows}
    qrels = _read_qrels(qrels_file)
    return JudgedCollection(folder.name, corpus, queries, {q: r for q, r in qrels.items() if q in queries})


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Three columns (``qid doc relevance``, BEIR) or four (``qid iteration doc relevance``, TREC);
    tabs or spaces; a header line is skipped."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (3, 4):
            raise SpyglassError(f"{path}:{number}: expected 3 or 4 columns, found {len(fields)}")
        query, doc, relevance = fields[0], fields[-2], fields[-1]
        if not re.fullmatch(r"-?\d+", relevance):
            if number == 1:
                continue  # a header: query-id corpus-id score
            raise SpyglassError(f"{path}:{number}: relevance {relevance!r} is not a whole number")
        if int(relevance) > 0:
            qrels[query][doc] = int(relevance)
    return dict(qrels)


def _beir(folder: Path, corpus: Path) -> JudgedCollection:
    """BEIR's files, each document written as ``<id>.txt`` (title, blank line, text)."""
    corpus.mkdir(parents=True, exist_ok=True)
    for record in _jsonl(folder / "corpus.jsonl"):
        text = "\n\n".join(part for part in (record.get("title"), record.get("text")) if part)
        (corpus / f"{_safe(str(record['_id']))}.txt").write_text(text + "\n", encoding="utf-8")
    queries = {str(r["_id"]): r["text"] for r in _jsonl(folder / "queries.jsonl")}
    split = folder / "qrels" / "test.tsv"
    if not split.is_file():
        raise SpyglassError(f"{folder} has no qrels/test.tsv")
    qrels = {
        q: {_safe(doc): rel for doc, rel in judged.items()}
        for q, judged in _read_qrels(split).items()
        if q in queries
    }
    return JudgedCollection(folder.name, corpus, {q: queries[q] for q in qrels}, qrels)


def _jsonl(path: Path) -> Iterator[dict]:
    if not path.is_file():
        raise SpyglassError(f"{path} is missing")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SpyglassError(f"{path}:{number}: not JSON ({exc.msg})") from None


def _safe(doc_id: str) -> str:
    """A document id usable as a file name (ids are often numbers, sometimes URLs)."""
    return re.sub(r"[^\w.\-]", "_", doc_id)[:200]


def _captions(folder: Path, corpus: Path, limit: int | None) -> JudgedCollection:
    """Each caption of the first ``limit`` images as its own document, and as a query for the others."""
    by_image: dict[str, list[str]] = defaultdict(list)
    with open(folder / "captions.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_image[row["image"]].append(row["caption"].strip())
    corpus.mkdir(parents=True, exist_ok=True)
    queries, qrels, own = {}, {}, {}
    for number, image in enumerate(sorted(by_image)[:limit] if limit else sorted(by_image)):
        ids = [f"{number:05d}-{n}" for n in range(len(by_image[image]))]
        for doc, caption in zip(ids, by_image[image]):
            (corpus / f"{doc}.txt").write_text(caption + "\n", encoding="utf-8")
            queries[doc], own[doc] = caption, doc
            qrels[doc] = {other: 1 for other in ids if other != doc}
    return JudgedCollection(folder.name, corpus, queries, {q: r for q, r in qrels.items() if r}, own)


def _questions(folder: Path, questions: Path) -> JudgedCollection:
    """Questions from a ``question,document`` CSV whose documents must exist in ``folder``."""
    queries, qrels = {}, {}
    with open(questions, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=1):
            if not (folder / row["document"]).is_file():
                raise SpyglassError(f"{questions} names {row['document']!r}, which is not in {folder}")
            queries[str(number)] = row["question"]
            qrels[str(number)] = {document_id(folder / row["document"], folder): 1}
    return JudgedCollection(questions.stem, folder, queries, qrels)
