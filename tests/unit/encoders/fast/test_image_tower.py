"""The image tower on ONNX Runtime (``spyglass.encoders.fast.image_tower``): the model's vectors
without torch, in fp32 and, where its check passes, int8.

Real components throughout: an open_clip model directory loaded through the normal path, its
real ONNX exports in a temporary cache, the trained ``builtin:shapes`` model for retrieval, and
CLI processes whose imports are listed by ``python -X importtime``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import imported, write_shapes
from PIL import Image

from spyglass.encoders import load_encoder
from spyglass.encoders.clip.openclip import OpenClipEncoder
from spyglass.encoders.fast import image_export
from spyglass.encoders.fast.cache import MANIFEST
from spyglass.encoders.fast.image_export import INT8_BLOCKS, export_image_tower, int8_check, probe_images
from spyglass.encoders.fast.image_tower import FastEncoder, graph_name, image_export_dir
from spyglass.encoders.fast.pixels import PixelTransform
from spyglass.encoders.fast.text_export import export_text_tower
from spyglass.runtime.models import load_encoder as runtime_load_encoder
from spyglass.settings import EncoderSettings, Settings

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
            assert np.array_equal(ours(image), theirs(image).numpy()), (width, height, mode)


def test_transforms_it_cannot_reproduce_are_refused():
    base = {"mean": MEAN, "std": STD}
    assert PixelTransform.of({**base, "size": (224, 224), "resize_mode": "longest"}) is None
    assert PixelTransform.of({**base, "size": (224, 320)}) is None
    assert PixelTransform.of({**base, "size": 224, "interpolation": "lanczos"}) is None


@pytest.fixture
def exported_cache(tiny_open_clip_dir, tmp_path):
    """A cache holding the tiny model's text-tower and image-tower exports; the full model."""
    settings = EncoderSettings(precision="fp32", cache_dir=tmp_path, batch_size=4)
    full = load_encoder(str(tiny_open_clip_dir), settings)
    assert export_text_tower(full, tmp_path) is not None
    assert export_image_tower(full, tmp_path) is not None
    return settings, full


def test_the_fp32_export_gives_the_full_models_vectors(tiny_open_clip_dir, exported_cache, tmp_path):
    settings, full = exported_cache
    fast = load_encoder(str(tiny_open_clip_dir), settings, frozen=True)
    assert isinstance(fast, FastEncoder) and fast.precision == "fp32"
    assert (fast.model_id, fast.dim, fast.image_size) == (full.model_id, full.dim, full.image_size)
    assert fast.logit_scale == pytest.approx(full.logit_scale)
    pictures = probe_images(seed=7)[:9] + [
        Image.open(path) for path in sorted(write_shapes(tmp_path / "shapes", 5, seed=1).glob("*.png"))
    ]
    for batch in (pictures[:1], pictures[:3], pictures):  # one, less than and more than a batch
        theirs, ours = full.encode_images(batch), fast.encode_images(batch)
        assert ours.shape == theirs.shape
        assert (ours * theirs).sum(axis=1).min() > 0.9999
    texts = ["a red circle", "two dogs on a beach", "Ünïcode & entities &amp;"]
    assert (fast.encode_texts(texts) * full.encode_texts(texts)).sum(axis=1).min() > 0.999
    ensembled = fast.encode_texts(texts, ensemble=True) * full.encode_texts(texts, ensemble=True)
    assert ensembled.sum(axis=1).min() > 0.999


def test_the_full_model_is_loaded_unless_asked_for_and_allowed(tiny_open_clip_dir, exported_cache):
    settings, _ = exported_cache
    assert isinstance(load_encoder(str(tiny_open_clip_dir), settings), OpenClipEncoder)  # tuning, exports
    off = settings.model_copy(update={"fast_load": False})
    assert isinstance(load_encoder(str(tiny_open_clip_dir), off, frozen=True), OpenClipEncoder)
    torch_precision = settings.model_copy(update={"precision": "bf16"})  # ONNX runs fp32 and int8 only
    assert isinstance(load_encoder(str(tiny_open_clip_dir), torch_precision, frozen=True), OpenClipEncoder)


