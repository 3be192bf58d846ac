"""Encoders: images and texts into one shared, L2-normalised embedding space.

``load_encoder`` is the one entry point: it parses a model spec, picks the
backend (one module each: ``openclip``, ``hf``; ``builtin`` builds on openclip),
and places the model on the configured device and precision.

Importing this package is cheap (no torch): the specs, the weight lookup and the
``models`` report work without it; ``Encoder`` and the backends load on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.encoders.prompts import PROMPT_TEMPLATES
from spyglass.encoders.spec import ModelSpec, parse_spec
from spyglass.settings import EncoderSettings

if TYPE_CHECKING:
    from spyglass.encoders.base import Encoder
    from spyglass.encoders.fast.image_tower import FastEncoder

__all__ = ["PROMPT_TEMPLATES", "Encoder", "ModelSpec", "load_encoder", "parse_spec"]


def __getattr__(name: str):
    if name == "Encoder":
        from spyglass.encoders.base import Encoder

        return Encoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_encoder(
    spec: str | ModelSpec | None = None,
    settings: EncoderSettings | None = None,
    *,
    frozen: bool = False,
    keep: str | None = None,
) -> Encoder | FastEncoder:
    """Load the encoder named by ``spec`` (default: ``settings.model``).

    ``frozen``: for ingest and serve, which only run the model forward, take its fast form (the
    ONNX exports, no torch; ``encoders.fast``) when there is one and ``settings.fast_load`` allows:
    the image tower in ``keep`` (the precision a collection's vectors were made in), else in the
    configured precision; where torch runs the model (bf16 on AMX CPUs), its traced image tower
    (``fast.traced``). Without it, or without an export, the full model is built, as tuning and
    exports need.
    """
    from spyglass.encoders.spec import model_id_of

    settings = settings or EncoderSettings()
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec or settings.model)
    if parsed.backend == "builtin":
        from spyglass.encoders.clip.builtin import ensure_shapes_model

        directory = ensure_shapes_model(settings.models_dir)
        model_id = model_id_of(parsed, directory)
        parsed = ModelSpec("open_clip", str(directory), local=directory)
    elif parsed.backend == "open_clip":
        model_id = model_id_of(parsed)
    precision = fast_precision(settings, model_id, keep) if frozen and parsed.backend == "open_clip" else None
    if precision is not None:
        from spyglass.encoders.fast.image_tower import FastEncoder

        found = FastEncoder.open(
            settings.cache_dir, model_id, precision, batch_size=settings.batch_size, threads=settings.threads
        )
        if found is not None:
            return found
    from spyglass.encoders.precision import resolve_device, resolve_dtype

    device = resolve_device(settings.device)
    options = {
        "device": device,
        "dtype": resolve_dtype(settings.precision, device),
        "batch_size": settings.batch_size,
    }
    if frozen and parsed.backend == "open_clip" and settings.fast_load and device.type == "cpu":
        from spyglass.encoders.fast.traced import TracedEncoder, precision_name

        traced = TracedEncoder.open(
            settings.cache_dir,
            model_id,
            precision_name(options["dtype"]),
            batch_size=settings.batch_size,
            threads=settings.threads,
        )
        if traced is not None:  # the torch model's own vectors, without building it
            return traced
    if parsed.backend == "hf":
        from spyglass.encoders.clip.hf import HFEncoder

        return HFEncoder.load(parsed, **options)
    from spyglass.encoders.clip.openclip import OpenClipEncoder

    encoder = OpenClipEncoder.load(parsed, **options)
    encoder.model_id = model_id  # builtin:shapes is named by its spec, not by its directory
    return encoder


def known_model_id(spec: str, settings: EncoderSettings) -> str | None:
    """The model id of ``spec`` without loading it (None: a builtin model not trained yet, or a
    spec that names no model)."""
    from spyglass.encoders.spec import model_id_of
    from spyglass.errors import ModelSpecError

    try:
        parsed = parse_spec(spec)
        if parsed.backend == "builtin":
            from spyglass.encoders.clip.builtin import trained_model_dir

            directory = trained_model_dir(settings.models_dir)
            return model_id_of(parsed, directory) if directory else None
        return model_id_of(parsed)
    except ModelSpecError:
        return None


def fast_allowed(settings: EncoderSettings, on_cpu: bool, keep: str | None = None) -> bool:
    """Whether ingest and serve may run the model's ONNX exports: on the CPU, in a precision they have.

    ``auto`` on a CPU with AMX keeps torch's bf16 weights (unless the collection is int8): there
    they embedded ViT-B-32 about twice as fast as onnxruntime's int8 (README, "Precision and speed").
    """
    from spyglass.encoders.precision import cpu_has_fast_bf16

    if not (settings.fast_load and on_cpu):
        return False
    if keep == "int8":
        return True
    return settings.precision in ("fp32", "int8") or (
        settings.precision == "auto" and not cpu_has_fast_bf16()
    )


def fast_precision(settings: EncoderSettings, model_id: str, keep: str | None) -> str | None:
    """The precision of the ONNX image tower ingest and serve run (``fp32`` or ``int8``), or None
    where they run the torch model. Searches ask it too: it names the space their vectors are in."""
    if not fast_allowed(settings, cpu_device(settings.device), keep):
        return None
    from spyglass.encoders.fast.choice import precision_for

    return precision_for(settings.cache_dir, model_id, keep or settings.precision, threads=settings.threads)


def cpu_device(setting: str) -> bool:
    """Whether ``device`` means the CPU, known without importing torch: ``auto`` means a GPU only
    where an NVIDIA driver is loaded (torch then decides, as before)."""
    return setting == "cpu" or (setting == "auto" and not Path("/proc/driver/nvidia/version").exists())
