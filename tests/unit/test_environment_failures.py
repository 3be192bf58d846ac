"""A read-only data directory still searches; a full disk is one line of error and leaves no debris.

Both need a real mount (a read-only bind mount, a tiny tmpfs): the tests skip with the
reason where this process may not mount (not root, or no mount namespace permission).
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import write_shapes

EXE = Path(sys.executable).with_name("spyglass")


def spyglass(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SPYGLASS_DATA_DIR": str(data_dir),
        "SPYGLASS_MODEL": "builtin:shapes",
        "COLUMNS": "400",
    }
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=300)


@contextmanager
def mounted(*args: str):
    target = Path(args[-1])
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip() or 'mount failed'})")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_read_only_data_directory_searches_and_refuses_changes_in_one_line(tmp_path, shapes_encoder):
    """Regression: with a read-only data dir even `spyglass search` failed (WAL switch and migrations on open)."""
    folder = write_shapes(tmp_path / "pics", 8, seed=5, note="# Notes\n\nA red circle.")
    writable = tmp_path / "rw"
    assert spyglass(writable / "data", "index", str(folder)).returncode == 0
    (tmp_path / "ro").mkdir()
    with mounted("--bind", "-o", "ro", str(writable), str(tmp_path / "ro")) as ro:
        if os.access(ro, os.W_OK):
            pytest.skip("the bind mount did not become read-only")
        before = sorted(os.listdir(ro / "data"))
        found = spyglass(ro / "data", "search", "a red circle", "--json")
        assert found.returncode == 0, found.stderr[-2000:]
        assert '"results"' in found.stdout and "red-circle" in found.stdout
        status = spyglass(ro / "data", "status", "--json")
        assert status.returncode == 0 and '"items": ' in status.stdout
        refused = spyglass(ro / "data", "index", str(folder))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"error: The data directory {ro / 'data'} is read-only; searching works, changes do not."
        ]
        assert sorted(os.listdir(ro / "data")) == before


def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tmp_path, shapes_encoder):
    """Regression: a full disk printed a 300-500 line traceback and left an empty *.faiss.tmp behind."""
    folder = tmp_path / "big"
    folder.mkdir()
    for n in range(40):  # distinct text files: each adds rows until the small disk is full
        (folder / f"note-{n:02d}.txt").write_text(
            f"note {n} " + " ".join(f"word{n}x{i}" for i in range(4000))
        )
    (tmp_path / "small").mkdir()
    with mounted("-t", "tmpfs", "-o", "size=600k", "tmpfs", str(tmp_path / "small")) as small:
        result = spyglass(small / "data", "index", str(folder))
        assert result.returncode == 1, result.stdout[-1000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
        assert "full" in lines[0] or "No space" in lines[0]
        leftovers = [p.name for p in small.rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == []
