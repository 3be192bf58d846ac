"""The frozen model (``spyglass.encoders.frozen``): the full model's vectors without importing open_clip.

Real components throughout: an open_clip model directory loaded through the normal path,
its real text-tower ONNX export and TorchScript image tower in a temporary cache, and a
CLI process whose imports are listed by ``python -X importtime``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import imported, write_shapes
from PIL import Image

from spyglass.encoders import load_encoder
from spyglass.encoders.frozen import MANIFEST, MODULE, FrozenEncoder, image_export_dir
from spyglass.encoders.frozen_export import export_frozen, probe_images
from spyglass.encoders.openclip import OpenClipEncoder
from spyglass.encoders.text_export import export_text_tower
from spyglass.encoders.transform import PixelTransform
from spyglass.settings import EncoderSettings

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@pytest.mark.parametrize(
    ("resize_mode", "interpolation"),
    [("shortest", "bicubic"), ("squash", "bicubic"), ("shortest", "bilinear")],
)
def test_transform_gives_open_clips_pixels_exactly(resize_mode, interpolation):
    from spyglass._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from open_clip.transform import image_transform

    theirs = image_transform(
        224, is_train=False, mean=MEAN, std=STD, resize_mode=resize_mode, interpolation=interpolation
    )
    cfg = {
        "size": (224, 224),
        "mean": MEAN,
        "std": STD,
        "resize_mode": resize_mode,
        "interpolation": interpolation,
    }
    ours = PixelTransform.of(cfg)
    sizes = [(640, 480), (480, 640), (224, 224), (225, 224), (61, 97), (1000, 225), (7, 3)]
    rng = np.random.default_rng(0)
    for width, height in sizes:
        for mode in ("RGB", "L", "RGBA", "P"):
            image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
            assert torch.equal(ours(image), theirs(image)), (width, height, mode)


def test_transforms_it_cannot_reproduce_are_refused():
    base = {"mean": MEAN, "std": STD}
    assert PixelTransform.of({**base, "size": (224, 224), "resize_mode": "longest"}) is None
    assert PixelTransform.of({**base, "size": (224, 320)}) is None
    assert PixelTransform.of({**base, "size": 224, "interpolation": "lanczos"}) is None


@pytest.fixture
def frozen_cache(tiny_open_clip_dir, tmp_path):
    """A cache holding the tiny model's text-tower export and frozen image tower; the full model."""
    settings = EncoderSettings(precision="fp32", cache_dir=tmp_path, batch_size=4)
    full = load_encoder(str(tiny_open_clip_dir), settings)
    assert export_text_tower(full, tmp_path) is not None
    assert export_frozen(full, tmp_path) is not None
    return settings, full


def test_frozen_model_gives_the_full_models_vectors(tiny_open_clip_dir, frozen_cache, tmp_path):
    settings, full = frozen_cache
    frozen = load_encoder(str(tiny_open_clip_dir), settings, frozen=True)
    assert isinstance(frozen, FrozenEncoder)
    assert (frozen.model_id, frozen.dim, frozen.image_size) == (full.model_id, full.dim, full.image_size)
    assert frozen.logit_scale == pytest.approx(full.logit_scale)
    pictures = probe_images(seed=7) + [
        Image.open(path) for path in sorted(write_shapes(tmp_path / "shapes", 5, seed=1).glob("*.png"))
    ]
    for batch in (pictures[:1], pictures[:3], pictures):  # one, less than and more than a batch
        theirs, ours = full.encode_images(batch), frozen.encode_images(batch)
        assert ours.shape == theirs.shape
        assert (ours * theirs).sum(axis=1).min() > 0.9999
    texts = ["a red circle", "two dogs on a beach", "Ünïcode & entities &amp;"]
    assert (frozen.encode_texts(texts) * full.encode_texts(texts)).sum(axis=1).min() > 0.999
    ensembled = frozen.encode_texts(texts, ensemble=True) * full.encode_texts(texts, ensemble=True)
    assert ensembled.sum(axis=1).min() > 0.999


def test_the_full_model_is_loaded_unless_asked_for_and_allowed(tiny_open_clip_dir, frozen_cache):
    settings, _ = frozen_cache
    assert isinstance(load_encoder(str(tiny_open_clip_dir), settings), OpenClipEncoder)  # tuning, exports
    off = settings.model_copy(update={"fast_load": False})
    assert isinstance(load_encoder(str(tiny_open_clip_dir), off, frozen=True), OpenClipEncoder)
    other_precision = settings.model_copy(update={"precision": "bf16"})  # traced in fp32 only
    assert isinstance(load_encoder(str(tiny_open_clip_dir), other_precision, frozen=True), OpenClipEncoder)


def test_an_export_from_another_torch_or_a_broken_one_falls_back(tiny_open_clip_dir, frozen_cache, caplog):
    settings, full = frozen_cache
    directory = image_export_dir(settings.cache_dir, full.model_id, torch.float32)
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, "torch": "1.0.0"}))
    assert isinstance(load_encoder(str(tiny_open_clip_dir), settings, frozen=True), OpenClipEncoder)

    (directory / MANIFEST).write_text(json.dumps(manifest))
    (directory / MODULE).write_bytes(b"not a TorchScript archive")
    with caplog.at_level(logging.WARNING):
        encoder = load_encoder(str(tiny_open_clip_dir), settings, frozen=True)
    assert isinstance(encoder, OpenClipEncoder) and "does not load" in caplog.text
    assert encoder.encode_images(probe_images()[:2]).shape == (2, full.dim)


def test_nothing_is_published_when_the_check_fails(tiny_open_clip_dir, tmp_path, caplog):
    settings = EncoderSettings(precision="fp32", cache_dir=tmp_path)
    full = load_encoder(str(tiny_open_clip_dir), settings)
    assert export_frozen(full, tmp_path) is None  # no text-tower export to pair with yet
    export_text_tower(full, tmp_path)
    original = full.transform
    full.transform = lambda image: original(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    with caplog.at_level(logging.WARNING):
        assert export_frozen(full, tmp_path) is None
    assert "could not be reproduced" in caplog.text
    assert not image_export_dir(tmp_path, full.model_id, torch.float32).exists()
    assert not list((tmp_path / "image-towers").iterdir())  # no work directory left behind either


def test_an_ingest_freezes_the_model_and_the_next_one_never_imports_open_clip(tiny_open_clip_dir, tmp_path):
    env = {
        **os.environ,
        "SPYGLASS_MODEL": str(tiny_open_clip_dir),
        "SPYGLASS_PRECISION": "fp32",
        "SPYGLASS_DATA_DIR": str(tmp_path / "data"),
        "SPYGLASS_ENCODER__CACHE_DIR": str(tmp_path / "cache"),
    }

    def index(folder, *python: str) -> subprocess.CompletedProcess:
        command = [sys.executable, *python, "-m", "spyglass", "index", str(folder), "--json"]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    first = index(write_shapes(tmp_path / "first", 4, seed=2))
    assert json.loads(first.stdout)["added"] == 4
    assert list((tmp_path / "cache" / "image-towers").glob("*/" + MANIFEST))
    second = index(write_shapes(tmp_path / "second", 4, seed=5), "-X", "importtime")
    assert json.loads(second.stdout)["added"] == 4
    modules = imported(second.stderr)
    assert "torch" in modules and not modules & {"open_clip", "torchvision", "transformers"}
