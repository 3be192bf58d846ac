"""kill -9 in the middle of `spyglass index`, run it again: everything indexed once, nothing lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from spyglass.encoders.clip import shapes
from spyglass.indexer import Indexer
from spyglass.store import Store


def count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_kill_9_mid_ingest_then_rerun(data_dir, shapes_encoder, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n, sample in enumerate(shapes.generate(160, seed=4)):
        sample.image.resize((256, 256)).save(folder / f"{n:03d}.png")
    db = data_dir / "catalog.sqlite3"
    script = Path(sys.executable).with_name("spyglass")
    env = {
        **os.environ,
        "SPYGLASS_DATA_DIR": str(data_dir),
        "SPYGLASS_MODEL": "builtin:shapes",
        "SPYGLASS_BATCH_SIZE": "8",
        # the rerun below embeds with the torch model's fp32 vectors; ``auto`` can mean int8, its
        # own space (CPUs without AMX), and then every file would rightly count as updated
        "SPYGLASS_PRECISION": "fp32",
    }
    process = subprocess.Popen(
        [str(script), "index", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    sql_docs = f"SELECT count(*) FROM documents WHERE path LIKE '{folder}%' AND status = 'indexed'"
    deadline = time.monotonic() + 120
    while count(db, sql_docs) < 16 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = count(db, sql_docs)
    assert 0 < partial < 160, "the kill should land mid-ingest"

    with Store(data_dir, shapes_encoder.model_id, shapes_encoder.dim) as store:
        report = Indexer(store, shapes_encoder).index(folder, progress=False)
        assert report.unchanged == partial and report.added == 160 - partial and not report.errors
        assert count(db, f"SELECT count(DISTINCT path) FROM documents WHERE path LIKE '{folder}%'") == 160
        assert count(db, f"SELECT count(*) FROM documents WHERE path LIKE '{folder}%'") == 160
        per_doc = count(db, "SELECT max(n) FROM (SELECT count(*) AS n FROM items GROUP BY document_id)")
        assert per_doc == 1
        vectors = count(
            db,
            f"SELECT count(*) FROM vectors v JOIN items i ON i.id = v.item_id JOIN documents d "
            f"ON d.id = i.document_id WHERE d.path LIKE '{folder}%'",
        )
        assert vectors == 160
        assert store.index.ntotal == count(db, "SELECT count(*) FROM vectors")
