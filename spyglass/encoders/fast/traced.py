"""A CLIP model's image tower traced to TorchScript in bf16: torch's fastest form, without open_clip.

On a CPU with AMX, torch's bf16 weights embed ViT-B-32 faster than onnxruntime's fp32 or block
int8 (README, "Precision and speed"), so ``auto`` keeps the torch model there. Building it took
~10 s of a 23 s ``spyglass index`` of 200 photos: importing torch (2.9 s) and open_clip (5.6 s:
it imports torchvision, transformers and timm), then building the model (2 s). Ingest and serve
only run the tower forward, so after the first ingest it is also kept traced, in the precision
it runs in, and loaded with torch alone (``torch.jit.load``); text goes through the text
tower's export, as on the ONNX path. Its vectors are the torch model's, in the model's own
space. TorchScript, not ``torch.export``: loading an exported program imports ``torch._dynamo``
and sympy, the very cost avoided here. A trace belongs to the torch version that wrote it, which
is part of its key; nothing is published until, loaded back, it gave the model's vectors on the
export's probe images (cosine >= ``cache.MIN_COSINE``).
"""

from __future__ import annotations

import logging
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from spyglass.encoders.fast.cache import export_dir, read_manifest
from spyglass.encoders.fast.image_tower import FastEncoder, ImageManifest
from spyglass.encoders.fast.text_tower import TextTower
from spyglass.encoders.precision import set_threads

log = logging.getLogger(__name__)

KIND = "traced-towers"
MODULE = "image.pt"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
PROFILED_RUNS = 2  # TorchScript's profiling executor records the first run and optimises on the second


def traced_dir(cache_dir: Path, model_id: str, precision: str) -> Path:
    """Where ``model_id``'s image tower traced in ``precision`` by this torch version lives."""
    return export_dir(cache_dir, f"{model_id} {precision} torch {version('torch')}", KIND)


def precision_name(dtype: torch.dtype) -> str:
    return next(name for name, known in DTYPES.items() if known == dtype)


class TracedEncoder(FastEncoder):
    """The traced image tower and the exported text tower: the torch model's vectors."""

    max_run = None  # the configured batch: bf16 on AMX ran 8 pictures at a time ~18% slower than 32

    def _open(self, directory: Path, threads: int) -> None:
        set_threads(threads)  # torch's pool, as for the full model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's; see the module docstring
            self.module = torch.jit.load(str(directory / MODULE), map_location="cpu")
        self.torch_dtype = DTYPES[self.precision]
        # Those first runs on one blank picture, not on the first batch: they are then cheap, and
        # their passing buffers small. Made on a batch of 32, they left glibc holding ~100-200 MB
        # more for the rest of the process (200-photo ingests, bf16 on AMX: peaks 826-974 MB against
        # 736-836 MB warmed this way); the vectors and the later batches' speed are the same.
        blank = torch.zeros(1, 3, self.image_size, self.image_size, dtype=self.torch_dtype)
        with torch.inference_mode():
            for _ in range(PROFILED_RUNS):
                self.module(blank)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(batch).to(self.torch_dtype)).float().numpy()

    @classmethod
    def open(  # type: ignore[override]
        cls, cache_dir: Path, model_id: str, precision: str, *, batch_size: int = 32, threads: int = 0
    ) -> TracedEncoder | None:
        """``model_id``'s traced tower in ``precision``, or None when this torch has none that loads."""
        directory = traced_dir(cache_dir, model_id, precision)
        manifest = read_manifest(directory, ImageManifest, model_id)
        if manifest is None or precision not in manifest.checks:
            return None  # asked on every frozen load on the CPU: nothing else is opened first
        text = TextTower.open(cache_dir, model_id, threads=threads, preload=False)
        if text is None:
            return None
        try:
            return cls(directory, manifest, precision, text, batch_size=batch_size, threads=threads)
        except (OSError, RuntimeError) as exc:
            log.warning("the traced tower of %s does not load (%s); loading the full model", model_id, exc)
            return None

    @property
    def dtype(self) -> str:
        return f"{self.precision} (torch, traced)"
