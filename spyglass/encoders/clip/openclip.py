"""open_clip backend: any open_clip architecture, pretrained tag, hf-hub repo or local checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import Image

from spyglass._compat import ensure_torchvision_importable
from spyglass.encoders import hub
from spyglass.encoders.base import Encoder, fold_linear, parameters_of
from spyglass.encoders.spec import ModelSpec, model_id_of
from spyglass.errors import ModelSpecError

ensure_torchvision_importable()
import open_clip  # noqa: E402
from open_clip.tokenizer import SimpleTokenizer  # noqa: E402
from open_clip.transformer import text_global_pool  # noqa: E402

# The pretrained config's preprocessing, as create_model_and_transforms' keyword arguments. A tag
# resolved to a weights file loses open_clip's own lookup of these, so they are passed back in.
_PREPROCESS_ARGS = {
    "mean": "image_mean",
    "std": "image_std",
    "interpolation": "image_interpolation",
    "resize_mode": "image_resize_mode",
}


class OpenClipEncoder(Encoder):
    """Wraps an open_clip model with its own preprocessing transform and tokenizer."""

    def __init__(
        self,
        model: torch.nn.Module,
        transform,
        tokenizer,
        model_id: str,
        *,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int = 64,
    ) -> None:
        super().__init__(model, model_id, device=device, dtype=dtype, batch_size=batch_size)
        self.model_cfg: dict | None = None  # the architecture, where known: what ``save`` needs
        self.transform = transform
        self.tokenizer = tokenizer
        self.image_size = _image_size(model)
        self._trim = trimmable(model, tokenizer)
        self.text_exportable = self._trim  # a causal tower with open_clip's BPE: exported exactly
        with torch.inference_mode():
            self.dim = int(self._embed_texts(["probe"]).shape[-1])

    @classmethod
    def load(
        cls, spec: ModelSpec, *, device: torch.device, dtype: torch.dtype, batch_size: int = 64
    ) -> OpenClipEncoder:
        name, kwargs, model_id = _resolve(spec)
        try:
            with _random_init_skipped():
                model, _, transform = open_clip.create_model_and_transforms(
                    name, require_pretrained=True, **kwargs
                )
        except RuntimeError as exc:  # no weights file, or weights of another shape (strict load)
            reason = str(exc).strip().splitlines()[0][:300]
            raise ModelSpecError(f"{spec}: open_clip could not load its weights ({reason}).") from None
        tokenizer = open_clip.get_tokenizer(name)
        encoder = cls(
            model, transform, tokenizer, model_id, device=device, dtype=dtype, batch_size=batch_size
        )
        encoder.model_cfg = _model_cfg(name, kwargs)
        return encoder

    def save(self, directory: Path) -> Path:
        if self.model_cfg is None:
            raise ModelSpecError(f"the architecture of {self.model_id} is unknown, so it cannot be saved")
        return save_local_dir(self.model, self.model_cfg, directory, self.model.visual.preprocess_cfg)

    def fold_projections(self, image_map: torch.Tensor, text_map: torch.Tensor) -> None:
        visual = self.model.visual
        if isinstance(getattr(visual, "proj", None), torch.nn.Parameter):  # ViT: pooled @ proj
            _fold_parameter(visual.proj, image_map)
        elif hasattr(visual, "attnpool"):  # ModifiedResNet: attention pooling ends in c_proj
            fold_linear(visual.attnpool.c_proj, image_map)
        else:
            raise ModelSpecError(f"{self.model_id}: no projection found after the image tower")
        projection = self.model.text_projection
        if isinstance(projection, torch.nn.Linear):
            fold_linear(projection, text_map)
        elif isinstance(projection, torch.nn.Parameter):
            _fold_parameter(projection, text_map)
        else:
            raise ModelSpecError(f"{self.model_id}: no projection found after the text tower")

    def tower_parameters(self, last: int | None) -> list[torch.nn.Parameter]:
        model = self.model
        if last is None:
            return list(model.parameters())
        visual = model.visual
        if hasattr(visual, "transformer"):  # ViT
            blocks = list(visual.transformer.resblocks)[-last:]
            head = [visual.ln_post, visual.proj]
        elif hasattr(visual, "attnpool"):  # ModifiedResNet: its stages, then the attention pooling
            blocks = [visual.layer1, visual.layer2, visual.layer3, visual.layer4][-last:]
            head = [visual.attnpool]
        else:
            raise ModelSpecError(f"{self.model_id}: cannot tell the image tower's blocks apart")
        blocks += list(model.transformer.resblocks)[-last:]
        head += [model.ln_final, model.text_projection, model.logit_scale]
        return parameters_of(blocks + head)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def _embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return encode_text_trimmed(self.model, tokens) if self._trim else self.model.encode_text(tokens)

    def encode_tokens_padded(self, texts: list[str]) -> torch.Tensor:
        """The untrimmed reference path (full context length); tests compare against it."""
        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(texts).to(self.device)).float()


def _model_cfg(name: str, kwargs: dict) -> dict | None:
    """The architecture config a loaded model was built from (what a saved copy needs)."""
    if name.startswith("local-dir:"):
        config = json.loads((Path(name.removeprefix("local-dir:")) / "open_clip_config.json").read_text())
        return config["model_cfg"]
    model_cfg = open_clip.get_model_config(name)
    if model_cfg is None:
        return None
    return {**model_cfg, **({"quick_gelu": True} if kwargs.get("force_quick_gelu") else {})}


def save_local_dir(
    model: torch.nn.Module, model_cfg: dict, directory: Path, preprocess_cfg: dict | None = None
) -> Path:
    """Write open_clip's ``local-dir`` format: ``open_clip_config.json`` + safetensors weights."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": dict(preprocess_cfg or {})}
    (directory / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    state = {name: tensor.detach().float().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(directory / "open_clip_model.safetensors"))
    return directory


def _fold_parameter(projection: torch.nn.Parameter, mapping: torch.Tensor) -> None:
    """``x @ P`` followed by ``mapping``: P becomes ``P @ mapping.T``."""
    with torch.no_grad():
        projection.copy_(projection @ mapping.to(projection.dtype).T)


@contextlib.contextmanager
def _random_init_skipped() -> Iterator[None]:
    """Build the model without drawing random initial weights (as transformers' ``no_init_weights`` does).

    A ViT-B-32 spends 1.5 s filling 150M parameters with random numbers that the checkpoint
    overwrites a moment later. ``require_pretrained`` plus open_clip's strict load make sure
    every parameter is overwritten, so none is left uninitialised.
    """
    names = [name for name in dir(torch.nn.init) if name.endswith("_") and not name.startswith("_")]
    saved = {name: getattr(torch.nn.init, name) for name in names}
    for name in names:
        setattr(torch.nn.init, name, _keep)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


def _keep(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return tensor


def encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's text forward over only the columns up to the longest real sequence.

    Exact for a causal tower pooled at the EOT token (see ``trimmable``): no real
    token attends to the padding after it, and the EOT position is kept.
    """
    tower = model if isinstance(model, open_clip.CLIP) else model.text
    return encode_text_columns(tower, tokens[:, : int((tokens != 0).sum(dim=1).max())])


def encode_text_columns(tower: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower over exactly the token columns given: causal mask and positions cut to match.

    Separate from the trimming so the exported text tower (``text_export``) traces this
    with the sequence length as a dynamic dimension.
    """
    n = tokens.shape[1]
    cast = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens).to(cast) + tower.positional_embedding[:n].to(cast)
    x = tower.ln_final(tower.transformer(x, attn_mask=tower.attn_mask[:n, :n]))
    pool, eos = pooling(tower)
    x = text_global_pool(x, tokens, pool, eos_token_id=eos)
    projection = tower.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def trimmable(model: torch.nn.Module, tokenizer) -> bool:
    """Trimming is exact only for a causal text tower pooled at the EOT token, padded with 0s."""
    tower = model if isinstance(model, open_clip.CLIP) else getattr(model, "text", None)
    if tower is None or getattr(tower, "attn_mask", None) is None:
        return False
    if getattr(tower, "cls_emb", None) is not None or getattr(tower, "use_pad_mask", False):
        return False
    return pooling(tower)[0] in ("argmax", "eos") and isinstance(tokenizer, SimpleTokenizer)


def _resolve(spec: ModelSpec) -> tuple[str, dict, str]:
    """Turn a spec into open_clip's (model_name, kwargs) with weights already on disk, plus a model_id."""
    if spec.local is not None and spec.tag is None:  # a local open_clip directory
        return f"local-dir:{spec.local}", {}, model_id_of(spec)
    if spec.name.startswith("hf-hub:"):
        repo = spec.name.removeprefix("hf-hub:")
        hub.hub_file(repo, ["open_clip_config.json"], str(spec))
        weights = hub.hub_file(
            repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"], str(spec)
        )
        return f"local-dir:{Path(weights).parent}", {}, model_id_of(spec)
    if spec.name not in open_clip.list_models():
        raise ModelSpecError(
            f"open_clip has no architecture {spec.name!r}; see `python -m open_clip` list_models()."
        )
    if spec.local is not None:  # architecture + checkpoint file
        return (
            spec.name,
            {"pretrained": str(spec.local)},
            model_id_of(spec),
        )
    cfg = open_clip.get_pretrained_cfg(spec.name, spec.tag)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(spec.name)) or "none"
        raise ModelSpecError(
            f"open_clip has no pretrained tag {spec.tag!r} for {spec.name}; known tags: {tags}."
        )
    weights = _tag_weights(cfg, str(spec))
    kwargs = {
        "pretrained": weights,
        "force_quick_gelu": bool(cfg.get("quick_gelu", False)),
        **{arg: cfg[key] for key, arg in _PREPROCESS_ARGS.items() if key in cfg},
    }
    return spec.name, kwargs, model_id_of(spec)


def _tag_weights(cfg: dict, spec: str) -> str:
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])  # "org/name/" means the default file name
        filename = filename or "open_clip_pytorch_model.bin"
        candidates = [filename]
        if filename.endswith((".bin", ".pth")):
            safe = (
                "open_clip_model.safetensors"
                if filename == "open_clip_pytorch_model.bin"
                else filename[:-4] + ".safetensors"
            )
            candidates.insert(0, safe)
        return hub.hub_file(repo, candidates, spec)
    raise ModelSpecError(
        f"{spec}: open_clip names no hub repository for this tag; use a local checkpoint file."
    )


def pooling(tower: torch.nn.Module) -> tuple[str, int | None]:
    if isinstance(tower, open_clip.CLIP):
        return tower.text_pool_type, getattr(tower, "text_eos_id", None)
    return tower.pool_type, getattr(tower, "eos_id", None)


def _image_size(model: torch.nn.Module) -> int:
    size = getattr(model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)
