"""What models are configured and whether their weights are on this machine, without loading or downloading."""

from __future__ import annotations

import os

from spyglass.encoders import hub
from spyglass.encoders.spec import ModelSpec, parse_spec
from spyglass.errors import ModelSpecError
from spyglass.settings import EncoderSettings

HF_WEIGHTS = ["model.safetensors", "pytorch_model.bin"]


def describe_models(settings: EncoderSettings) -> list[dict]:
    """One row per model: the configured one and ``builtin:shapes``."""
    rows = [_describe(settings.model, "configured", settings)]
    if not settings.model.startswith("builtin:"):
        rows.append(_describe("builtin:shapes", "offline fallback", settings))
    return rows


def describe_text_model(spec: str) -> list[dict]:
    """The text space's model as a row like ``describe_models``' (none when the text space is off)."""
    if not spec:
        return []
    from spyglass.encoders.sentence.model import local_path

    local = local_path(spec)
    found = (
        (str(local) if local.is_dir() else None) if local is not None else hub.cached_file(spec, HF_WEIGHTS)
    )
    present, where = (
        found is not None,
        found or (str(local) if local else f"{hub.hf_cache_dir()} (not cached)"),
    )
    return [
        {
            "spec": spec,
            "role": "text space",
            "backend": "sentence-transformers",
            "present": present,
            "where": where,
        }
    ]


def _describe(spec_text: str, role: str, settings: EncoderSettings) -> dict:
    try:
        spec = parse_spec(spec_text)
    except ModelSpecError as exc:
        return {"spec": spec_text, "role": role, "backend": "?", "present": False, "where": str(exc)}
    present, where = _locate(spec, settings)
    return {"spec": spec_text, "role": role, "backend": spec.backend, "present": present, "where": where}


def _locate(spec: ModelSpec, settings: EncoderSettings) -> tuple[bool, str]:
    if spec.backend == "builtin":
        from spyglass.encoders.clip.builtin import shapes_model_dir, trained_model_dir

        if trained := trained_model_dir(settings.models_dir):
            return True, str(trained)
        return False, f"{shapes_model_dir(settings.models_dir)} (trained on first use, about 20 s)"
    if spec.local is not None:
        return spec.local.exists(), str(spec.local)
    if spec.backend == "hf":
        found = hub.cached_file(spec.name, HF_WEIGHTS)
        return found is not None, found or f"{hub.hf_cache_dir()} (not cached)"
    return _locate_open_clip(spec)


def _locate_open_clip(spec: ModelSpec) -> tuple[bool, str]:
    from spyglass.encoders.clip.openclip_tags import pretrained_cfg

    if spec.name.startswith("hf-hub:"):
        found = hub.cached_file(
            spec.name.removeprefix("hf-hub:"), ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        )
        return found is not None, found or f"{hub.hf_cache_dir()} (not cached)"
    cfg = pretrained_cfg(spec.name, spec.tag or "")
    if not cfg.get("hf_hub"):
        return False, f"unknown tag {spec.tag!r} for {spec.name}"
    repo, filename = os.path.split(cfg["hf_hub"])
    found = hub.cached_file(repo, ["open_clip_model.safetensors", filename or "open_clip_pytorch_model.bin"])
    return found is not None, found or f"{hub.hf_cache_dir()} (not cached)"
