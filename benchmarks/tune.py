"""Fine-tuning cost: seconds per epoch, projection-only against full, on Flickr8k photos.

ViT-B-32 with random weights (they cost what pretrained ones do) is saved as a local
model folder and tuned through ``spyglass.training.tune`` on the same pairs in every mode,
in this one process, so the ratios compare like with like. Projection-only pays once to
cache the towers' outputs; its epochs then cost a matrix product. Accuracy is not the
point here (the weights are random): the tests measure that.

    python benchmarks/tune.py --images 200 --epochs 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spyglass._compat import ensure_torchvision_importable

ensure_torchvision_importable()
import open_clip  # noqa: E402

from spyglass.encoders import load_encoder  # noqa: E402
from spyglass.encoders.clip.openclip import save_local_dir  # noqa: E402
from spyglass.retriever.evaluation import Dataset, load_dataset  # noqa: E402
from spyglass.settings import EncoderSettings  # noqa: E402
from spyglass.training.tune import TuneOptions, tune  # noqa: E402

FLICKR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "flickr8k-1k"


def first_images(data: Dataset, count: int) -> Dataset:
    keep = data.caption_image < count
    return Dataset(
        data.images[:count], [c for c, k in zip(data.captions, keep) if k], data.caption_image[keep]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=200, help="Flickr8k photos used (5 captions each)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["projection", "last", "full"])
    args = parser.parse_args()
    if not (FLICKR / "captions.csv").is_file():
        raise SystemExit(f"{FLICKR} is missing: the benchmark needs the shared Flickr8k sample")
    data = first_images(load_dataset(FLICKR), args.images)
    with tempfile.TemporaryDirectory(prefix="spyglass-tune-bench-") as scratch:
        root = Path(scratch)
        model = open_clip.create_model(args.arch)  # random weights
        save_local_dir(
            model, open_clip.get_model_config(args.arch), root / "base", model.visual.preprocess_cfg
        )
        del model
        print(f"{args.arch}, random weights, fp32; {len(data.images)} photos, {len(data.captions)} captions")
        print(f"{'mode':<11} {'prepare s':>10} {'s/epoch':>9} {'vs full':>8}")
        rows = {}
        for mode in args.modes:
            encoder = load_encoder(str(root / "base"), EncoderSettings(precision="fp32"))
            options = TuneOptions(mode=mode, epochs=args.epochs, patience=args.epochs, batch_size=64)
            started = time.perf_counter()
            report = tune(encoder, data, root / mode, options, checkpoint_dir=root / f"ck-{mode}")
            total = time.perf_counter() - started
            epoch = float(np.mean(report.epoch_seconds))
            rows[mode] = (total - sum(report.epoch_seconds), epoch)
        full = rows.get("full", (0.0, 0.0))[1]
        for mode, (prepare, epoch) in rows.items():
            ratio = f"{epoch / full:.4f}" if full else "-"
            print(f"{mode:<11} {prepare:>10.1f} {epoch:>9.2f} {ratio:>8}")
        print(
            "prepare: preprocessing, caching tower outputs (projection), evaluation before and after, saving"
        )


if __name__ == "__main__":
    main()
