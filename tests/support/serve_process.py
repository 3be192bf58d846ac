"""The ``spyglass`` command and ``spyglass serve`` as real processes, as a user runs them (builtin:shapes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spyglass import discovery

EXE = Path(sys.executable).with_name("spyglass")


def env_for(data_dir: Path, **extra: str) -> dict:
    return {
        **os.environ,
        "SPYGLASS_DATA_DIR": str(data_dir),
        "SPYGLASS_MODEL": "builtin:shapes",
        "COLUMNS": "400",
        **extra,
    }


def spyglass(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env=env_for(data_dir, **extra), timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path, **extra: str) -> subprocess.Popen:
    """``spyglass serve`` on a free port, returned once it announced itself (it can answer)."""
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe would block the server
    server = subprocess.Popen(
        [str(EXE), "serve", "--port", str(free_port())],
        env=env_for(data_dir, **extra),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 120
    while discovery.find(data_dir) is None:
        if server.poll() is not None:
            log.seek(0)
            raise AssertionError(log.read().decode(errors="replace")[-3000:])
        assert time.monotonic() < deadline, "serve never announced itself"
        time.sleep(0.1)
    return server
