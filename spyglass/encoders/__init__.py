"""Encoders: images and texts into one shared, L2-normalised embedding space.

``load_encoder`` is the one entry point: it parses a model spec, picks the
backend (one module each: ``openclip``, ``hf``; ``builtin`` builds on openclip),
and places the model on the configured device and precision.
"""

from __future__ import annotations

import torch

from spyglass.encoders.base import PROMPT_TEMPLATES, Encoder
from spyglass.encoders.precision import resolve_device, resolve_dtype
from spyglass.encoders.spec import ModelSpec, parse_spec
from spyglass.settings import Settings

__all__ = ["Encoder", "ModelSpec", "PROMPT_TEMPLATES", "load_encoder", "parse_spec"]


def load_encoder(spec: str | ModelSpec | None = None, settings: Settings | None = None) -> Encoder:
    """Load the encoder named by ``spec`` (default: ``settings.model``)."""
    settings = settings or Settings()
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec or settings.model)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    options = {"device": device, "dtype": resolve_dtype(settings.precision, device), "batch_size": settings.batch_size}
    if parsed.backend == "hf":
        from spyglass.encoders.hf import HFEncoder

        return HFEncoder.load(parsed, **options)
    from spyglass.encoders.openclip import OpenClipEncoder

    if parsed.backend == "builtin":
        from spyglass.encoders.builtin import ensure_shapes_model
        from spyglass.encoders.spec import fingerprint

        directory = ensure_shapes_model(settings.models_dir)
        encoder = OpenClipEncoder.load(ModelSpec("open_clip", str(directory), local=directory), **options)
        encoder.model_id = f"builtin:{parsed.name}/{fingerprint(directory)}"
        return encoder
    return OpenClipEncoder.load(parsed, **options)
