"""The encoder interface every backend implements.

A backend supplies four small pieces (load a model, preprocess one image, embed a
pixel batch, embed a text batch); batching, device/dtype placement and
normalisation live here once (prompt ensembles in ``prompts``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spyglass.encoders.prompts import ensemble as ensemble_of
from spyglass.errors import ModelSpecError


class Encoder(ABC):
    """Embeds images and texts into one L2-normalised space.

    ``model_id`` names the exact weights; it is stored with every vector so vectors
    from different models are never compared.
    """

    model_id: str
    dim: int
    image_size: int
    # Whether ``text_export`` can export the text tower for torch-free text queries.
    text_exportable: bool = False

    def __init__(
        self,
        model: torch.nn.Module,
        model_id: str,
        *,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int = 64,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.model_id = model_id
        self.model = model.to(device=device, dtype=dtype).eval()
        self.model.requires_grad_(False)

    # --- what a backend implements -------------------------------------------------
    @abstractmethod
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own transform for one RGB image: a float32 CHW tensor.

        Public so the indexer can run it in worker threads while the model encodes.
        """

    @abstractmethod
    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unnormalised image embeddings for a preprocessed batch already on device/dtype."""

    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Unnormalised text embeddings for one batch of strings."""

    @property
    def logit_scale(self) -> float:
        """The temperature the model learned for its softmax over cosines (CLIP's ``logit_scale``,
        exponentiated and capped at 100 as in training): it turns similarities into the model's own
        zero-shot probabilities. 100 (CLIP's value) for a model without one."""
        scale = getattr(self.model, "logit_scale", None)
        return 100.0 if scale is None else min(float(scale.detach().float().exp()), 100.0)

    # --- what tuning needs (``spyglass.training.tune``); a backend that cannot is refused there ----
    def save(self, directory: Path) -> Path:
        """Write the model, with its preprocessing and tokenizer, as a local model directory that
        loads by its path like any other (a tuned version)."""
        raise ModelSpecError(f"{type(self).__name__} models cannot be saved as a new version")

    def fold_projections(self, image_map: torch.Tensor, text_map: torch.Tensor) -> None:
        """Compose a square linear map after each tower's output into its last linear layer, so the
        model alone computes what projection-only tuning learned (the architecture is unchanged)."""
        raise ModelSpecError(f"{type(self).__name__} models have no projection layers to tune")

    def tower_parameters(self, last: int | None) -> list[torch.nn.Parameter]:
        """The parameters of both towers' ``last`` blocks with the layers after them (None: all)."""
        raise ModelSpecError(f"{type(self).__name__} models cannot be tuned block by block")

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unnormalised image embeddings with gradients (training: no inference mode, no batching)."""
        return self._embed_pixels(pixels.to(self.device, self.dtype))

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """Unnormalised text embeddings with gradients."""
        return self._embed_texts(list(texts))

    # --- shared machinery -------------------------------------------------------------
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed preprocessed pixels (N, C, H, W), batching by ``batch_size``."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(pixels), self.batch_size):
                batch = pixels[start : start + self.batch_size].to(self.device, self.dtype)
                out.append(_normalise(self._embed_pixels(batch)))
        return _to_numpy(out, self.dim)

    def encode_preprocessed(self, pixels: Sequence[torch.Tensor]) -> np.ndarray:
        """Embed a list of ``preprocess`` outputs (the indexer's batches)."""
        if not pixels:
            return np.zeros((0, self.dim), np.float32)
        return self.encode_pixels(torch.stack(list(pixels)))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images; returns float32 (N, dim), rows of unit length."""
        return self.encode_preprocessed([self.preprocess(image) for image in images])

    def encode_texts(self, texts: Sequence[str], *, ensemble: bool = False) -> np.ndarray:
        """Embed texts; with ``ensemble`` each text is averaged over the prompt templates."""
        texts = list(texts)
        if ensemble and texts:
            return ensemble_of(self.encode_texts, texts)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                out.append(_normalise(self._embed_texts(texts[start : start + self.batch_size])))
        return _to_numpy(out, self.dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r}, dim={self.dim}, {self.device}, {self.dtype})"


def fold_linear(layer: torch.nn.Linear, mapping: torch.Tensor) -> None:
    """``mapping @ layer(x)`` as one layer: the weight and bias (if any) are mapped in place."""
    with torch.no_grad():
        mapping = mapping.to(layer.weight.dtype)
        layer.weight.copy_(mapping @ layer.weight)
        if layer.bias is not None:
            layer.bias.copy_(mapping @ layer.bias)


def parameters_of(parts: Sequence) -> list[torch.nn.Parameter]:
    """The distinct parameters of modules and bare parameters (``None`` parts skipped), in order."""
    found: dict[int, torch.nn.Parameter] = {}
    for part in parts:
        if part is None:
            continue
        for parameter in [part] if isinstance(part, torch.nn.Parameter) else part.parameters():
            found[id(parameter)] = parameter
    return list(found.values())


def _normalise(features: torch.Tensor) -> torch.Tensor:
    features = features.float()
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _to_numpy(chunks: list[torch.Tensor], dim: int) -> np.ndarray:
    if not chunks:
        return np.zeros((0, dim), np.float32)
    return torch.cat(chunks).cpu().numpy().astype(np.float32, copy=False)
