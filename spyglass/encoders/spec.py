"""Model specs: one string names a model everywhere (settings, ``--model``, the API).

Forms::

    open_clip:ViT-B-32/laion2b_s34b_b79k   architecture + pretrained tag
    open_clip:ViT-B-32//models/vitb32.pt    architecture + local checkpoint file
    open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K
    hf:openai/clip-vit-base-patch32         transformers CLIP/SigLIP from the hub
    hf:/models/siglip                       ... or from a local directory
    /models/some-dir                        a local directory, backend sniffed from its files
    builtin:shapes                          tiny model trained on generated shapes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from spyglass.errors import ModelSpecError

Backend = Literal["open_clip", "hf", "builtin"]
BUILTIN_MODELS = ("shapes",)
_FORMS = "open_clip:ARCH/TAG, open_clip:ARCH//path/to/checkpoint.pt, open_clip:hf-hub:ORG/NAME, hf:ORG/NAME, a local directory, or builtin:shapes"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``local`` is set when the weights are a file or directory on disk."""

    backend: Backend
    name: str
    tag: str | None = None
    local: Path | None = None

    def __str__(self) -> str:
        if self.backend == "open_clip" and self.tag:
            return f"open_clip:{self.name}/{self.tag}"
        if self.local is not None:
            return f"{self.backend}:{self.local}"
        return f"{self.backend}:{self.name}"


def parse_spec(spec: str) -> ModelSpec:
    """Parse a model spec, raising :class:`ModelSpecError` with the accepted forms."""
    try:
        return _parse(spec.strip())
    except (OSError, RuntimeError) as exc:  # a path too long, or ~user naming nobody
        raise ModelSpecError(
            f"Model spec {spec[:200]!r} is not a usable path ({exc}); use {_FORMS}."
        ) from None


def _parse(spec: str) -> ModelSpec:
    prefix, sep, rest = spec.partition(":")
    if not sep or prefix not in ("open_clip", "hf", "builtin") or not rest:
        return _sniff_path(spec)
    if prefix == "builtin":
        if rest not in BUILTIN_MODELS:
            raise ModelSpecError(
                f"Unknown builtin model {rest!r}; builtin models: {', '.join(BUILTIN_MODELS)}."
            )
        return ModelSpec("builtin", rest)
    if prefix == "hf":
        if _looks_like_path(rest):
            return ModelSpec("hf", rest, local=_existing(rest, spec))
        return ModelSpec("hf", rest)
    return _parse_open_clip(rest, spec)


def _parse_open_clip(rest: str, spec: str) -> ModelSpec:
    if rest.startswith("hf-hub:"):
        return ModelSpec("open_clip", rest)
    if rest.startswith(("local-dir:", "/", "./", "../", "~")):
        path = _existing(rest.removeprefix("local-dir:"), spec)
        return ModelSpec("open_clip", str(path), local=path)
    arch, _, tag = rest.partition("/")
    if not tag:
        raise ModelSpecError(f"Model spec {spec!r} names no pretrained tag or checkpoint; use {_FORMS}.")
    if _looks_like_path(tag):
        path = _existing(tag, spec)
        return ModelSpec("open_clip", arch, tag=str(path), local=path)
    return ModelSpec("open_clip", arch, tag=tag)


def _sniff_path(spec: str) -> ModelSpec:
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelSpecError(
            f"Model spec {spec!r} is neither a known form nor an existing path; use {_FORMS}."
        )
    if (path / "open_clip_config.json").is_file():
        return ModelSpec("open_clip", str(path.resolve()), local=path.resolve())
    if (path / "config.json").is_file():
        return ModelSpec("hf", str(path.resolve()), local=path.resolve())
    raise ModelSpecError(
        f"Cannot tell which backend loads {spec!r}: a model directory holds open_clip_config.json "
        "(open_clip) or config.json (transformers); for a bare checkpoint file use open_clip:ARCH//path."
    )


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text.endswith((".pt", ".pth", ".bin", ".safetensors"))


def _existing(text: str, spec: str) -> Path:
    path = Path(text).expanduser().resolve()
    if not path.exists():
        raise ModelSpecError(f"Model spec {spec!r} points at {path}, which does not exist.")
    return path


def model_id_of(spec: ModelSpec, builtin_dir: Path | None = None) -> str:
    """The ``model_id`` stored with a spec's vectors, known without loading the model.

    Hub and tag models are named by their spec; local weights by a fingerprint of their
    files, so replacing the weights in place changes the id. ``builtin_dir`` is the trained
    builtin model's directory (its weights differ per machine that trained it).
    """
    if spec.backend == "builtin":
        if builtin_dir is None:
            raise ModelSpecError(f"builtin:{spec.name} has not been trained on this machine yet")
        return f"builtin:{spec.name}/{fingerprint(builtin_dir)}"
    if spec.backend == "hf":
        return f"hf:local/{fingerprint(spec.local)}" if spec.local is not None else f"hf:{spec.name}"
    if spec.local is not None:
        if spec.tag is None:  # a local open_clip directory
            return f"open_clip:local/{fingerprint(spec.local)}"
        return f"open_clip:{spec.name}/file-{fingerprint(spec.local)}"
    return str(spec)  # open_clip:ARCH/TAG or open_clip:hf-hub:ORG/NAME


def fingerprint(path: Path) -> str:
    """A short, stable id for local weights: sizes plus the first and last MiB of each file.

    Hashing whole multi-GB checkpoints would make every start slow; head, tail and
    size change whenever the weights do.
    """
    import hashlib

    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), 2)
                digest.update(handle.read())
    return digest.hexdigest()[:12]
