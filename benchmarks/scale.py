"""Beyond one machine, measured on this one: Ray ingest overhead, and Milvus Lite against FAISS.

1. Ingest of Flickr8k photos with ``spyglass index`` (whole processes): in-process threads, then
   on a local Ray cluster with one and with two worker processes (one CPU and one embedding actor
   each). On a 2-core machine Ray cannot add cores; what it shows is its overhead, honestly.
2. Queries over N clustered 512-d vectors: FAISS flat (exact, the ground truth) and HNSW against
   Milvus Lite (FLAT and HNSW): p50 of single queries and recall@10. Then filters inside Milvus:
   an allow-list of ids (``id in [...]``, what Spyglass sends) against a filter on a stored
   scalar field (``kind == "page"``), selecting the same 10% of the vectors.

    python benchmarks/scale.py --images 400 --vectors 100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.store_helpers import clustered

from spyglass.store.index import create_index

ROOT = Path(__file__).resolve().parents[1]
FLICKR = ROOT / ".." / "shared" / "data" / "flickr8k-1k" / "images"
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "RAY_USAGE_STATS_ENABLED": "0",
    "SPYGLASS_OCR__ENABLED": "false",
    "SPYGLASS_TEXT__MODEL": "",
}


def ingest(args: argparse.Namespace, root: Path) -> None:
    photos = root / "photos"
    photos.mkdir()
    for source in sorted(FLICKR.iterdir())[: args.images]:
        (photos / source.name).symlink_to(source.resolve())
    print(f"ingest: {args.images} Flickr8k photos, model {args.model}, whole `spyglass index` processes")
    print(f"{'run':<22} {'s':>7} {'img/s':>7} {'vs local':>9}")
    local = run_index(args, root / "local", photos)
    print(f"{'local (threads)':<22} {local:>7.1f} {args.images / local:>7.1f} {1.0:>9.2f}")
    for workers in (1, 2):
        actors = args.actors or workers
        seconds = with_cluster(
            workers,
            lambda address, w=workers, a=actors: run_index(args, root / f"ray{w}", photos, address, a),
        )
        print(
            f"{f'ray, {workers} worker(s)':<22} {seconds:>7.1f} {args.images / seconds:>7.1f} {local / seconds:>9.2f}"
        )


def run_index(
    args: argparse.Namespace, data: Path, photos: Path, address: str | None = None, actors: int = 1
) -> float:
    command = [str(BIN / "spyglass"), "--model", args.model, "--data-dir", str(data), "index", str(photos)]
    env = dict(ENV)
    if address:
        command += ["--executor", f"ray={address}"]
        env["SPYGLASS_RAY__ACTORS"] = str(actors)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def with_cluster(workers: int, run) -> float:
    """A head with no CPUs (it schedules) and ``workers`` one-CPU worker processes."""
    port = "46391"
    light = ["--object-store-memory", str(300 * 2**20)]
    ray = str(BIN / "ray")
    head = [ray, "start", "--head", "--port", port, "--num-cpus", "0", "--include-dashboard=false", *light]
    subprocess.run(head, env=ENV, check=True, capture_output=True)
    try:
        for _ in range(workers):
            worker = [ray, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", *light]
            subprocess.run(worker, env=ENV, check=True, capture_output=True)
        return run(f"127.0.0.1:{port}")
    finally:
        subprocess.run([ray, "stop", "--force"], env=ENV, capture_output=True)


def queries(args: argparse.Namespace, root: Path) -> None:
    dim = 512
    # The mixture benchmarks/store.py uses: 2,000 clusters, spread 1.0 (tight clusters make top-10 ids ties).
    drawn = clustered(args.vectors + args.queries, dim, clusters=2000, spread=1.0)
    vectors, probes = drawn[: args.vectors], drawn[args.vectors :]  # queries from the same mixture
    ids = np.arange(args.vectors, dtype=np.int64)
    truth = None
    print(f"\nqueries: {args.vectors:,} clustered {dim}-d vectors, {args.queries} single queries, k=10")
    print(f"{'index':<22} {'build s':>8} {'p50 ms':>8} {'recall@10':>10}")
    for label, kind, options in (
        ("faiss flat (exact)", "flat", {}),
        ("faiss hnsw", "hnsw", {"m": 32, "ef_construction": 80, "ef_search": 128}),
        ("milvus lite FLAT", "milvus", {"index_type": "FLAT", "home": str(root / "milvus")}),
        (
            "milvus lite HNSW",
            "milvus",
            {"index_type": "HNSW", "M": 16, "ef": 64, "home": str(root / "milvus")},
        ),
    ):
        started = time.perf_counter()
        index = create_index(kind, dim, args.vectors, options)
        if not index.trained:
            index.train(vectors)
        index.add(ids, vectors)
        index.search(probes[:1], 10)  # warm up (Milvus seals its segments here)
        built = time.perf_counter() - started
        found, times = [], []
        for probe in probes:
            tick = time.perf_counter()
            found.append(index.search(probe[None], 10)[1][0])
            times.append(time.perf_counter() - tick)
        truth = truth if truth is not None else found
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
        print(f"{label:<22} {built:>8.1f} {1000 * np.median(times):>8.1f} {recall:>10.3f}")
        index.discard()
    filters(args, root, vectors, probes)


def filters(args: argparse.Namespace, root: Path, vectors: np.ndarray, probes: np.ndarray) -> None:
    """The same 10% selected by an id allow-list and by a scalar field, inside one Milvus collection."""
    from pymilvus import DataType, MilvusClient

    (root / "milvus-filters").mkdir()
    client = MilvusClient(str(root / "milvus-filters" / "milvus.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    schema.add_field("kind", DataType.VARCHAR, max_length=16)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    client.create_collection("filters", schema=schema, index_params=index)
    kinds = np.where(np.arange(len(vectors)) % 10 == 0, "page", "image")
    for start in range(0, len(vectors), 2000):
        rows = [
            {"id": i, "vector": vectors[i].tolist(), "kind": str(kinds[i])}
            for i in range(start, min(start + 2000, len(vectors)))
        ]
        client.insert("filters", rows)
    client.flush("filters")
    allowed = np.flatnonzero(kinds == "page").tolist()
    print(f"\nfilters inside Milvus Lite: {len(allowed):,} of {len(vectors):,} vectors allowed")
    answers = {}
    for label, expression in (
        ("allow-list id in [...]", f"id in {allowed}"),
        ('scalar kind == "page"', 'kind == "page"'),
    ):
        times, answers[label] = [], []
        for probe in probes:
            tick = time.perf_counter()
            result = client.search(
                "filters", data=[probe.tolist()], limit=10, filter=expression, output_fields=["id"]
            )
            times.append(time.perf_counter() - tick)
            answers[label].append(sorted(int(hit["id"]) for hit in result[0]))
        print(f"{label:<26} p50 {1000 * np.median(times):>7.1f} ms")
    first, second = answers.values()
    print(f"same results both ways: {first == second}")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--model", default="builtin:shapes")
    parser.add_argument("--actors", type=int, default=0, help="embedding actors (default: one per worker)")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spyglass-scale-"))
    try:
        if not args.skip_ingest:
            if not FLICKR.is_dir():
                raise SystemExit(f"{FLICKR} is missing: the ingest part needs the shared Flickr8k sample")
            ingest(args, root)
        queries(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
