"""Text-query latency on a CISI-sized collection (1,460 abstracts, about 7,500 items), in-process.

The collection is indexed once (``--dir``, reused) with ``builtin:shapes`` as CLIP and the real
all-MiniLM-L6-v2 as the text space, as ``benchmarks/ranking.py`` does; then every CISI query
(long, several sentences: the hard case for BM25) is searched ``--repeats`` times through
``Engine.search`` (k=10), and p50/p99 are printed with the parts of one query measured apart.

``--scale ITEMS`` measures again over a copy grown to about that many items: the indexed
collection's documents copied through the store's write API (``copy_items``: their items, text,
BM25 entries and vectors in both spaces), so 100,000 items are real CISI text and real MiniLM
vectors without an hour of embedding. Copies tie with their originals; the cost of a search does
not depend on that.

``--baseline REV`` also measures the same queries with the code of an earlier commit (``git
archive``), in a subprocess over its own index, in the same run, so the two figures compare.

    python benchmarks/query_text.py [--scale 100000] [--baseline 615c3f1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cli import archived_code

ROOT = Path(__file__).resolve().parents[1]
CISI = ROOT.parent / "shared" / "data" / "cisi"


def measure(data_dir: Path, model: str, repeats: int) -> dict:
    """p50/p99 (ms) of whole searches, and of one query's parts, with the code importable here."""
    from spyglass import Engine

    with open(CISI / "queries.csv", newline="", encoding="utf-8") as handle:
        queries = [row["query"] for row in csv.DictReader(handle)]
    with Engine(settings(data_dir, model)) as engine:
        if not (data_dir / "catalog.sqlite3").exists():
            started = time.monotonic()
            engine.index(CISI / "docs", progress=False)
            print(f"indexed {CISI / 'docs'} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        engine.search(queries[0])  # warm-up: the models and the index load once
        # A long-lived process holds BM25's postings in memory from its second search on (read in the
        # background); read them now so every measured search is the steady state. Older code has none.
        getattr(engine.store, "read_postings", lambda: None)()
        samples = []
        for _ in range(repeats):
            for query in queries:
                tick = time.perf_counter()
                engine.search(query, k=10)
                samples.append(time.perf_counter() - tick)
        items = engine.store.counts()["items"]
    return {
        "items": items,
        "queries": len(samples),
        "p50": 1000 * np.percentile(samples, 50),
        "p99": 1000 * np.percentile(samples, 99),
    }


def grown(data_dir: Path, target: Path, model: str, items: int) -> Path:
    """A copy of the indexed ``data_dir`` with its documents copied until it holds about ``items`` items."""
    from spyglass import Engine

    if (target / "catalog.sqlite3").exists():
        return target
    shutil.copytree(data_dir, target, ignore=shutil.ignore_patterns("index"))
    with Engine(settings(target, model)) as engine:
        held = engine.store.counts()["items"]
        with engine.store.write() as tx:
            originals = tx.documents_under(str(CISI))
            for copy in range(1, max(1, round(items / held))):
                source = tx.ensure_source("folder", f"/copies/{copy}")
                for document in originals:
                    row = tx.document(document)
                    new = tx.upsert_document(source, row["path"], status="indexed", mime=row["mime"])
                    tx.copy_items(document, new)
    return target


def settings(data_dir: Path, model: str):
    """``builtin:shapes`` as CLIP, ``model`` as the text space, no OCR (the text is all there is)."""
    from spyglass import Settings

    return Settings(data_dir=data_dir, model="builtin:shapes", text={"model": model}, ocr={"enabled": False})


def measure_all(scratch: Path, tag: str, model: str, repeats: int, scale: int | None) -> list[dict]:
    """Rows for the code importable here: the CISI-sized collection, and the grown copy if asked."""
    data = scratch / f"data-{tag}"
    rows = [measure(data, model, repeats)]
    if scale:
        rows.append(measure(grown(data, scratch / f"grown-{tag}", model, scale), model, repeats))
    return rows


def baseline(rev: str, scratch: Path, model: str, repeats: int, scale: int | None) -> list[dict]:
    """The same measurements with the code of ``rev``, in a subprocess over its own indexes."""
    code = archived_code(rev, scratch)
    script = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from pathlib import Path; from query_text import measure_all; "
        f"print(json.dumps(measure_all(Path({str(scratch)!r}), {rev!r}, {model!r}, {repeats}, {scale!r})))"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(  # run from ``code``: ``python -c`` puts the working directory first on sys.path
        [sys.executable, "-c", script], cwd=code, env=env, stdout=subprocess.PIPE, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "spyglass-query-text")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, help="also measure over a copy grown to about this many items")
    parser.add_argument("--baseline", help="an earlier commit to measure beside this code")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from text import text_model

    args.dir.mkdir(parents=True, exist_ok=True)
    model = text_model(args.dir)
    rows = {"this code": measure_all(args.dir, "head", model, args.repeats, args.scale)}
    if args.baseline:
        rows[args.baseline] = baseline(args.baseline, args.dir, model, args.repeats, args.scale)
    print("| code | items | searches | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for name, measured in rows.items():
        for row in measured:
            print(f"| {name} | {row['items']:,} | {row['queries']} | {row['p50']:.1f} | {row['p99']:.1f} |")


if __name__ == "__main__":
    main()
