"""Random weights laid out exactly where the libraries look for real ones.

No pretrained checkpoint can be downloaded here, and a loading path exercised only
with tiny local directories once broke for every real user. So these helpers write
full-size, seeded random ViT-B-32 weights into a Hugging Face hub cache under a
temporary ``HF_HOME`` — ``hub/models--ORG--NAME/{blobs,refs/main,snapshots/REV/...}``,
snapshot files symlinked to content-addressed blobs as ``huggingface_hub`` writes
them — under the repo and file names that open_clip's ``pretrained.py`` resolves a
tag to (read from open_clip itself, never typed in here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from spyglass._compat import ensure_torchvision_importable

ensure_torchvision_importable()
import open_clip  # noqa: E402

ARCH = "ViT-B-32"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def hub_repo_dir(hf_home: Path, repo_id: str) -> Path:
    return hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"


def place_in_hub_cache(hf_home: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Put ``files`` (name in repo -> file on disk) into the hub cache as one snapshot; returns it."""
    repo = hub_repo_dir(hf_home, repo_id)
    snapshot = repo / "snapshots" / REVISION
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    for name, source in files.items():
        digest = _sha256(source)
        blob = repo / "blobs" / digest
        if not blob.exists():
            os.link(source, blob) if _same_device(source, blob.parent) else shutil.copyfile(source, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def tag_location(arch: str, tag: str) -> tuple[str, str]:
    """(repo id, weights file name) that open_clip resolves a pretrained tag to, safetensors preferred.

    open_clip writes ``org/name/`` for "the default file name" and tries the safetensors
    alternative first (``download_pretrained_from_hf``); this asks open_clip for both.
    """
    from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

    repo, filename = os.path.split(open_clip.get_pretrained_cfg(arch, tag)["hf_hub"])
    return repo, next(iter(_get_safe_alternatives(filename or HF_WEIGHTS_NAME)))


def write_random_clip(directory: Path, seed: int = 0, arch: str = ARCH) -> tuple[Path, Path]:
    """Seeded random weights of open_clip's ``arch`` (fp16, to halve disk use) and an ``open_clip_config.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    weights = directory / "open_clip_model.safetensors"
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(weights))
    config = directory / "open_clip_config.json"
    preprocess = {
        "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    config.write_text(
        json.dumps({"model_cfg": open_clip.get_model_config(arch), "preprocess_cfg": preprocess})
    )
    return weights, config


def write_random_hf_clip(directory: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A full-size random transformers ``CLIPModel`` (openai/clip-vit-base-patch32's config) with its tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    CLIPModel(CLIPConfig(projection_dim=512)).half().save_pretrained(directory)
    CLIPTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        directory
    )
    return directory


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev
