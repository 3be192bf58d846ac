"""Missing weights offline: one clear sentence, quickly, whichever way offline is detected."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from spyglass.encoders import hub, load_encoder
from spyglass.errors import WeightsUnavailableError
from spyglass.settings import EncoderSettings


@pytest.mark.parametrize(
    "spec, names",
    [
        ("open_clip:ViT-B-32/laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
        ("open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
        ("hf:openai/clip-vit-base-patch32", "openai/clip-vit-base-patch32"),
    ],
)
def test_missing_weights_error_names_model_place_and_remedy(spec, names, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache, whatever this machine has
    with pytest.raises(WeightsUnavailableError) as caught:
        load_encoder(spec, EncoderSettings())
    message = str(caught.value)
    assert spec in message and names in message and "SPYGLASS_MODEL" in message
    assert "--model builtin:shapes" in message  # the way to try Spyglass offline right now
    assert "\n" not in message


def test_unreachable_hub_is_detected_without_the_env_flag(monkeypatch):
    """With HF_HUB_OFFLINE unset, a probe to a closed local port must answer 'offline' at once."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    hub._reachable.cache_clear()
    started = time.monotonic()
    assert hub.is_offline()
    assert time.monotonic() - started < hub.PROBE_TIMEOUT_S + 1  # bounded by the probe, not a DNS hang
    hub._reachable.cache_clear()


def test_cli_reports_missing_weights_in_one_line(tmp_path):
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "spyglass", "--data-dir", str(tmp_path), "encode", "--text", "hi"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: Weights for model 'open_clip:ViT-B-32/laion2b_s34b_b79k'"
    )
    assert "Traceback" not in result.stderr