def test_int8_is_published_only_with_a_passed_check(tiny_open_clip_dir, exported_cache):
    """The manifest records the check either way; the int8 graph exists exactly when it passed,
    and asking for int8 without it embeds in fp32 (the model's own space)."""
    settings, full = exported_cache
    directory = image_export_dir(settings.cache_dir, full.model_id)
    manifest = json.loads((directory / MANIFEST).read_text())
    check = manifest["checks"].get("int8") or manifest["refused"]["int8"]
    assert check["passed"] == ("int8" in manifest["checks"])
    assert check["block"] in INT8_BLOCKS
    assert (directory / graph_name("int8")).exists() == check["passed"]
    asked = load_encoder(
        str(tiny_open_clip_dir), settings.model_copy(update={"precision": "int8"}), frozen=True
    )
    if check["passed"]:
        assert asked.precision == "int8" and asked.model_id == f"{full.model_id}#int8"
    else:
        assert asked.precision == "fp32" and asked.model_id == full.model_id


def test_the_int8_check_fails_when_neighbours_change():
    """A check that cannot fail would publish anything: rotate some vectors and it must refuse."""
    rng = np.random.default_rng(0)
    fp32 = rng.normal(size=(60, 32)).astype(np.float32)
    fp32 /= np.linalg.norm(fp32, axis=1, keepdims=True)
    assert int8_check(fp32, fp32)["passed"]
    noisy = fp32 + rng.normal(0, 0.3, fp32.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    check = int8_check(fp32, noisy)
    assert not check["passed"] and check["same_neighbours"] < 0.95


def test_finer_int8_blocks_are_published_where_the_coarse_ones_fail(tmp_path, monkeypatch, capsys):
    """The coarsest blocks run fastest but stray furthest from fp32: for a model whose neighbours
    they move (here the trained shapes model, its first verdict turned to a failure), the next,
    finer blocks are quantized, checked on their own and published; every verdict is printed."""
    verdicts = []

    def coarse_fails(fp32: np.ndarray, int8: np.ndarray) -> dict:
        verdicts.append(int8_check(fp32, int8))
        return verdicts[-1] | ({"passed": False} if len(verdicts) == 1 else {})

    monkeypatch.setattr(image_export, "int8_check", coarse_fails)
    settings = EncoderSettings(precision="int8", cache_dir=tmp_path)
    full = load_encoder("builtin:shapes", settings)
    export_text_tower(full, tmp_path)
    directory = export_image_tower(full, tmp_path)
    assert len(verdicts) == 2 and verdicts[1]["passed"]  # the finer blocks' own check passed
    assert capsys.readouterr().err.count("int8 check for") == 2
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["checks"]["int8"]["block"] == INT8_BLOCKS[1] and manifest["refused"] == {}
    graph = onnx.load(str(directory / graph_name("int8")), load_external_data=False)
    blocks = {
        onnx.helper.get_attribute_value(attribute)
        for node in graph.graph.node
        if node.op_type == "MatMulNBits"
        for attribute in node.attribute
        if attribute.name == "block_size"
    }
    assert blocks == {INT8_BLOCKS[1]}  # the published graph is the finer one, not just its record
    fast = load_encoder("builtin:shapes", settings, frozen=True)
    assert isinstance(fast, FastEncoder) and fast.precision == "int8"
    pictures = probe_images(seed=3)[:8]
    assert (fast.encode_images(pictures) * full.encode_images(pictures)).sum(axis=1).min() > 0.99
    assert not list(directory.glob("*.raw.onnx"))  # the unoptimised graphs are not kept


def test_a_broken_export_falls_back_to_the_full_model(tiny_open_clip_dir, exported_cache):
    settings, full = exported_cache
    directory = image_export_dir(settings.cache_dir, full.model_id)
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, "format": 1}))  # an older exporter's
    assert isinstance(load_encoder(str(tiny_open_clip_dir), settings, frozen=True), OpenClipEncoder)


