"""Whole-process ingest against rclip (and clip-retrieval), on the same random weights, in one run.

rclip 3 runs one model, ViT-B-32-256 (datacomp_s34b_b86k), as ONNX files it downloads into its
data directory (``RCLIP_DATADIR``); its preprocessing takes 256-pixel pictures. Neither tool can
download weights here, so this lays out one seeded set of random ViT-B-32-256 weights twice:

- in the hub cache, where open_clip resolves ``ViT-B-32-256/datacomp_s34b_b86k``: Spyglass runs
  them as ``SPYGLASS_ENCODER__MODEL=open_clip:ViT-B-32-256/datacomp_s34b_b86k``, everything else
  at its defaults (precision auto, OCR on);
- exported to ONNX in rclip's layout (``visual.onnx``, ``textual.onnx``, open_clip's BPE
  vocabulary), checked against the torch model (cosine >= 0.999) before anything is timed.

clip-retrieval (``--clip-retrieval``) loads the same hub-cache weights through open_clip.

The tools then index the same --photos Flickr8k photos in whole processes, each into a fresh
data directory, taking turns run by run (rclip indexes the working directory and answers one
query, as a user runs it). Spyglass is also timed with OCR off, since rclip reads no text.
Each side has one untimed setup run first (Spyglass makes its exports then). Prints median
seconds, peak RSS and each row's speed against rclip (rclip's seconds over the row's).

    python benchmarks/peers.py --rclip VENV/bin/rclip [--clip-retrieval VENV2/bin/clip-retrieval]
        [--photos 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from cli import ROOT, cpu_name, lay_out_weights
from index_process import FLICKR, linked, print_rows, take_turns, timed

ARCH, TAG = "ViT-B-32-256", "datacomp_s34b_b86k"
RCLIP_MODEL = f"{ARCH}-{TAG}"  # rclip's model folder (``model_download.MODEL_SUBDIR``)


def rclip_layout(weights: Path, datadir: Path) -> Path:
    """rclip's model files exported from ``weights`` into its data directory ``datadir`` (returned),
    checked against torch."""
    import onnxruntime
    import torch
    from safetensors.torch import load_file

    from spyglass._compat import ensure_torchvision_importable
    from spyglass.encoders.fast.dynamo import export_onnx

    ensure_torchvision_importable()
    import open_clip

    model = open_clip.create_model(ARCH, pretrained=None).eval()
    model.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    folder = datadir / RCLIP_MODEL
    folder.mkdir(parents=True)

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.model.encode_text(tokens)

    batch = {0: torch.export.Dim("batch")}
    pixels = torch.randn(4, 3, 256, 256)
    tokens = open_clip.get_tokenizer(ARCH)(["a dog", "a photo of a red car", "x", "two people"])
    for module, example, name in ((model.visual, pixels, "visual"), (Text(), tokens, "textual")):
        path = folder / f"{name}.onnx"
        export_onnx(module, (example,), path, inputs=["input"], outputs=["output"], dynamic_shapes=(batch,))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": example.numpy()})[0]
        with torch.no_grad():
            want = module(example).numpy()
        cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        if cosine.min() < 0.999:
            raise SystemExit(
                f"rclip's {name}.onnx does not match the torch model (cosine {cosine.min():.4f})"
            )
    vocab = datadir / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
    vocab.parent.mkdir()
    shutil.copy(open_clip.tokenizer.default_bpe(), vocab)
    return datadir


def fresh_rclip_dir(models: Path, target: Path) -> Path:
    """An empty rclip data directory holding (links to) the model files: no index yet."""
    target.mkdir(parents=True)
    for entry in models.iterdir():
        (target / entry.name).symlink_to(entry)
    return target


Side = Callable[[Path, Path], tuple[float, float, bool, str]]


def spyglass(env: dict, photos: int) -> Side:
    """``spyglass index FOLDER`` into data directory HOME; indexed when every photo was added."""

    def run(folder: Path, home: Path) -> tuple[float, float, bool, str]:
        command = [sys.executable, "-m", "spyglass", "index", str(folder), "--json"]
        seconds, peak, done = timed(command, env | {"SPYGLASS_DATA_DIR": str(home)}, ROOT)
        return seconds, peak, json.loads(done.stdout)["added"] == photos, done.stdout

    return run


def rclip(executable: str, env: dict, models: Path) -> Side:
    """rclip run in FOLDER (it indexes the working directory, then answers the query)."""

    def run(folder: Path, home: Path) -> tuple[float, float, bool, str]:
        env_run = env | {"RCLIP_DATADIR": str(fresh_rclip_dir(models, home))}
        seconds, peak, done = timed([executable, "--top", "1", "--filepath-only", "a dog"], env_run, folder)
        return seconds, peak, Path(done.stdout.strip()).parent == folder, done.stdout

    return run


def clip_retrieval(executable: str, env: dict, photos: int) -> Side:
    """``clip-retrieval inference`` of FOLDER's images (no text, no metadata), its defaults otherwise,
    but as many preprocessing workers as cores (its default, 4, is more than it advises here)."""

    def run(folder: Path, home: Path) -> tuple[float, float, bool, str]:
        command = [
            executable, "inference", "--input_dataset", str(folder), "--output_folder", str(home),
            "--clip_model", f"open_clip:{ARCH}/{TAG}", "--enable_text", "False",
            "--enable_metadata", "False", "--num_prepro_workers", str(os.cpu_count() or 1),
        ]  # fmt: skip
        seconds, peak, done = timed(command, env, folder)
        embedded = sum(len(np.load(part)) for part in (home / "img_emb").glob("*.npy"))
        return seconds, peak, embedded == photos, done.stdout

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rclip", required=True, help="the rclip executable (rclip 3, pip install rclip)")
    parser.add_argument("--clip-retrieval", help="the clip-retrieval executable (pip install clip-retrieval)")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    photos = sorted(FLICKR.glob("*.jpg"))
    if len(photos) < 2 * args.photos:
        raise SystemExit(f"{FLICKR} needs {2 * args.photos} photos (see ../shared/data/README.md)")
    version = subprocess.run([args.rclip, "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="spyglass-peers-") as tmp:
        scratch = Path(tmp)
        setup = linked(scratch / "setup", photos[: args.photos])
        folder = linked(scratch / "timed", photos[args.photos : 2 * args.photos])
        hf_home = lay_out_weights(scratch, ARCH, TAG)
        models = rclip_layout(scratch / "weights" / "open_clip_model.safetensors", scratch / "rclip-models")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SPYGLASS_", "RCLIP_"))}
        base |= {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
        spyglass_env = base | {
            "SPYGLASS_CONFIG": os.devnull,
            "SPYGLASS_ENCODER__MODEL": f"open_clip:{ARCH}/{TAG}",
            "SPYGLASS_ENCODER__CACHE_DIR": str(scratch / "spyglass-cache"),
        }
        sides = {
            "Spyglass": spyglass(spyglass_env, args.photos),
            "Spyglass, OCR off": spyglass(spyglass_env | {"SPYGLASS_OCR__ENABLED": "false"}, args.photos),
            "rclip": rclip(args.rclip, base, models),
        }
        if args.clip_retrieval:
            sides["clip-retrieval"] = clip_retrieval(args.clip_retrieval, base, args.photos)

        def run(name: str, photos_folder: Path, home: Path) -> tuple[float, float]:
            """One timed process; fails unless it indexed every photo."""
            seconds, peak, indexed, out = sides[name](photos_folder, home)
            if not indexed:
                raise SystemExit(f"{name} did not index {photos_folder}: {out[-500:]}")
            return seconds, peak

        for number, name in enumerate(sides):
            run(name, setup, scratch / f"setup-{number}")

        def timed_runs(number: int, name: str) -> Callable[[int], tuple[float, float]]:
            return lambda turn: run(name, folder, scratch / f"run-{turn}-{number}")

        rows = take_turns({name: timed_runs(number, name) for number, name in enumerate(sides)}, args.runs)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs; {version}; {args.photos} photos, median of {args.runs}"
    )
    print_rows(rows, {"x rclip": lambda row: f"{rows['rclip']['seconds'] / row['seconds']:.2f}"})


if __name__ == "__main__":
    main()
