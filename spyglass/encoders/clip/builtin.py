"""``builtin:shapes``: a tiny CLIP trained in seconds on generated coloured shapes.

It gives every command real (if narrow) retrieval signal with no downloaded
weights: offline smoke tests, the offline demo and end-to-end tests all use it.
It is trained once per user, on first use, and cached in ``~/.cache/spyglass/models``
(``encoder.cache_dir``); a file lock keeps two processes from training it at once.
Training is reproducible from its seed up to float reordering between CPUs, shows a
progress bar with the time left, and uses at most two threads: the model is tiny, and
more threads only fight over cores on a busy machine (8-28 minutes instead of ~20 s).
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

VERSION = 1
# A small ResNet image tower: it learns shape from a few thousand images far
# faster than a ViT of the same cost, which needs much more data.
SHAPES_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TRAIN_SAMPLES = 3000
TRAIN_STEPS = 140
TRAIN_THREADS = 2


def shapes_model_dir(models_dir: Path) -> Path:
    return models_dir / f"builtin-shapes-v{VERSION}"


def trained_model_dir(models_dir: Path) -> Path | None:
    """The cached model directory if the model has been trained (completely), else None."""
    target = shapes_model_dir(models_dir)
    return target if (target / "open_clip_config.json").is_file() else None


def ensure_shapes_model(models_dir: Path) -> Path:
    """Return the cached model directory, training and saving it first if needed."""
    if found := trained_model_dir(models_dir):
        return found
    target = shapes_model_dir(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / ".builtin-shapes.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if found := trained_model_dir(models_dir):  # another process finished meanwhile
            return found
        from spyglass.encoders.clip.tiny import save_open_clip_dir

        log.warning("Training builtin:shapes once for this user (about 20 s); cached in %s", target)
        model = train_shapes_model(progress=sys.stderr.isatty())
        with tempfile.TemporaryDirectory(dir=models_dir) as scratch:
            save_open_clip_dir(model, SHAPES_CONFIG, Path(scratch) / "model")
            shutil.move(Path(scratch) / "model", target)  # complete directories only
    return target


def train_shapes_model(
    seed: int = 0, steps: int = TRAIN_STEPS, samples: int = TRAIN_SAMPLES, *, progress: bool = False
) -> torch.nn.Module:
    """Train the shapes model from scratch; deterministic for a seed up to float reordering."""
    from functools import partial

    import torch
    from tqdm import tqdm

    from spyglass._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip
    from open_clip.transform import image_transform

    from spyglass.encoders.clip import shapes
    from spyglass.encoders.clip.contrastive import train_contrastive
    from spyglass.encoders.clip.openclip import encode_text_trimmed
    from spyglass.encoders.clip.tiny import build_open_clip

    model = build_open_clip(SHAPES_CONFIG, seed)
    data = shapes.generate(samples, seed=seed + 1)
    transform = image_transform(SHAPES_CONFIG["vision_cfg"]["image_size"], is_train=False)
    pixels = torch.stack([transform(sample.image) for sample in data])
    tokenizer = open_clip.get_tokenizer("RN50", context_length=SHAPES_CONFIG["text_cfg"]["context_length"])
    tokens = tokenizer([sample.caption for sample in data])
    names = shapes.class_names()
    labels = [names.index(sample.label) for sample in data]
    threads = torch.get_num_threads()
    bar = tqdm(total=steps, desc="training builtin:shapes", unit="step", disable=not progress, leave=False)
    try:
        torch.set_num_threads(min(threads, TRAIN_THREADS))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            train_contrastive(
                model,
                pixels,
                tokens,
                labels,
                steps=steps,
                seed=seed,
                encode_text=partial(encode_text_trimmed, model),
                on_step=lambda step, loss: bar.update(1),
            )
    finally:
        torch.set_num_threads(threads)
        bar.close()
    return model
