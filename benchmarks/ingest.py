"""Ingest throughput: end-to-end images/s (walk, decode, preprocess, encode, write) next to
encoder-only images/s measured in the same run, with ViT-B-32 random weights.

    python benchmarks/ingest.py                       # Flickr8k-1k from ../shared/data
    python benchmarks/ingest.py --large 40            # plus 40 generated 12-megapixel JPEGs
    python benchmarks/ingest.py --precision fp32
    python benchmarks/ingest.py --forgetting          # what verified forgetting costs the writes

Target on the dev machine (bf16): end-to-end >= 0.8 x encoder-only, >= 100 images/s on Flickr.

``--forgetting`` times the writes of a text collection (CISI's 1,460 abstracts, builtin:shapes, no
text space: the catalog is all that is measured) three ways in one run: as shipped (``PRAGMA
secure_delete=ON`` and the full-text merge after deletions), with the pragma off as some SQLite
builds have it, and with the merge skipped too (the code before forgetting). Each way indexes the
abstracts, then re-indexes after a tenth were changed and a tenth deleted, then deletes 20 more
documents one by one, as ``DELETE /v1/documents/{id}`` does.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spyglass._compat import ensure_torchvision_importable

ensure_torchvision_importable()
import open_clip  # noqa: E402

from spyglass.encoders.clip.openclip import OpenClipEncoder  # noqa: E402
from spyglass.encoders.precision import resolve_dtype  # noqa: E402
from spyglass.images import open_image  # noqa: E402
from spyglass.indexer import Indexer  # noqa: E402
from spyglass.store import Store  # noqa: E402

FLICKR = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k-1k" / "images"


def large_photos(folder: Path, count: int) -> Path:
    """12-megapixel JPEGs with photo-like content (smooth gradients plus noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in range(count):
        small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((4000, 3000), Image.BICUBIC)
        noise = rng.normal(0, 8, (3000, 4000, 3))
        Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8)).save(
            folder / f"large-{n:03d}.jpg", quality=90
        )
    return folder


def random_vit_b32(precision: str = "auto", batch_size: int = 64) -> OpenClipEncoder:
    """The default architecture with random weights: real cost, no checkpoint needed (none is here)."""
    dtype = resolve_dtype(precision, torch.device("cpu"))
    model, _, transform = open_clip.create_model_and_transforms("ViT-B-32")
    encoder = OpenClipEncoder(
        model,
        transform,
        open_clip.get_tokenizer("ViT-B-32"),
        "random:ViT-B-32",
        device=torch.device("cpu"),
        dtype=dtype,
        batch_size=batch_size,
    )
    print(f"ViT-B-32 random weights, {dtype}, batch {batch_size}, {torch.get_num_threads()} threads")
    return encoder


def encoder_only(encoder: OpenClipEncoder, files: list[Path]) -> float:
    """Images/s of the model alone on already preprocessed pixels (the ceiling for ingest)."""
    pixels = torch.stack([encoder.preprocess(open_image(f, min_side=encoder.image_size)) for f in files])
    encoder.encode_pixels(pixels[: encoder.batch_size])  # warm-up
    start = time.perf_counter()
    encoder.encode_pixels(pixels)
    return len(files) / (time.perf_counter() - start)


