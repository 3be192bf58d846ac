"""transformers backend: ``CLIPModel`` / ``SiglipModel`` families from the hub or a local directory."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from spyglass._compat import ensure_torchvision_importable
from spyglass.encoders import hub
from spyglass.encoders.base import Encoder, fold_linear, parameters_of
from spyglass.encoders.spec import ModelSpec, model_id_of
from spyglass.errors import ModelSpecError

ensure_torchvision_importable()
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer  # noqa: E402


class HFEncoder(Encoder):
    """Wraps a transformers dual encoder with its own image processor and tokenizer."""

    def __init__(
        self,
        model: torch.nn.Module,
        image_processor,
        tokenizer,
        model_id: str,
        *,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int = 64,
    ) -> None:
        super().__init__(model, model_id, device=device, dtype=dtype, batch_size=batch_size)
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.dim = int(model.config.projection_dim if hasattr(model.config, "projection_dim") else 0) or int(
            model.config.text_config.hidden_size
        )
        size = model.config.vision_config.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        # SigLIP was trained on max_length padding and pools without a causal mask, so
        # its padding changes the result; CLIP's causal EOS pooling makes "longest" exact.
        self.padding = "max_length" if model.config.model_type.startswith("siglip") else "longest"
        self.max_length = int(getattr(model.config.text_config, "max_position_embeddings", 77))

    @classmethod
    def load(
        cls, spec: ModelSpec, *, device: torch.device, dtype: torch.dtype, batch_size: int = 64
    ) -> HFEncoder:
        source = str(spec.local) if spec.local is not None else spec.name
        if spec.local is None:
            _ensure_local(spec)
        local_only = spec.local is not None or hub.is_offline()
        try:
            model = AutoModel.from_pretrained(source, local_files_only=local_only)
            image_processor = AutoImageProcessor.from_pretrained(source, local_files_only=local_only)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        except OSError as exc:
            if spec.local is not None:
                raise ModelSpecError(f"{spec.local} is not a loadable transformers model ({exc}).") from None
            if local_only:
                raise hub.unavailable(str(spec), f"{hub.hf_cache_dir()} for {spec.name}") from None
            raise
        model_id = model_id_of(spec)
        return cls(
            model, image_processor, tokenizer, model_id, device=device, dtype=dtype, batch_size=batch_size
        )

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for part in (self.model, self.tokenizer, self.image_processor):
            part.save_pretrained(directory)
        return directory

    def fold_projections(self, image_map: torch.Tensor, text_map: torch.Tensor) -> None:
        for name, mapping in (("visual_projection", image_map), ("text_projection", text_map)):
            layer = getattr(self.model, name, None)
            if not isinstance(layer, torch.nn.Linear):  # SigLIP pools into its embedding: no projection
                raise ModelSpecError(f"{self.model_id} has no {name} layer; tune it with --mode last or full")
            fold_linear(layer, mapping)

    def tower_parameters(self, last: int | None) -> list[torch.nn.Parameter]:
        if last is None:
            return list(self.model.parameters())
        vision, text = self.model.vision_model, self.model.text_model
        return parameters_of(
            [
                *list(vision.encoder.layers)[-last:],
                *list(text.encoder.layers)[-last:],
                vision.post_layernorm,
                getattr(vision, "head", None),
                text.final_layer_norm,
                getattr(text, "head", None),
                getattr(self.model, "visual_projection", None),
                getattr(self.model, "text_projection", None),
                self.model.logit_scale,
            ]
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))

    def _embed_texts(self, texts: list[str], padding: str | None = None) -> torch.Tensor:
        batch = self.tokenizer(
            texts,
            padding=padding or self.padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        return _features(self.model.get_text_features(**batch))

    def encode_tokens_padded(self, texts: list[str]) -> torch.Tensor:
        """The fully padded reference path; tests compare the trimmed path against it."""
        with torch.inference_mode():
            return self._embed_texts(texts, padding="max_length").float()


def _features(output) -> torch.Tensor:
    """transformers 4 returns a tensor, 5 a model output whose pooler_output is projected."""
    return output if torch.is_tensor(output) else output.pooler_output


def _ensure_local(spec: ModelSpec) -> None:
    """Fail fast, with one clear sentence, when a hub model is neither cached nor downloadable."""
    hub.hub_file(spec.name, ["config.json"], str(spec))
