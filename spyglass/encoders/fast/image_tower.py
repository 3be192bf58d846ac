"""A CLIP model's image tower on ONNX Runtime, with its text tower export: ingest and serve without torch.

Importing torch and open_clip and building a ViT-B-32 costs seconds before the first picture
is embedded, and on CPUs with integer dot-product instructions (VNNI, AMX) the image tower's
matrix products can run in int8. So on a model's first use its image tower is exported
(``image_export``) in

- ``fp32``: the model's own vectors (cosine >= ``cache.MIN_COSINE`` on probe images);
- ``int8``: weights and activations quantized in blocks, published only when its check
  against fp32 passed (``image_export.INT8_MIN_COSINE`` and unchanged neighbours).

int8 vectors are close to fp32 but not the same, so they form their own space: the vectors
record it in their model id (``kinds.space_id``) and the two are never compared. The
preprocessing is ``pixels``, in numpy; text goes through the exported text tower.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from spyglass.encoders.fast.cache import MANIFEST, export_dir, read_manifest, reader_options
from spyglass.encoders.fast.pixels import PixelTransform
from spyglass.encoders.fast.text_tower import TextTower
from spyglass.kinds import space_id

KIND = "image-towers"
FORMAT = 2
PRECISIONS = ("fp32", "int8")


def graph_name(precision: str) -> str:
    return f"image.{precision}.onnx"


def image_export_dir(cache_dir: Path, model_id: str) -> Path:
    """Where the image tower of ``model_id`` lives, per onnxruntime version (an int8 graph's kernels,
    and so its check, belong to the runtime that checked it)."""
    import onnxruntime

    return export_dir(cache_dir, f"{model_id} onnxruntime {onnxruntime.__version__}", KIND)


@dataclass(frozen=True)
class ImageManifest:
    model_id: str
    dim: int
    image_size: int
    logit_scale: float
    transform: dict  # a ``PixelTransform``'s fields, which ``PixelTransform.of`` reads back
    checks: dict  # precision -> what its check measured; only the precisions published
    refused: dict = field(default_factory=dict)  # precision -> why it was not published
    format: int = FORMAT

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(json.dumps(asdict(self), indent=2))


def read_image_manifest(cache_dir: Path, model_id: str) -> tuple[Path, ImageManifest] | None:
    directory = image_export_dir(cache_dir, model_id)
    manifest = read_manifest(directory, ImageManifest, model_id)
    return None if manifest is None else (directory, manifest)


class FastEncoder:
    """The exported image tower in one precision and the exported text tower: ``Encoder``'s surface."""

    text_exportable = False  # it is the export
    device = "cpu"
    # Pictures per run. onnxruntime's CPU kernels embed a ViT-B-32 as fast eight at a time as 32
    # (14-15 pictures/s at 8, 16 and 32, fp32 and int8, 2 cores), but a run's activations grow
    # with it: a run of 8 held about 100 MB, one of 32 about 225 MB.
    max_run: int | None = 8  # None: the configured batch

    def __init__(
        self,
        directory: Path,
        manifest: ImageManifest,
        precision: str,
        text: TextTower,
        *,
        batch_size: int = 32,
        threads: int = 0,
    ) -> None:
        self.manifest, self.precision, self.text = manifest, precision, text
        self.model_id = space_id(manifest.model_id, precision)
        self.dim, self.image_size = manifest.dim, manifest.image_size
        self.batch_size = batch_size if self.max_run is None else min(batch_size, self.max_run)
        self.transform = PixelTransform.of(manifest.transform)
        self._open(directory, threads)

    def _open(self, directory: Path, threads: int) -> None:
        import onnxruntime

        options = reader_options(threads)
        # A batch's activations are freed after its run instead of kept in onnxruntime's arena: on
        # ViT-B-32 int8, batch 32, the arena held a 560 MB peak against 430 MB without, at no measured cost.
        options.enable_cpu_mem_arena = options.enable_mem_pattern = False
        self.session = onnxruntime.InferenceSession(
            str(directory / graph_name(self.precision)), options, providers=["CPUExecutionProvider"]
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """The image tower's (not yet normalised) vectors of one batch of pixels."""
        return self.session.run(None, {"pixels": batch})[0]

    @classmethod
    def open(
        cls, cache_dir: Path, model_id: str, precision: str, *, batch_size: int = 32, threads: int = 0
    ) -> FastEncoder | None:
        """``model_id``'s exports in ``precision``, or None when that precision was not published."""
        found = read_image_manifest(cache_dir, model_id)
        text = TextTower.open(cache_dir, model_id, threads=threads, preload=False)
        if found is None or text is None or precision not in found[1].checks:
            return None
        return cls(*found, precision, text, batch_size=batch_size, threads=threads)

    @property
    def dtype(self) -> str:
        return f"{self.precision} (onnxruntime)"

    @property
    def logit_scale(self) -> float:
        return self.manifest.logit_scale

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Public so the indexer can run it in worker threads while the model encodes."""
        return self.transform(image)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embed preprocessed pixels (N, C, H, W), batching by ``batch_size``; unit-length rows."""
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(pixels), self.batch_size):
            batch = np.ascontiguousarray(pixels[start : start + self.batch_size], np.float32)
            vectors = self._run(batch)
            out.append(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_preprocessed(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Embed a list of ``preprocess`` outputs."""
        return self.encode_pixels(np.stack(pixels)) if len(pixels) else np.zeros((0, self.dim), np.float32)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_preprocessed([self.preprocess(image) for image in images])

    def encode_texts(self, texts: Sequence[str], *, ensemble: bool = False) -> np.ndarray:
        return self.text.encode_texts(list(texts), ensemble=ensemble)

    def __repr__(self) -> str:
        return f"FastEncoder({self.model_id!r}, dim={self.dim}, {self.precision})"