def end_to_end(encoder: OpenClipEncoder, folder: Path, stages=lambda store: []) -> tuple[float, int]:
    """Images/s of a whole ingest into a fresh store; ``stages(store)`` gives the item stages to run too."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        Store(Path(scratch), encoder.model_id, encoder.dim) as store,
    ):
        start = time.perf_counter()
        report = Indexer(store, encoder, stages=stages(store)).index(folder, progress=False)
        elapsed = time.perf_counter() - start
    assert not report.errors, report.errors[:3]
    return report.added / elapsed, report.added


CISI = FLICKR.parents[1] / "cisi" / "docs"


class _Insecure(sqlite3.Connection):
    """A connection on which Spyglass's ``PRAGMA secure_delete=ON`` turns it off, as a build without
    the pragma would leave it: the cost of the pragma alone, everything else as shipped."""

    turned_off = 0  # connections on which it was turned off: the proof the patch took

    def cursor(self, *args, **kwargs):
        cursor = super().cursor(*args, **kwargs)
        execute = cursor.execute

        class Cursor:
            def __getattr__(self, name):
                return getattr(cursor, name)

            def execute(self, sql, *rest):
                if "secure_delete=ON" in sql:
                    _Insecure.turned_off += 1
                    sql = sql.replace("secure_delete=ON", "secure_delete=OFF")
                return execute(sql, *rest)

        return Cursor()


def forgetting_costs(way: str, scratch: Path) -> dict[str, float]:
    """Seconds to index CISI, re-index it changed, and delete 20 documents one by one, ``way`` being
    ``shipped``, ``pragma off`` or ``no merge``."""
    from unittest import mock

    from spyglass.encoders import load_encoder
    from spyglass.settings import EncoderSettings
    from spyglass.store.catalog.fulltext import FullText

    corpus = scratch / "cisi"
    shutil.copytree(CISI, corpus)
    encoder = load_encoder("builtin:shapes", EncoderSettings(precision="fp32"))
    connect = sqlite3.connect

    def insecure(*args, **kwargs):
        return connect(*args, factory=_Insecure, **kwargs)

    patches = []
    if way != "shipped":  # SQLAlchemy calls the dbapi2 module's connect
        patches += [mock.patch.object(module, "connect", insecure) for module in (sqlite3, sqlite3.dbapi2)]
    if way == "no merge":
        patches.append(mock.patch.object(FullText, "forget_deleted_words", lambda self, **_: None))
    for patch in patches:
        patch.start()
    try:
        with Store(scratch / "data", encoder.model_id, encoder.dim) as store:
            indexer = Indexer(store, encoder)
            times = {}
            start = time.perf_counter()
            indexer.index(corpus, progress=False)
            times["index"] = time.perf_counter() - start
            files = sorted(corpus.glob("*.txt"))
            for file in files[::10]:
                file.write_text(file.read_text() + "\nRevised.\n")
            for file in files[5::10]:
                file.unlink()
            start = time.perf_counter()
            indexer.index(corpus, progress=False)
            times["re-index"] = time.perf_counter() - start
            with closing(sqlite3.connect(scratch / "data" / "catalog.sqlite3")) as catalog:
                paths = [str(file) for file in files[1::10][:20]]
                ids = [
                    catalog.execute("SELECT id FROM documents WHERE path = ?", [p]).fetchone()[0]
                    for p in paths
                ]
            start = time.perf_counter()
            for document_id in ids:
                store.delete_document(document_id)
            times["20 deletes"] = time.perf_counter() - start
    finally:
        for patch in reversed(patches):
            patch.stop()
    return times


def forgetting() -> None:
    if not CISI.is_dir():
        raise SystemExit(f"{CISI} not found (see ../shared/data/README.md)")
    shipped = None
    for way in ("shipped", "pragma off", "no merge"):
        _Insecure.turned_off = 0
        with tempfile.TemporaryDirectory() as scratch:
            times = forgetting_costs(way, Path(scratch))
        shipped = shipped or times
        print(
            f"{way:>10} (pragma turned off on {_Insecure.turned_off} connections): "
            + ", ".join(
                f"{name} {value:.2f} s ({value / shipped[name]:.2f}x)" for name, value in times.items()
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, default=FLICKR)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images of --folder")
    parser.add_argument("--large", type=int, default=0, help="also ingest N generated 12-megapixel JPEGs")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--forgetting", action="store_true", help="only the cost of forgetting (see above)")
    args = parser.parse_args()
    if args.forgetting:
        return forgetting()
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder} not found (see ../shared/data/README.md)")

    encoder = random_vit_b32(args.precision, args.batch_size)
    with tempfile.TemporaryDirectory() as work:
        sets = [("flickr", args.folder)]
        if args.limit:
            subset = Path(work, "subset")
            subset.mkdir()
            for file in sorted(args.folder.glob("*.jpg"))[: args.limit]:
                shutil.copy(file, subset)
            sets = [("flickr", subset)]
        if args.large:
            sets.append(("12MP", large_photos(Path(work, "large"), args.large)))
        for name, folder in sets:
            files = sorted(p for p in folder.iterdir() if p.is_file())
            ceiling = encoder_only(encoder, files)
            rate, count = end_to_end(encoder, folder)
            print(
                f"{name:>7}: {count} images  end-to-end {rate:6.1f} img/s  encoder-only {ceiling:6.1f} img/s  "
                f"ratio {rate / ceiling:.2f}"
            )


if __name__ == "__main__":
    main()
