"""Store benchmark: build time, query latency, recall@10, open time and RSS per index type.

Vectors are clustered synthetic 512-d unit vectors (a Gaussian mixture), written
once through the real catalog; each index type is then built from SQLite, saved,
and reopened in a fresh process so open time and RSS are its own.

    python benchmarks/store.py --sizes 100000 1000000 --kinds flat ivf hnsw

Targets on the 2-core dev machine: at 1M items, p50 single-query search <= 5 ms
with recall@10 >= 0.95, and open <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 512
QUERIES = 300
MODEL = "bench-model"


def mixture(count: int, seed: int, clusters: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((clusters, DIM)).astype(np.float32)
    data = centres[rng.integers(0, clusters, count)] + 1.0 * rng.standard_normal((count, DIM)).astype(
        np.float32
    )
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def populate(data_dir: Path, count: int, model_id: str = MODEL) -> float:
    """A catalog of ``count`` image items with clustered vectors, through the store's write API."""
    from spyglass.store import Store

    store = Store(data_dir, model_id, DIM, index="flat", autosave_changes=10**12)
    start = time.perf_counter()
    for offset in range(0, count, 20_000):
        vectors = mixture(min(20_000, count - offset), seed=offset)
        with store.write() as tx:
            source = tx.ensure_source("folder", "/bench")
            document = tx.upsert_document(source, f"doc-{offset}", status="indexed")
            ids = tx.add_items(document, [{"kind": "image"}] * len(vectors))
            tx.add_vectors(ids, vectors, model_id)
    elapsed = time.perf_counter() - start
    store.close()
    for file in (data_dir / "index").glob("*"):
        file.unlink()
    return elapsed


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(data_dir: Path, kind: str, phase: str, knobs: list[int]) -> dict:
    """One measurement in its own process: 'build' (from SQLite, then save) or 'query' (open saved, search)."""
    from spyglass.store import Store

    start = time.perf_counter()
    store = Store(data_dir, MODEL, DIM, index=kind, autosave_changes=10**12)
    opened = time.perf_counter() - start
    if phase == "build":
        store.close()
        return {"build_s": opened}
    result = {"open_s": opened, "rss_mb": rss_mb(), "ntotal": store.index.ntotal, "runs": []}
    queries = mixture(QUERIES, seed=999_999)
    truth = np.load(data_dir / "truth.npy")
    for knob in knobs or [None]:
        if knob is not None:
            setattr(store.index, "nprobe" if kind == "ivf" else "ef_search", knob)
        store.search(queries[0], 10)
        latencies, found = [], []
        for query in queries:
            tick = time.perf_counter()
            hits = store.search(query, 10)[0]
            latencies.append(time.perf_counter() - tick)
            found.append([h.item_id for h in hits])
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth.tolist())])
        result["runs"].append(
            {
                "knob": knob,
                "p50_ms": 1000 * np.percentile(latencies, 50),
                "p99_ms": 1000 * np.percentile(latencies, 99),
                "recall": float(recall),
            }
        )
    store.catalog.engine.dispose()
    return result


def ground_truth(data_dir: Path) -> None:
    """Exact top-10 for the query set, straight from the vectors in SQLite."""
    import faiss

    from spyglass.store.catalog import Catalog, VectorRecords
    from spyglass.store.db import open_engine

    catalog = Catalog(open_engine(data_dir / "catalog.sqlite3"))
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    with catalog.engine.connect() as conn:
        for ids, matrix in VectorRecords(conn).iter_vectors(MODEL):
            exact.add_with_ids(matrix, ids)
    _, truth = exact.search(mixture(QUERIES, seed=999_999), 10)
    np.save(data_dir / "truth.npy", truth)


def spawn(data_dir: Path, kind: str, phase: str, knobs: list[int]) -> dict:
    command = [sys.executable, __file__, "--worker", str(data_dir), kind, phase, *map(str, knobs)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


KNOBS = {"flat": [], "ivf": [16, 32, 64], "hnsw": [32, 64, 128]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        data_dir, kind, phase, *knobs = sys.argv[2:]
        print(json.dumps(worker(Path(data_dir), kind, phase, [int(k) for k in knobs])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf", "hnsw"])
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="spyglass-bench-"))
    print(f"{DIM}-d clustered vectors, {QUERIES} single queries, k=10; work dir {root}")
    for size in args.sizes:
        data_dir = root / f"n{size}"
        print(
            f"\n== {size:,} items: catalog ingest {populate(data_dir, size):.1f} s "
            f"({(data_dir / 'catalog.sqlite3').stat().st_size / 2**20:.0f} MiB SQLite)"
        )
        ground_truth(data_dir)
        print(
            f"{'index':>6} {'knob':>6} {'build s':>8} {'open s':>7} {'RSS MiB':>8} {'p50 ms':>7} {'p99 ms':>7} {'recall@10':>9}"
        )
        flat_p50 = None
        for kind in args.kinds:
            for file in (data_dir / "index").glob("*"):
                file.unlink()
            build = spawn(data_dir, kind, "build", [])["build_s"]
            result = spawn(data_dir, kind, "query", KNOBS.get(kind, []))
            for run in result["runs"]:
                flat_p50 = run["p50_ms"] if kind == "flat" else flat_p50
                ratio = (
                    f"  ({flat_p50 / run['p50_ms']:.1f}x faster than flat)"
                    if flat_p50 and kind != "flat"
                    else ""
                )
                print(
                    f"{kind:>6} {run['knob'] or '-'!s:>6} {build:>8.1f} {result['open_s']:>7.2f} {result['rss_mb']:>8.0f} "
                    f"{run['p50_ms']:>7.2f} {run['p99_ms']:>7.2f} {run['recall']:>9.3f}{ratio}"
                )


if __name__ == "__main__":
    main()
