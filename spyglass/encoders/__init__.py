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


def load_encoder(
    spec: str | ModelSpec | None = None, settings: EncoderSettings | None = None, *, frozen: bool = False
) -> Encoder:
    """Load the encoder named by ``spec`` (default: ``settings.model``).

    ``frozen``: for ingest and serve, which only run the model forward, take its frozen export
    when there is one (``settings.fast_load``; see ``frozen``): the same vectors, loaded in a
    fraction of the time. Without it the full model is built, as tuning and exports need.
    """
    from spyglass.encoders.precision import resolve_device, resolve_dtype
    from spyglass.encoders.spec import model_id_of

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
    if parsed.backend == "builtin":
        from spyglass.encoders.builtin import ensure_shapes_model

        directory = ensure_shapes_model(settings.models_dir)
        model_id = model_id_of(parsed, directory)
        parsed = ModelSpec("open_clip", str(directory), local=directory)
    else:
        model_id = model_id_of(parsed)
    if frozen and settings.fast_load and device.type == "cpu":
        from spyglass.encoders.frozen import FrozenEncoder

        found = FrozenEncoder.open(
            settings.cache_dir,
            model_id,
            dtype=options["dtype"],
            batch_size=settings.batch_size,
            threads=settings.threads,
        )
        if found is not None:
            return found
    from spyglass.encoders.openclip import OpenClipEncoder

    encoder = OpenClipEncoder.load(parsed, **options)
    encoder.model_id = model_id  # builtin:shapes is named by its spec, not by its directory
    return encoder
