"""Every model spec form the README documents, loaded through the path a real user's weights take.

The weights are random but sit where the libraries look for real ones (see
``real_layouts``); the CLI runs as a user runs it, offline, with ``HF_HOME`` pointing
at that cache. A loading bug on the default spec (like passing open_clip an argument
it builds itself) fails here before it can reach anyone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import imported, write_shapes
from support.serve_process import free_port

from spyglass import discovery

EXE = Path(sys.executable).with_name("spyglass")
TIMED = ("-X", "importtime", "-m", "spyglass")  # stderr lists every module the command imported

SPECS = {
    # spec -> (model_id the README promises, or None for a fingerprint with this prefix; dimension)
    "open_clip:ViT-B-32/laion2b_s34b_b79k": ("open_clip:ViT-B-32/laion2b_s34b_b79k", 512),
    "open_clip:ViT-B-32/openai": ("open_clip:ViT-B-32/openai", 512),
    "open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K": (
        "open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        512,
    ),
    "hf:openai/clip-vit-base-patch32": ("hf:openai/clip-vit-base-patch32", 512),
    "hf:google/siglip-base-patch16-224": (
        "hf:google/siglip-base-patch16-224",
        32,
    ),  # a tiny SigLIP in the real layout
    "LOCAL_DIR": ("open_clip:local/", 512),
    "open_clip:ViT-B-32/CHECKPOINT": ("open_clip:ViT-B-32/file-", 512),
}


def _spec(name: str, layout: dict) -> str:
    return name.replace("LOCAL_DIR", str(layout["local_dir"])).replace(
        "CHECKPOINT", str(layout["checkpoint"])
    )


def spyglass(
    layout: dict, spec: str, data_dir: Path, *args: str, python: tuple[str, ...] | None = None, **extra: str
) -> subprocess.CompletedProcess:
    """The CLI (or ``python *python`` when given) as a user runs it, against the real-layout cache.

    The exports (made on a model's first use) are left on for the default spec only: the others
    share their code and would each add a full-size export to the run.
    """
    command = [sys.executable, *python] if python else [str(EXE)]
    env = environment(layout, spec, data_dir, **extra)
    result = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def environment(layout: dict, spec: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """A user's environment, offline, with ``spec`` and the real-layout hub cache."""
    from spyglass.settings import DEFAULT_MODEL

    return {
        **os.environ,
        "HF_HOME": str(layout["hf_home"]),
        "HF_HUB_OFFLINE": "1",
        "SPYGLASS_MODEL": spec,
        "SPYGLASS_DATA_DIR": str(data_dir),
        "SPYGLASS_PRECISION": "fp32",
        "SPYGLASS_ENCODER__CACHE_DIR": str(layout["hf_home"].parent / "spyglass-cache"),
        "SPYGLASS_ENCODER__FAST_TEXT": str(spec == DEFAULT_MODEL).lower(),
        "SPYGLASS_ENCODER__FAST_LOAD": str(spec == DEFAULT_MODEL).lower(),
        "COLUMNS": "400",
        **extra,
    }


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    return write_shapes(
        tmp_path_factory.mktemp("small"), 4, seed=3, note="# Notes\n\nA red circle and a blue square."
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SPECS))
def test_spec_indexes_under_its_promised_id(name, real_layout_home, small_folder, tmp_path):
    """One process per spec: it loads the model from where the libraries look and embeds pictures and
    a note with it; ``status`` (no model loaded) then names the space and its size."""
    spec = _spec(name, real_layout_home)
    expected_id, dim = SPECS[name]
    report = json.loads(
        spyglass(real_layout_home, spec, tmp_path, "index", str(small_folder), "--json").stdout
    )
    assert report["errors"] == [] and report["added"] == 5 and report["items"] >= 5
    status = json.loads(spyglass(real_layout_home, spec, tmp_path, "status", "--json").stdout)
    model_id = status["model_id"]
    assert status["dim"] == dim and status["vectors_by_model"][model_id] >= 5
    assert model_id.startswith(expected_id) if expected_id.endswith(("/", "-")) else model_id == expected_id


