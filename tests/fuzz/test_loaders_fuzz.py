"""Fuzzing every loader: mutated seed files must load or fail with a ``LoadError``, nothing else.

A loader's errors are what users read ("cannot open PDF (...)"); anything else escaping
one is a bug even though the pipeline would still contain it. Hypothesis mutates the
seeds in ``seeds/`` (one per format: JPEG, PNG, GIF, WebP, EXIF-rotated JPEG, PDF, text,
Markdown, HTML, MP4): flipped and inserted bytes, truncation, random tails. The minimal
failing input is saved to ``crashes/`` (as ``SEED-new.EXT``; rename it when committing the
fix) and replayed by every later run. ``make test`` runs a
short pass (profile ``ci``); ``make fuzz`` runs the long one (profile ``fuzz``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spyglass.indexer.loaders import LoadError, LoadOptions, load

HERE = Path(__file__).parent
SEEDS = sorted((HERE / "seeds").iterdir())
CRASHES = HERE / "crashes"
OPTIONS = LoadOptions(max_pixels=4_000_000, max_pages=20, max_text_bytes=1 << 20, max_seconds=30)

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "fuzz", max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@st.composite
def mutated(draw, seed: Path) -> bytes:
    data = bytearray(seed.read_bytes())
    for _ in range(draw(st.integers(0, 8))):
        where = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "repeat")))
        if action == "flip" and data:
            data[where] = draw(st.integers(0, 255))
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=64))
        elif action == "delete":
            del data[where : where + draw(st.integers(1, 64))]
        elif action == "truncate":
            del data[where:]
        elif action == "repeat":
            data[where:where] = data[where : where + 256] * draw(st.integers(1, 4))
    return bytes(data)


def load_without_escape(data: bytes, suffix: str, folder: Path, save_as: str | None = None) -> None:
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    try:
        assert load(path, OPTIONS).items, "loaded, but nothing in it is searchable"
    except LoadError:
        return
    except Exception:
        if save_as:  # shrinking calls this with ever smaller inputs: the last one written is the minimal one
            (CRASHES / f"{save_as}-new{suffix}").write_bytes(data)
        raise


@pytest.mark.parametrize("seed", SEEDS, ids=[seed.name for seed in SEEDS])
def test_mutated_seeds_load_or_fail_cleanly(seed, tmp_path):
    @given(data=mutated(seed))
    def fuzz(data: bytes) -> None:
        load_without_escape(data, seed.suffix, tmp_path, seed.stem)

    fuzz()


def test_seeds_themselves_load(tmp_path):
    for seed in SEEDS:
        assert load(seed, OPTIONS).items, seed.name


@pytest.mark.parametrize(
    "crash", sorted(p for p in CRASHES.iterdir() if not p.name.startswith(".")) or [None]
)
def test_saved_crashes_stay_fixed(crash, tmp_path):
    if crash is None:
        pytest.skip("no crashing input has been found and saved yet")
    load_without_escape(crash.read_bytes(), crash.suffix, tmp_path)
