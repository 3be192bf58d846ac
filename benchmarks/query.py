"""Query latency: a text query end to end (encode + search + fetch metadata) at 100k and 1M items.

Uses ViT-B-32 with random weights (same cost as trained) over catalogs of clustered
512-d vectors built by ``benchmarks/store.py`` (reused from --dir if present).
Prints p50/p99 for the full query and, in the same run, for its parts.

    python benchmarks/query.py --sizes 100000 1000000 --dir /tmp/spyglass-bench

Targets on the dev machine: <= 25 ms p50 at 100k, <= 40 ms at 1M (approximate index).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from store import DIM, MODEL, populate

from spyglass._compat import ensure_torchvision_importable

ensure_torchvision_importable()
import open_clip  # noqa: E402

from spyglass.encoders.clip.openclip import OpenClipEncoder  # noqa: E402
from spyglass.encoders.precision import resolve_dtype  # noqa: E402
from spyglass.retriever import Query, RankingOptions, Retriever  # noqa: E402
from spyglass.store import Store  # noqa: E402

QUERIES = [
    "a dog running on the beach",
    "two children playing football",
    "a red car parked in the street",
    "a man climbing a rock wall",
    "people sitting at a cafe table",
]


def percentiles(samples: list[float]) -> str:
    return f"p50 {1000 * np.percentile(samples, 50):6.2f} ms  p99 {1000 * np.percentile(samples, 99):6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "spyglass-bench")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    model, _, transform = open_clip.create_model_and_transforms("ViT-B-32")
    encoder = OpenClipEncoder(
        model,
        transform,
        open_clip.get_tokenizer("ViT-B-32"),
        MODEL,
        device=torch.device("cpu"),
        dtype=resolve_dtype("auto", torch.device("cpu")),
        batch_size=1,
    )
    assert encoder.dim == DIM
    print(f"ViT-B-32 random weights ({encoder.dtype}), text query, k=10, hybrid off (no text chunks here)")
    for size in args.sizes:
        data_dir = args.dir / f"n{size}"
        if not (data_dir / "catalog.sqlite3").exists():
            print(f"building a {size:,}-item catalog in {data_dir} ({populate(data_dir, size):.0f} s)")
        with Store(data_dir, MODEL, DIM) as store:
            retriever = Retriever(store, encoder)
            options = RankingOptions(hybrid=False, relevance_floor=False)
            retriever.search(Query(text=QUERIES[0]), options=options)  # warm-up
            full, encode, search = [], [], []
            for n in range(args.repeats):
                text = QUERIES[n % len(QUERIES)] + f" {n}"  # defeat any caching
                tick = time.perf_counter()
                retriever.search(Query(text=text), options=options)
                full.append(time.perf_counter() - tick)
                tick = time.perf_counter()
                vector = encoder.encode_texts([text])[0]
                encode.append(time.perf_counter() - tick)
                tick = time.perf_counter()
                store.search(vector, 10)
                search.append(time.perf_counter() - tick)
            print(f"{size:>9,} items, {store.index.kind:>4} index: full query {percentiles(full)}")
            print(f"{'':>22} text encode {percentiles(encode)}   vector search {percentiles(search)}")


if __name__ == "__main__":
    main()