def test_nothing_is_published_when_the_check_fails(tiny_open_clip_dir, tmp_path, caplog):
    settings = EncoderSettings(precision="fp32", cache_dir=tmp_path)
    full = load_encoder(str(tiny_open_clip_dir), settings)
    assert export_image_tower(full, tmp_path) is None  # no text-tower export to pair with yet
    export_text_tower(full, tmp_path)
    original = full.transform
    full.transform = lambda image: original(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    with caplog.at_level(logging.WARNING):
        assert export_image_tower(full, tmp_path) is None
    assert "could not be reproduced" in caplog.text
    assert not image_export_dir(tmp_path, full.model_id).exists()
    assert not list((tmp_path / "image-towers").iterdir())  # no work directory left behind either


def test_ingests_and_a_search_never_import_torch_the_export_runs_in_a_child(tiny_open_clip_dir, tmp_path):
    env = {
        **os.environ,
        "SPYGLASS_MODEL": str(tiny_open_clip_dir),
        "SPYGLASS_DATA_DIR": str(tmp_path / "data"),
        "SPYGLASS_ENCODER__CACHE_DIR": str(tmp_path / "cache"),
        "SPYGLASS_PRECISION": "int8",  # auto keeps bf16 on AMX CPUs; int8 falls back to fp32 if refused
    }

    def run(*arguments: str, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        command = [sys.executable, *python, "-m", "spyglass", *arguments]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    first = run(
        "index", str(write_shapes(tmp_path / "first", 4, seed=2)), "--json", python=("-X", "importtime")
    )
    assert json.loads(first.stdout)["added"] == 4
    assert list((tmp_path / "cache" / "image-towers").glob("*/" + MANIFEST))
    assert "int8 check for" in first.stderr  # the check's verdict is printed
    assert "by a child process (peak " in first.stderr
    assert not imported(first.stderr) & {"torch", "open_clip"}  # the export ran in the child
    second = run(
        "index", str(write_shapes(tmp_path / "second", 4, seed=5)), "--json", python=("-X", "importtime")
    )
    assert json.loads(second.stdout)["added"] == 4
    assert not imported(second.stderr) & {"torch", "open_clip", "torchvision", "transformers"}
    search = run("search", "a red circle", "--json", python=("-X", "importtime"))
    assert json.loads(search.stdout)
    assert "torch" not in imported(search.stderr)


def test_the_probe_check_gives_the_verdict_real_photos_give():
    """The export checks int8 on generated probes (a user's machine has no reference photos); on
    200 Flickr8k photos nobody here made, the same check must reach the same verdict."""
    from conftest import shared_path

    from spyglass.encoders.fast.image_tower import FastEncoder
    from spyglass.images import open_image
    from spyglass.runtime.models import load_encoder as load_for_ingest
    from spyglass.settings import Settings

    photos = sorted(shared_path("data", "flickr8k-1k", "images").glob("*.jpg"))[:200]
    fp32 = load_for_ingest(Settings(encoder={"precision": "fp32"}), "builtin:shapes")  # exported if needed
    manifest = fp32.manifest
    probe_verdict = "int8" in manifest.checks
    pictures = [open_image(path, min_side=fp32.image_size) for path in photos]
    int8 = FastEncoder.open(Settings().encoder.cache_dir, manifest.model_id, "int8")
    if int8 is None:  # refused at export on these probes: nothing was published to compare
        assert not probe_verdict
        return
    on_photos = int8_check(fp32.encode_images(pictures), int8.encode_images(pictures))
    print(f"int8 on probes: {manifest.checks['int8']}; on Flickr photos: {on_photos}")
    assert on_photos["passed"] == probe_verdict


def test_a_failed_export_in_the_child_leaves_the_full_model_in_use(tiny_open_clip_dir, tmp_path, caplog):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the export cache should be")
    settings = Settings(model=str(tiny_open_clip_dir), encoder={"cache_dir": blocked, "precision": "fp32"})
    with caplog.at_level(logging.WARNING):
        encoder = runtime_load_encoder(settings, str(tiny_open_clip_dir))
    assert isinstance(encoder, OpenClipEncoder)
    assert "could not be exported" in caplog.text
    assert blocked.read_text().startswith("a file")  # nothing written over it
