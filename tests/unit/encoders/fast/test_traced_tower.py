"""The image tower traced to TorchScript (``spyglass.encoders.fast.traced``): where torch runs the
model in bf16 (``auto`` on AMX CPUs, or ``precision=bf16``), ingest and serve load it with torch
alone, not open_clip, and get the model's own vectors.

Real components: an open_clip model directory loaded through the normal path, real exports in a
temporary cache, and CLI processes whose imports are listed by ``python -X importtime``. bf16 runs
on every CPU (slowly without AMX), so nothing here depends on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import imported, write_shapes

from spyglass.encoders import load_encoder
from spyglass.encoders.clip.openclip import OpenClipEncoder
from spyglass.encoders.fast.cache import MANIFEST
from spyglass.encoders.fast.export import export_clip
from spyglass.encoders.fast.image_export import probe_images
from spyglass.encoders.fast.traced import MODULE, TracedEncoder, traced_dir
from spyglass.settings import EncoderSettings


@pytest.fixture(scope="module")
def traced_cache(tiny_open_clip_dir, tmp_path_factory):
    """A cache holding the tiny model's text-tower export and its image tower traced in bf16; the full
    model. Shared by this module's tests; the one that breaks the trace runs last."""
    cache = tmp_path_factory.mktemp("traced-cache")
    settings = EncoderSettings(precision="bf16", cache_dir=cache, batch_size=4)
    full = load_encoder(str(tiny_open_clip_dir), settings)
    export_clip(full, cache, remember=[], images=False, progress=False)
    return settings, full


def test_the_traced_tower_gives_the_bf16_models_vectors(tiny_open_clip_dir, traced_cache):
    settings, full = traced_cache
    directory = traced_dir(settings.cache_dir, full.model_id, "bf16")
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["checks"]["bf16"]["min_cosine"] >= 0.999
    fast = load_encoder(str(tiny_open_clip_dir), settings, frozen=True)
    assert isinstance(fast, TracedEncoder) and fast.precision == "bf16"
    assert (fast.model_id, fast.dim, fast.image_size) == (full.model_id, full.dim, full.image_size)
    pictures = probe_images(seed=7)[:10]  # other probes than the export's check used
    for batch in (pictures[:1], pictures):  # one, and more than a batch
        assert (fast.encode_images(batch) * full.encode_images(batch)).sum(axis=1).min() > 0.999
    texts = ["a red circle", "two dogs on a beach"]
    assert (fast.encode_texts(texts) * full.encode_texts(texts)).sum(axis=1).min() > 0.99
    traced_at = (directory / MODULE).stat().st_mtime_ns
    export_clip(full, settings.cache_dir, remember=[], images=False, progress=False)
    assert (directory / MODULE).stat().st_mtime_ns == traced_at  # once per model and torch version


def test_only_torch_precisions_on_the_cpu_are_traced(tiny_open_clip_dir, traced_cache):
    """fp32 runs on onnxruntime; its full model traces nothing, and fp32 never finds the bf16 trace."""
    settings, full = traced_cache
    fp32 = settings.model_copy(update={"precision": "fp32", "fast_load": False})
    model = load_encoder(str(tiny_open_clip_dir), fp32)
    export_clip(model, settings.cache_dir, remember=[], images=False, progress=False)
    assert not traced_dir(settings.cache_dir, full.model_id, "fp32").exists()
    assert isinstance(load_encoder(str(tiny_open_clip_dir), fp32, frozen=True), OpenClipEncoder)
    off = settings.model_copy(update={"fast_load": False})
    assert isinstance(load_encoder(str(tiny_open_clip_dir), off, frozen=True), OpenClipEncoder)


def test_a_second_bf16_ingest_loads_torch_but_not_open_clip(tiny_open_clip_dir, tmp_path):
    env = {
        **os.environ,
        "SPYGLASS_MODEL": str(tiny_open_clip_dir),
        "SPYGLASS_DATA_DIR": str(tmp_path / "data"),
        "SPYGLASS_ENCODER__CACHE_DIR": str(tmp_path / "cache"),
        "SPYGLASS_PRECISION": "bf16",
    }

    def run(*arguments: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-X", "importtime", "-m", "spyglass", *arguments]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    first = run("index", str(write_shapes(tmp_path / "first", 4, seed=2)), "--json")
    assert json.loads(first.stdout)["added"] == 4 and "open_clip" in imported(first.stderr)
    assert list((tmp_path / "cache" / "traced-towers").glob("*/" + MANIFEST))
    second_folder = write_shapes(tmp_path / "second", 4, seed=5)
    second = run("index", str(second_folder), "--json")
    assert json.loads(second.stdout)["added"] == 4
    modules = imported(second.stderr)
    assert "torch" in modules and not modules & {"open_clip", "torchvision", "transformers"}
    # the traced tower's vectors sit in the model's space: a picture finds itself among both runs'
    picture = sorted(second_folder.glob("*.png"))[0]
    found = json.loads(run("search", "--image", str(picture), "--json", "-k", "3").stdout)["results"]
    assert found[0]["path"].endswith(picture.name) and found[0]["dense"] > 0.99
    assert np.isfinite([r["dense"] for r in found]).all()


def test_a_trace_that_does_not_load_leaves_the_full_model_in_use(tiny_open_clip_dir, traced_cache, caplog):
    settings, full = traced_cache
    (traced_dir(settings.cache_dir, full.model_id, "bf16") / MODULE).write_bytes(b"not a TorchScript file")
    with caplog.at_level(logging.WARNING):
        encoder = load_encoder(str(tiny_open_clip_dir), settings, frozen=True)
    assert isinstance(encoder, OpenClipEncoder) and "does not load" in caplog.text
