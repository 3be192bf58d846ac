"""kill -9 a writer mid-batch; on reopen nothing committed is lost and nothing half-written is visible."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spyglass.store import Store

WRITER = Path(__file__).resolve().parents[2] / "support" / "crash_writer.py"
DIM = 16


def run_and_kill(data_dir: Path, kind: str, after: int, extra_delay: float) -> int:
    """Start the writer, wait for ``after`` commits, wait a little more, SIGKILL; returns the last commit seen."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(DIM), kind], stdout=subprocess.PIPE, text=True
    )
    committed = -1
    try:
        while committed < after:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"writer exited early with {process.wait()}")
            committed = int(line.split()[1])
        time.sleep(extra_delay)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    return committed


@pytest.mark.parametrize(
    "kind, delays",
    [("flat", (0.013, 0.05, 0.0)), ("hnsw", (0.021, 0.0)), ("ivf", (0.008,)), ("milvus", (0.013, 0.0))],
)
def test_kill_9_mid_batch_loses_nothing_committed(kind, delays, tmp_path):
    seen = -1
    for round_, delay in enumerate(delays):
        seen = run_and_kill(tmp_path, kind, after=seen + 6 + round_, extra_delay=delay)
        with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
            per_document = dict(
                db.execute(
                    "SELECT d.path, count(v.item_id) FROM documents d JOIN items i ON i.document_id = d.id "
                    "JOIN vectors v ON v.item_id = i.id GROUP BY d.id"
                ).fetchall()
            )
        # every printed commit is there, and every document is whole
        assert {f"doc-{n}" for n in range(seen + 1)} <= set(per_document)
        assert set(per_document.values()) == {100}

        store = Store(tmp_path, "crash-model", DIM, index=kind)
        assert store.index.ntotal == 100 * len(per_document)
        for n in range(min(len(per_document), DIM)):
            axis = np.eye(DIM, dtype=np.float32)[n]
            near = [h for h in store.search(axis, 100 * (len(per_document) // DIM + 2))[0] if h.score > 0.9]
            assert len(near) == 100 * len(range(n, len(per_document), DIM))
        store.close()
