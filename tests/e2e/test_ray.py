"""Distributed ingest on a real local Ray cluster (a head and one worker process on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from support.serve_process import EXE, env_for, free_port, spyglass

RAY = EXE.with_name("ray")
RAY_KEYS = ("HOME", "XDG_CACHE_HOME", "RAY_TMPDIR", "RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")
LIGHT = ["--num-cpus", "1", "--object-store-memory", str(300 * 2**20)]


@pytest.fixture(scope="module")
def ray_env() -> dict:
    """A home and a temp directory of the tests' own, authentication set explicitly: whatever earlier
    Ray runs left in ``~/.ray`` or ``/tmp/ray`` (a token, a dead cluster's address) plays no part.

    The temp directory is short: Ray puts its sockets below it, and a socket path has ~107 bytes.
    """
    root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    (root / "home").mkdir()
    yield {
        **os.environ,
        "HOME": str(root / "home"),
        # The models the suite already cached (builtin:shapes) stay where they are.
        "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
        "RAY_TMPDIR": str(root),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(ray_env, minilm_hf_home) -> str:
    """``ray start`` a head and a worker; their address. Stopped (with every Ray process) afterwards,
    also when the start fails halfway.

    The nodes find models where a real node would, in their own hub cache (here the real MiniLM's).
    """
    pytest.importorskip("ray.data")
    port = free_port()
    head = [str(RAY), "start", "--head", "--port", str(port), "--include-dashboard=false", *LIGHT]
    worker = [str(RAY), "start", "--address", f"127.0.0.1:{port}", *LIGHT]
    env = {**ray_env, "HF_HOME": str(minilm_hf_home), "HF_HUB_OFFLINE": "1"}
    try:
        for command in (head, worker):
            started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
            assert started.returncode == 0, started.stderr[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=ray_env, capture_output=True, timeout=120)


def index_on_ray(data_dir: Path, ray_env: dict, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """``spyglass`` as a user on this machine runs it, with the tests' Ray home and temp directory."""
    return spyglass(data_dir, *args, **{name: ray_env[name] for name in RAY_KEYS}, **extra)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """The formats sample and 60 Flickr8k photos, linked into one folder (read in place)."""
    folder = tmp_path_factory.mktemp("photos")
    for source in sorted(shared_path("data", "formats").iterdir()):
        (folder / source.name).symlink_to(source)
    flickr = folder / "flickr"
    flickr.mkdir()
    for source in sorted(shared_path("data", "flickr8k-1k", "images").iterdir())[:60]:
        (flickr / source.name).symlink_to(source)
    return folder


@pytest.fixture(scope="module")
def local_run(photos, tmp_path_factory) -> dict[tuple, np.ndarray | None]:
    """The photos indexed here, without Ray: what every Ray run must match."""
    data = tmp_path_factory.mktemp("local")
    spyglass(data, "index", str(photos))
    return catalog(data)


def catalog(data_dir: Path, model: str = "builtin:shapes/%") -> dict[tuple, np.ndarray | None]:
    """Every item by (path, kind, page, char start), with its vector of ``model`` (None: none)."""
    with sqlite3.connect(data_dir / "catalog.sqlite3") as db:
        paths = [row[0] for row in db.execute("SELECT path FROM documents")]
        assert len(paths) == len(set(paths)), "a document was written twice"
        rows = db.execute(
            "SELECT d.path, i.kind, i.page, i.char_start, v.dtype, v.data FROM items i "
            "JOIN documents d ON d.id = i.document_id "
            "LEFT JOIN vectors v ON v.item_id = i.id AND v.model_id LIKE :model",
            {"model": model},
        ).fetchall()
    items = {}
    for path, kind, page, start, dtype, data in rows:
        key = (path, kind, page, start)
        assert key not in items, f"{key} twice"
        items[key] = None if data is None else np.frombuffer(data, dtype=dtype).astype(np.float32)
    return items


def assert_same(ray_run: dict, local_run: dict) -> None:
    assert ray_run.keys() == local_run.keys()
    pairs = [(ray_run[k], local_run[k]) for k in local_run if local_run[k] is not None]
    assert pairs and all(a is not None for a, _ in pairs)
    cosines = [float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in pairs]
    assert min(cosines) >= 0.999


def test_ray_ingest_matches_a_local_one(cluster, ray_env, photos, local_run, tmp_path):
    out = index_on_ray(tmp_path / "ray", ray_env, "index", str(photos), "--executor", f"ray={cluster}").stdout
    assert "0 errors" in out
    assert len({key[0] for key in local_run}) >= 80
    assert_same(catalog(tmp_path / "ray"), local_run)
    again = index_on_ray(
        tmp_path / "ray", ray_env, "index", str(photos), "--executor", f"ray={cluster}"
    ).stdout
    assert " 0 added" in f" {again}" and "0 updated" in again  # incremental, planned on the driver


def test_a_killed_driver_loses_nothing_and_duplicates_nothing(cluster, ray_env, photos, local_run, tmp_path):
    """The driver is killed at its first commit, so most documents are still to write. A quiet machine
    once committed all of them (and went on to the OCR stage) between two looks: then the kill proves
    nothing, and the run is tried again afresh."""
    documents = len({key[0] for key in local_run})
    for attempt in range(3):
        data = tmp_path / f"ray-{attempt}"
        partial = _kill_at_first_commit(data, cluster, ray_env, photos)
        if partial < documents:
            break
    else:
        pytest.fail(f"all three drivers had written every document ({documents}) before they were killed")
    index_on_ray(data, ray_env, "index", str(photos), "--executor", f"ray={cluster}")
    assert _indexed(data) == documents > partial
    assert_same(catalog(data), local_run)


def _kill_at_first_commit(data: Path, cluster: str, ray_env: dict, photos: Path) -> int:
    """Documents indexed when a driver of ``spyglass index`` was killed (-9) at its first commit."""
    command = [str(EXE), "index", str(photos), "--executor", f"ray={cluster}"]
    driver = subprocess.Popen(
        command,
        env=env_for(data, **{k: ray_env[k] for k in RAY_KEYS}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not _indexed(data):
            time.sleep(0.02)
        assert _indexed(data), "the driver committed nothing in time"
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    return _indexed(data)


def _indexed(data: Path) -> int:
    try:
        with sqlite3.connect(data / "catalog.sqlite3", timeout=5) as db:
            return db.execute("SELECT count(*) FROM documents WHERE status = 'indexed'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_ocr_and_the_text_space_run_on_the_cluster_as_they_do_here(cluster, ray_env, minilm, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("attention_table.png", "product_c.png", "financial_report.pdf"):
        (folder / name).symlink_to(shared_path("data", "docs", name))
    ocr = {"SPYGLASS_OCR__ENABLED": "true"}
    out = index_on_ray(
        tmp_path / "ray", ray_env, "index", str(folder), "--executor", f"ray={cluster}", **ocr
    ).stdout
    assert "stage ocr:" in out and "stage embed:text:" in out and "waits" not in out
    spyglass(tmp_path / "local", "index", str(folder), **ocr)
    read = {name: _read_text(tmp_path / name) for name in ("ray", "local")}
    assert read["ray"] == read["local"]
    assert any("BLEU" in text for text in read["ray"].values())  # the table's text, read on a worker
    passages = {name: catalog(tmp_path / name, "text:%") for name in ("ray", "local")}
    assert_same(passages["ray"], passages["local"])  # passages and read text, embedded by MiniLM on a worker


def _read_text(data: Path) -> dict[tuple, str]:
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        rows = db.execute(
            "SELECT d.path, i.kind, i.page, i.ocr FROM items i JOIN documents d ON d.id = i.document_id "
            "WHERE i.ocr IS NOT NULL"
        ).fetchall()
    return {(Path(path).name, kind, page): text for path, kind, page, text in rows}


def test_without_an_address_ray_starts_its_own_whatever_earlier_runs_left(tmp_path):
    """A dead cluster's address in Ray's temp directory and a token in the home directory, as an
    earlier ``--executor ray`` and a crashed ``ray start`` leave them: a plain ``--executor ray``
    starts a local Ray of its own instead of waiting on the dead one."""
    pytest.importorskip("ray.data")
    root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    try:
        (root / "ray").mkdir()
        (root / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
        (root / "home" / ".ray").mkdir(parents=True)
        (root / "home" / ".ray" / "auth_token").write_text("a" * 32)
        folder = tmp_path / "pictures"
        folder.mkdir()
        for name in ("bee.jpg", "boats on a lake.png"):
            (folder / name).symlink_to(shared_path("data", "formats", name))
        env = env_for(
            tmp_path / "data",
            HOME=str(root / "home"),
            XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
            RAY_TMPDIR=str(root),
            RAY_USAGE_STATS_ENABLED="0",
        )
        env.pop("RAY_ADDRESS", None)
        env.pop("RAY_AUTH_MODE", None)
        run = subprocess.run(
            [str(EXE), "index", str(folder), "--executor", "ray"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "2 added" in run.stdout and "0 errors" in run.stdout
    finally:  # the driver's own Ray ends with it
        shutil.rmtree(root, ignore_errors=True)
