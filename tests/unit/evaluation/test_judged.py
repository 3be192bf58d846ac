"""Judged collections (spyglass/evaluation): the layouts they come in, and ranking measured on real ones.

The quality tests index real judged data with the real MiniLM and assert the orderings that
matter: the fused ranking is at least as good as each of its parts and as plain RRF of them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from spyglass.engine import Engine
from spyglass.errors import SpyglassError
from spyglass.evaluation.collections import judged, load_collection
from spyglass.evaluation.judged import evaluate_judged
from spyglass.settings import Settings

# Real MiniLM over whole collections: minutes on 2 cores, and more on a loaded machine. The
# timeout is there to catch a hang, not to time them (CISI alone ran past 300 s on CI).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def write_beir(folder: Path) -> Path:
    folder.mkdir()
    corpus = [
        {"_id": "d1", "title": "Herons", "text": "Grey herons wait motionless at the edge of the water."},
        {"_id": "d2", "title": "Bread", "text": "Knead the dough, let it rise overnight, bake it hot."},
        {"_id": "http://x/3", "title": "", "text": "A flat tyre is fixed with a patch on the inner tube."},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [{"_id": "q1", "text": "birds standing in shallow water"}, {"_id": "q2", "text": "unjudged"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\thttp://x/3\t0\n")
    return folder


def test_beir_layout_is_read_with_documents_written_as_files(tmp_path):
    collection = load_collection(write_beir(tmp_path / "beir"), tmp_path / "scratch")
    assert judged(tmp_path / "beir")
    assert collection.queries == {"q1": "birds standing in shallow water"}  # only judged queries
    assert collection.qrels == {"q1": {"d1": 1}}  # relevance 0 is not relevant
    files = sorted(p.name for p in collection.corpus.iterdir())
    assert files == ["d1.txt", "d2.txt", "http___x_3.txt"]
    assert (collection.corpus / "d1.txt").read_text().startswith("Herons\n\nGrey herons")


def test_a_folder_with_trec_qrels_of_four_columns(tmp_path):
    folder = tmp_path / "trec"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "a.txt").write_text("alpha")
    (folder / "docs" / "b.txt").write_text("beta")
    (folder / "queries.csv").write_text("qid,query\n7,first letter\n8,second letter\n")
    (folder / "qrels").write_text("7 0 a 2\n8 0 b 1\n8 0 a 0\n")
    collection = load_collection(folder, tmp_path / "scratch")
    assert collection.corpus == folder / "docs"
    assert collection.qrels == {"7": {"a": 2}, "8": {"b": 1}}


@pytest.mark.parametrize(
    "qrels, message",
    [("1 a\n", "expected 3 or 4 columns"), ("1 a x\n2 b y\n", "is not a whole number")],
)
def test_bad_qrels_are_refused_with_the_line(tmp_path, qrels, message):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "queries.csv").write_text("qid,query\n1,x\n")
    (folder / "qrels.tsv").write_text(qrels)
    with pytest.raises(SpyglassError, match=message):
        load_collection(folder, tmp_path / "scratch")


def test_a_folder_that_is_no_collection_says_what_it_expected(tmp_path):
    with pytest.raises(SpyglassError, match="not a judged collection"):
        load_collection(tmp_path, tmp_path / "scratch")
    assert not judged(tmp_path)


def test_captions_are_judged_by_the_other_captions_of_their_image(tmp_path):
    collection = load_collection(shared_path("data", "flickr8k-1k"), tmp_path / "scratch", limit=3)
    assert len(collection.queries) == 15
    first = sorted(collection.queries)[0]
    assert set(collection.qrels[first]) == {f"00000-{n}" for n in range(1, 5)}
    assert collection.own[first] == first


@pytest.fixture(scope="module")
def cisi_subset(tmp_path_factory) -> Path:
    """25 CISI queries over the 908 documents judged for them or taken every fourth: real
    judgements, in a collection that embeds in one to three minutes on 2 cores."""
    cisi = shared_path("data", "cisi")
    with open(cisi / "queries.csv", newline="", encoding="utf-8") as handle:
        queries = sorted(csv.DictReader(handle), key=lambda row: int(row["qid"]))[:25]
    kept = {row["qid"] for row in queries}
    qrels = [
        line.split() for line in (cisi / "qrels.tsv").read_text().splitlines() if line.split()[0] in kept
    ]
    names = sorted(p.stem for p in (cisi / "docs").glob("*.txt"))
    documents = {doc for _, doc, _ in qrels} | set(names[::4])
    folder = tmp_path_factory.mktemp("cisi-subset")
    (folder / "docs").mkdir()
    for name in documents:
        (folder / "docs" / f"{name}.txt").symlink_to(cisi / "docs" / f"{name}.txt")
    with open(folder / "queries.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["qid", "query"])
        writer.writeheader()
        writer.writerows(queries)
    (folder / "qrels.tsv").write_text("".join("\t".join(row) + "\n" for row in qrels))
    return folder


def test_fused_ranks_cisi_at_least_as_well_as_each_part_and_plain_rrf(
    cisi_subset, tmp_path, shapes_encoder, minilm
):
    engine = Engine(Settings(data_dir=tmp_path / "data", text={"model": minilm}), encoder=shapes_encoder)
    report = evaluate_judged(engine, cisi_subset)
    m = report.metrics
    print({method: {k: round(v, 3) for k, v in values.items()} for method, values in m.items()})
    assert report.queries == 25 and set(m) == {"bm25", "clip", "text", "fused", "rrf"}
    for measure in ("nDCG@10", "R@100"):
        assert m["fused"][measure] >= max(m["bm25"][measure], m["text"][measure]), (measure, m)
    assert m["fused"]["nDCG@10"] >= m["rrf"]["nDCG@10"], m
    assert m["text"]["nDCG@10"] > m["clip"]["nDCG@10"] + 0.2, m  # builtin:shapes reads no prose


def test_fused_keeps_the_text_space_lead_on_flickr_captions(tmp_path, shapes_encoder, minilm):
    """Captions punish BM25 (short, reworded): fusion must not give the text space's lead away."""
    engine = Engine(Settings(data_dir=tmp_path / "data", text={"model": minilm}), encoder=shapes_encoder)
    report = evaluate_judged(engine, shared_path("data", "flickr8k-1k"), limit=100)
    m = report.metrics
    print({method: {k: round(v, 3) for k, v in values.items()} for method, values in m.items()})
    assert report.queries == 500
    assert m["text"]["R@1"] > m["bm25"]["R@1"] > m["clip"]["R@1"], m
    assert m["fused"]["nDCG@10"] >= m["rrf"]["nDCG@10"], m
    assert m["fused"]["nDCG@10"] >= m["text"]["nDCG@10"] - 0.015, m


def test_measures_come_from_ranx_and_nothing_is_compiled(tmp_path):
    """numba compiling ranx's measures cost 30-80 s in every fresh environment; interpreted they give
    the same values, so nothing may land in numba's cache (a child process: numba reads its settings once)."""
    script = """
import json, sys
from pathlib import Path
from spyglass.evaluation.collections import JudgedCollection
from spyglass.evaluation.judged import measure
qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"z": 1}}
collection = JudgedCollection("toy", Path("."), {q: q for q in qrels}, qrels)
run = {"q1": {"a": 0.0, "b": -1.0}, "q2": {"a": 0.0, "b": -1.0}}  # q3 found nothing
print(json.dumps(measure(collection, run)))
"""
    cache = tmp_path / "numba-cache"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    values = json.loads(done.stdout)
    assert values["MRR@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert values["R@1"] == pytest.approx(1 / 3) and values["R@100"] == pytest.approx(2 / 3)
    assert values["nDCG@10"] == pytest.approx((1 + 1 / np.log2(3)) / 3)
    assert not list(cache.rglob("*.nbi")), "ranx's measures were compiled"
    assert "Warning" not in done.stderr, done.stderr
