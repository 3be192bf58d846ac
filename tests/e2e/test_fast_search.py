"""A search from the shell answers fast: the exported text tower, and a running server found and used.

Figures are printed by ``benchmarks/cli.py``; these tests pin the behaviour that makes
them possible (the export itself: ``unit/encoders/test_text_tower.py``): a search with it never
imports torch, and ``spyglass search`` goes through ``spyglass serve`` when one runs
on the data directory, printing exactly what an in-process search prints.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import imported, write_shapes
from support.serve_process import env_for, spyglass, start_server

from spyglass import discovery


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Path:
    """A shapes collection indexed by the CLI, which exports the model as a user's first index does;
    in fp32, so that the full model (which has no int8) searches the same space."""
    root = tmp_path_factory.mktemp("fast")
    spyglass(root / "data", "index", str(write_shapes(root / "pics", 24, seed=21)), SPYGLASS_PRECISION="fp32")
    return root / "data"


def test_a_text_search_does_not_import_torch(indexed):
    """The cold path: the exported tower answers, torch and open_clip are never imported, results unchanged."""
    probe = (
        "import json, sys\n"
        "from spyglass import Engine\n"
        "engine = Engine()\n"
        "response = engine.search('a red circle', k=5)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'open_clip': 'open_clip' in sys.modules,\n"
        "                  'ids': [r.item_id for r in response.results],\n"
        "                  'dense': [r.dense for r in response.results]}))\n"
    )
    runs = {}
    for fast in ("true", "false"):
        exports = {
            "SPYGLASS_ENCODER__FAST_TEXT": fast,
            "SPYGLASS_ENCODER__FAST_LOAD": fast,
            "SPYGLASS_PRECISION": "fp32",
        }
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=env_for(indexed, **exports),
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs[fast] = json.loads(result.stdout)
    assert not runs["true"]["torch"] and not runs["true"]["open_clip"]
    assert runs["false"]["torch"]  # the probe can tell: the full model path does import it
    assert runs["true"]["ids"] == runs["false"]["ids"] and runs["true"]["ids"]
    assert np.allclose(runs["true"]["dense"], runs["false"]["dense"], atol=2e-3)


def thin(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """``python -X importtime -m spyglass``: stderr tells which modules the command imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "spyglass", *args],
        capture_output=True,
        text=True,
        env=env_for(data_dir, **extra),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_search_goes_through_a_running_server(indexed):
    query = ("search", "a red circle", "-k", "4", "-f", "kind=image")
    local_json = spyglass(indexed, *query, "--json").stdout
    local_text = spyglass(indexed, *query).stdout
    server = start_server(indexed)
    try:
        through = thin(indexed, *query, "--json")
        assert "typer" not in imported(through.stderr) and "numpy" not in imported(
            through.stderr
        )  # nothing heavy loaded
        assert through.stdout == local_json  # byte for byte what the in-process search prints
        assert thin(indexed, *query).stdout == local_text
        forced = thin(indexed, *query, "--json", "--local")
        assert "typer" in imported(forced.stderr) and forced.stdout == local_json
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert discovery.find(indexed) is None and not (indexed / discovery.FILE).exists()


def test_the_server_token_works_with_api_keys_and_a_dead_server_is_ignored(indexed):
    keys = {"SPYGLASS_API__API_KEYS": '["reader-key"]'}
    server = start_server(indexed, **keys)
    try:
        announced = discovery.find(indexed)
        assert (indexed / discovery.FILE).stat().st_mode & 0o077 == 0  # the token is the user's alone
        import httpx

        refused = httpx.post(f"{announced.url}/v1/search", json={"text": "a red circle"})
        assert refused.status_code == 401  # keys are still enforced for everyone else
        through = thin(indexed, "search", "a red circle", "--json", **keys)
        assert "typer" not in imported(through.stderr) and json.loads(through.stdout)["results"]
    finally:
        server.kill()  # no clean shutdown: the file stays behind, naming a dead process
        server.wait(timeout=60)
    assert (indexed / discovery.FILE).exists() and discovery.find(indexed) is None
    fallback = thin(indexed, "search", "a red circle", "--json")
    assert "typer" in imported(fallback.stderr) and json.loads(fallback.stdout)["results"]


def test_a_server_of_another_model_is_not_used(indexed):
    server = start_server(indexed)
    try:
        other = thin(indexed, "search", "a red circle", "--json", SPYGLASS_MODEL="builtin:shapes ")
        assert "typer" in imported(other.stderr)  # a different spec: searched in-process, not by that server
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def test_a_server_searching_with_the_exported_tower_is_ready(indexed):
    """Regression: ``/readyz`` waited for the full model, which a server that searches with the
    exported text tower never loads, so it answered 503 forever while search worked."""
    import urllib.request

    server = start_server(indexed)
    try:
        url = discovery.find(indexed).url
        with urllib.request.urlopen(f"{url}/readyz", timeout=30) as response:
            assert response.status == 200 and json.loads(response.read()) == {"ready": True}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