@pytest.mark.slow
def test_default_spec_end_to_end_on_real_photos(real_layout_home, formats_dir, small_folder, tmp_path):
    """The default model, as shipped, over ../shared/data/formats: index, search, ask."""
    from spyglass.settings import DEFAULT_MODEL

    report = json.loads(
        spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, "index", str(formats_dir), "--json").stdout
    )
    assert report["added"] >= 20 and len(report["errors"]) <= 1, report["errors"]
    query = ("search", "a cat", "--json", "--all", "-k", "100")
    found = spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, *query, python=TIMED)
    assert "torch" not in imported(found.stderr)  # the exported text tower answered ...
    encode = spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, "encode", "-t", "x", python=TIMED)
    assert "torch" in imported(encode.stderr)  # ... where the full model would have imported it
    found = json.loads(found.stdout)
    assert len(found["results"]) >= 20
    full = spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, *query, SPYGLASS_ENCODER__FAST_TEXT="false")
    scores = {r["item_id"]: r["dense"] for r in found["results"]}
    full_scores = {r["item_id"]: r["dense"] for r in json.loads(full.stdout)["results"]}
    assert scores.keys() == full_scores.keys()
    assert all(abs(scores[i] - full_scores[i]) < 1e-3 for i in scores)  # same vectors, up to float error

    # The first index exported the model: the next ingest runs it without open_clip, to the same vectors.
    more = spyglass(
        real_layout_home, DEFAULT_MODEL, tmp_path, "index", str(small_folder), "--json", python=TIMED
    )
    assert json.loads(more.stdout)["added"] == 5
    assert not imported(more.stderr) & {"torch", "open_clip", "torchvision", "transformers"}
    by_image = ("search", "--image", str(next(small_folder.glob("*.png"))), "--json", "--all", "-k", "100")
    frozen = json.loads(spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, *by_image).stdout)["results"]
    full = spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, *by_image, SPYGLASS_ENCODER__FAST_LOAD="false")
    full_scores = {r["item_id"]: r["dense"] for r in json.loads(full.stdout)["results"]}
    assert len(frozen) >= 25 and {r["item_id"] for r in frozen} == full_scores.keys()
    assert all(abs(r["dense"] - full_scores[r["item_id"]]) < 1e-3 for r in frozen)

    status = json.loads(spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, "status", "--json").stdout)
    assert set(status["vectors_by_model"]) == {DEFAULT_MODEL}
    answer = json.loads(
        spyglass(real_layout_home, DEFAULT_MODEL, tmp_path, "ask", "what animals are there?", "--json").stdout
    )
    assert answer["answer"] and "citations" in answer

    # Served, it searches with the exported text tower and never loads the full model: still ready.
    server = subprocess.Popen(
        [str(EXE), "serve", "--port", str(free_port())],
        env=environment(real_layout_home, DEFAULT_MODEL, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while (announced := discovery.find(tmp_path)) is None:
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        with urllib.request.urlopen(f"{announced.url}/readyz", timeout=30) as ready:
            assert ready.status == 200 and json.loads(ready.read()) == {"ready": True}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def test_a_real_path_fixture_cannot_pass_by_accident(real_layout_home):
    """The cache really is where huggingface_hub looks: its own lookup finds the weights."""
    from huggingface_hub import try_to_load_from_cache
    from support.real_layouts import tag_location

    repo, filename = tag_location("ViT-B-32", "laion2b_s34b_b79k")
    assert (repo, filename) == ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors")
    found = try_to_load_from_cache(repo, filename, cache_dir=str(real_layout_home["hf_home"] / "hub"))
    assert isinstance(found, str) and Path(found).resolve().stat().st_size > 100_000_000
    assert shutil.which(str(EXE))
