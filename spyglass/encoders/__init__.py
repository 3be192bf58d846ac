"""Encoders: images and texts into one shared, L2-normalised embedding space.

``load_encoder`` is the one entry point: it parses a model spec, picks the
backend (one module each: ``openclip``, ``hf``; ``builtin`` builds on openclip),
and places the model on the configured device and precision.

Importing this package is cheap (no torch): the specs, the weight lookup and the
``models`` report work without it; ``Encoder`` and the backends load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spyglass.encoders.prompts import PROMPT_TEMPLATES
from spyglass.encoders.spec import ModelSpec, parse_spec
from spyglass.settings import EncoderSettings

if TYPE_CHECKING:
    from spyglass.encoders.base import Encoder

__all__ = ["PROMPT_TEMPLATES", "Encoder", "ModelSpec", "load_encoder", "parse_spec"]


def __getattr__(name: str):
    if name == "Encoder":
        from spyglass.encoders.base import Encoder

        return Encoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_encoder(spec: str | ModelSpec | None = None, settings: EncoderSettings | None = None) -> Encoder:
    """Load the encoder named by ``spec`` (default: ``settings.model``)."""
    from spyglass.encoders.precision import resolve_device, resolve_dtype

    settings = settings or EncoderSettings()
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec or settings.model)
    device = resolve_device(settings.device)
    options = {
        "device": device,
        "dtype": resolve_dtype(settings.precision, device),
        "batch_size": settings.batch_size,
    }
    if parsed.backend == "hf":
        from spyglass.encoders.hf import HFEncoder

        return HFEncoder.load(parsed, **options)
    from spyglass.encoders.openclip import OpenClipEncoder

    if parsed.backend == "builtin":
        from spyglass.encoders.builtin import ensure_shapes_model
        from spyglass.encoders.spec import model_id_of

        directory = ensure_shapes_model(settings.models_dir)
        encoder = OpenClipEncoder.load(ModelSpec("open_clip", str(directory), local=directory), **options)
        encoder.model_id = model_id_of(parsed, directory)
        return encoder
    return OpenClipEncoder.load(parsed, **options)
