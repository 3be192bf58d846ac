"""Building the package, as ``pip install`` does: no warnings about the project's own metadata."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_without_warnings_and_carries_the_web_page(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    # pip's own notes about this machine's index configuration are not the project's
    output = [line for line in (build.stdout + build.stderr).splitlines() if "Location 'file:" not in line]
    assert not [line for line in output if "warning" in line.lower()], "\n".join(output)
    (wheel,) = tmp_path.glob("spyglass-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"spyglass/api/web/index.html", "spyglass/api/web/favicon.svg"} <= set(names)
