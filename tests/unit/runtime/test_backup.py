"""``spyglass backup`` and ``restore`` (``spyglass/runtime/backup.py``): a copy taken while the
collection is being written and searched restores to a collection that searches the same.

Real components: the CLI in its own process beside an ingest and searches in this one, real
SQLite files, FAISS indexes rebuilt from the restored catalog.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from conftest import write_shapes
from support.live_server import LiveServer

from spyglass import Engine, Settings, discovery
from spyglass.api import create_app
from spyglass.retriever import RankingOptions

pytestmark = pytest.mark.slow

QUERIES = ("a red circle", "a blue square", "a green triangle", "notes about the garden")


def cli(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spyglass", *arguments],
        env={**os.environ, "SPYGLASS_DATA_DIR": str(data_dir), "SPYGLASS_MODEL": "builtin:shapes"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def engine(data_dir: Path, shapes_encoder) -> Engine:
    return Engine(Settings(data_dir=data_dir, model="builtin:shapes"), encoder=shapes_encoder)


def results(spyglass: Engine) -> list[list[tuple[str, float]]]:
    options = RankingOptions(relevance_floor=False)
    return [
        [
            (Path(r.path).name, round(r.score, 5))
            for r in spyglass.search(query, k=20, options=options).results
        ]
        for query in QUERIES
    ]


def test_a_backup_taken_during_an_ingest_restores_to_the_same_searches(tmp_path, shapes_encoder):
    first = write_shapes(tmp_path / "first", 24, seed=11, note="# Garden\n\nTomatoes and beans by the shed.")
    later = write_shapes(tmp_path / "later", 48, seed=12)
    data_dir = tmp_path / "data"
    with engine(data_dir, shapes_encoder) as live:
        live.index(first, progress=False)
        busy = threading.Thread(target=live.index, args=(later,), kwargs={"progress": False})
        busy.start()
        searched = [results(live) for _ in range(2)]  # searches go on beside the ingest ...
        copy = cli(data_dir, "backup", str(tmp_path / "backup"))  # ... and a backup from another process
        busy.join()
        assert copy.returncode == 0 and "backed up to" in copy.stdout, copy.stderr
        assert searched[0]
        expected = results(live)

    restored = tmp_path / "restored"
    done = cli(restored, "restore", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    with engine(restored, shapes_encoder) as spyglass:
        # The copy is one committed state: whatever part of ``later`` it holds, indexing the same
        # folders brings it to the live collection's state, item for item and score for score.
        spyglass.index(first, progress=False)
        spyglass.index(later, progress=False)
        assert results(spyglass) == expected
        assert spyglass.status()["errors"] == 0


def test_a_damaged_backup_replaces_nothing(tmp_path, shapes_encoder):
    data_dir = tmp_path / "data"
    with engine(data_dir, shapes_encoder) as live:
        live.index(write_shapes(tmp_path / "pictures", 6, seed=3), progress=False)
        expected = results(live)
    assert cli(data_dir, "backup", str(tmp_path / "backup")).returncode == 0
    catalog = tmp_path / "backup" / "catalog.sqlite3"
    content = bytearray(catalog.read_bytes())
    content[len(content) // 2 : len(content) // 2 + 4096] = bytes(4096)  # a zeroed page in the middle
    catalog.write_bytes(bytes(content))

    refused = cli(data_dir, "restore", str(tmp_path / "backup"))
    assert refused.returncode == 1 and "fails its checks, nothing was replaced" in refused.stderr
    with engine(data_dir, shapes_encoder) as spyglass:
        assert results(spyglass) == expected


def test_restore_refuses_while_a_server_uses_the_collection(tmp_path, shapes_encoder):
    data_dir = tmp_path / "data"
    with engine(data_dir, shapes_encoder) as live:
        live.index(write_shapes(tmp_path / "pictures", 4, seed=5), progress=False)
    assert cli(data_dir, "backup", str(tmp_path / "backup")).returncode == 0
    # this test's own process stands in for the server: alive, and announced as serving the folder
    discovery.publish(
        data_dir, discovery.Server("http://127.0.0.1:1", os.getpid(), "token", "builtin:shapes")
    )
    refused = cli(data_dir, "restore", str(tmp_path / "backup"))
    assert refused.returncode == 1 and "stop it before restoring" in refused.stderr


def test_a_named_collection_backs_up_and_restores_with_its_own_settings(tmp_path, shapes_encoder):
    data_dir = tmp_path / "data"
    assert cli(data_dir, "collections", "create", "work", "--labels", "circle,square").returncode == 0
    pictures = write_shapes(tmp_path / "pictures", 5, seed=6)
    assert cli(data_dir, "--collection", "work", "index", str(pictures)).returncode == 0
    assert cli(data_dir, "--collection", "work", "backup", str(tmp_path / "backup")).returncode == 0
    own = (data_dir / "collections" / "work" / "collection.json").read_text()
    assert cli(data_dir, "collections", "delete", "work", "--yes").returncode == 0
    assert cli(data_dir, "collections", "create", "work").returncode == 0  # a new, empty one of that name
    # a server announced for the data directory serves every collection in it
    discovery.publish(
        data_dir, discovery.Server("http://127.0.0.1:1", os.getpid(), "token", "builtin:shapes")
    )
    refused = cli(data_dir, "--collection", "work", "restore", str(tmp_path / "backup"))
    assert refused.returncode == 1 and "stop it before restoring" in refused.stderr
    discovery.withdraw(data_dir, discovery.find(data_dir))
    assert cli(data_dir, "--collection", "work", "restore", str(tmp_path / "backup")).returncode == 0
    assert (data_dir / "collections" / "work" / "collection.json").read_text() == own
    with Engine(Settings(data_dir=data_dir / "collections" / "work"), encoder=shapes_encoder) as restored:
        assert restored.status()["items"] == 5
    assert not (data_dir / "catalog.sqlite3").exists()  # the default collection was never touched


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path, shapes_encoder):
    data_dir = tmp_path / "data"
    with engine(data_dir, shapes_encoder) as live:
        live.index(write_shapes(tmp_path / "pictures", 2, seed=6), progress=False)
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "keep.txt").write_text("mine")
    refused = cli(data_dir, "backup", str(tmp_path / "occupied"))
    assert refused.returncode == 1 and "is not empty" in refused.stderr
    assert (tmp_path / "occupied" / "keep.txt").read_text() == "mine"


def test_admin_keys_back_up_over_http_into_the_backup_root_only(tmp_path, shapes_encoder):
    data_dir, root = tmp_path / "data", tmp_path / "backups"
    keys = {"api_keys": ["reader-key"], "admin_keys": ["admin-key"], "backup_root": root}
    settings = Settings(data_dir=data_dir, model="builtin:shapes", api=keys)
    with Engine(settings, encoder=shapes_encoder) as live, LiveServer(create_app(live)) as server:
        live.index(write_shapes(tmp_path / "pictures", 4, seed=8), progress=False)
        expected = results(live)

        def post(body: dict, key: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"}
            return httpx.post(f"{server.url}/v1/backup", json=body, headers=headers, timeout=120)

        assert post({"name": "nightly"}, "reader-key").status_code == 403
        assert post({"name": "../escape"}, "admin-key").status_code == 422  # a plain name, never a path
        made = post({"name": "nightly"}, "admin-key")
        assert made.status_code == 200 and made.json()["bytes"] > 0, made.text
        assert post({"name": "nightly"}, "admin-key").status_code == 409
    assert sorted(p.name for p in root.iterdir()) == ["nightly"] and not (tmp_path / "escape").exists()
    assert cli(tmp_path / "restored", "restore", str(root / "nightly")).returncode == 0
    with engine(tmp_path / "restored", shapes_encoder) as spyglass:
        assert results(spyglass) == expected
