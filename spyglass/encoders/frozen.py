"""An open_clip model frozen for ingest and serve: loaded with torch alone, in a fraction of the time.

Building an open_clip model from process start took 5.2 s for ViT-B-32, of which only
0.65 s was the model: the rest was importing open_clip, which imports torchvision (and
through it ``torch._dynamo``) and transformers. Ingest and serve only ever run the
model forward, so after its first ingest a model is also kept as

- its image tower, traced to TorchScript in the precision it runs in (``image.pt``),
  with its preprocessing described in the manifest and applied by ``transform``;
- its text tower, the ONNX export text queries already use (``text_tower``).

Both are checked against the model they came from before they are published
(``frozen_export``). TorchScript, not ``torch.export``: loading an exported program
imports ``torch._dynamo`` and sympy (2.9 s for ViT-B-32), the very cost avoided here,
while a TorchScript file loads with torch alone in a quarter of a second. An export is
tied to the torch version that wrote it; any other version, or a file that no longer
loads, means the full model is loaded as before. Tuning, and exporting, use the full model.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spyglass.encoders.base import Encoder
from spyglass.encoders.text_tower import MANIFEST, TextTower, export_dir, read_manifest
from spyglass.encoders.transform import PixelTransform

log = logging.getLogger(__name__)

MODULE = "image.pt"


def image_export_dir(cache_dir: Path, model_id: str, dtype: torch.dtype) -> Path:
    """Where the image tower of ``model_id`` traced in ``dtype`` by this torch lives (one per precision;
    another torch version writes its own)."""
    return export_dir(cache_dir, f"{model_id} {dtype_name(dtype)} {torch.__version__}", kind="image-towers")


def frozen_exported(cache_dir: Path, encoder: Encoder) -> bool:
    """Whether ``encoder``'s model, in its precision, has a published frozen export."""
    return (image_export_dir(cache_dir, encoder.model_id, encoder.dtype) / MANIFEST).exists()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class ImageManifest:
    model_id: str
    dtype: str
    torch: str  # the version that traced it: TorchScript files are not promised to load elsewhere
    dim: int
    image_size: int
    logit_scale: float
    transform: dict  # a ``PixelTransform``'s fields, which ``PixelTransform.of`` reads back
    min_cosine: float
    format: int = 1

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(json.dumps(asdict(self), indent=2))


class FrozenEncoder(Encoder):
    """The model's traced image tower and its exported text tower: the same vectors as the full model."""

    def __init__(
        self,
        module: torch.nn.Module,
        manifest: ImageManifest,
        text: TextTower,
        *,
        dtype: torch.dtype,
        batch_size: int = 64,
    ) -> None:
        super().__init__(
            module, manifest.model_id, device=torch.device("cpu"), dtype=dtype, batch_size=batch_size
        )
        self.manifest, self.text = manifest, text
        self.dim, self.image_size = manifest.dim, manifest.image_size
        self.transform = PixelTransform.of(manifest.transform)  # its fields are a preprocess_cfg

    @classmethod
    def open(
        cls, cache_dir: Path, model_id: str, *, dtype: torch.dtype, batch_size: int = 64, threads: int = 0
    ) -> FrozenEncoder | None:
        """The frozen export of ``model_id`` in ``dtype``, or None when there is none this torch can load."""
        directory = image_export_dir(cache_dir, model_id, dtype)
        manifest = read_manifest(directory, ImageManifest, model_id)
        if manifest is None or manifest.dtype != dtype_name(dtype) or manifest.torch != torch.__version__:
            return None
        text = TextTower.open(cache_dir, model_id, threads=threads)
        if text is None:
            return None
        try:
            module = load_module(directory / MODULE)
        except (OSError, RuntimeError) as exc:
            log.warning("the frozen export of %s does not load (%s); loading the full model", model_id, exc)
            return None
        return cls(module, manifest, text, dtype=dtype, batch_size=batch_size)

    @property
    def logit_scale(self) -> float:
        return self.manifest.logit_scale

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.text.encode_texts(texts))

    def encode_texts(self, texts: Sequence[str], *, ensemble: bool = False) -> np.ndarray:
        """The text tower export embeds (and batches, and remembers) on its own."""
        return self.text.encode_texts(list(texts), ensemble=ensemble)


def load_module(path: Path) -> torch.jit.ScriptModule:
    """A traced tower from disk, on the CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's; see the module docstring
        return torch.jit.load(str(path), map_location="cpu")
