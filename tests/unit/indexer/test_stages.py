"""Item stages: a new or upgraded stage catches up on existing items once, and resumes after a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import toy_stages

from spyglass.engine import Engine
from spyglass.settings import Settings

SUPPORT = Path(__file__).resolve().parents[2] / "support"  # the runner script imports toy_stages from here
WordCount = toy_stages.WordCount


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(6):
        paragraphs = [f"Note {n} paragraph {p}: " + " ".join(["word"] * (5 + n + p)) for p in range(3)]
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\n" + "\n\n".join(paragraphs))
    return folder


def chunks(data_dir: Path) -> dict[int, str]:
    with sqlite3.connect(data_dir / "catalog.sqlite3") as db:
        return dict(db.execute("SELECT id, text FROM items WHERE kind = 'chunk'").fetchall())


def stage_rows(data_dir: Path) -> list[tuple]:
    with sqlite3.connect(data_dir / "catalog.sqlite3") as db:
        return db.execute("SELECT item_id, version FROM stage_runs WHERE stage = 'words'").fetchall()


def test_a_new_stage_runs_once_on_existing_items_then_again_on_a_new_version(
    notes, tmp_path, shapes_encoder, monkeypatch
):
    data = tmp_path / "data"
    with Engine(Settings(data_dir=data), encoder=shapes_encoder) as engine:
        engine.index(notes, progress=False)
        assert engine.status()["stages"] == {}
    existing = chunks(data)
    assert len(existing) >= 6

    def no_embedding(*args, **kwargs):
        raise AssertionError("a stage run must not re-embed current items")

    monkeypatch.setattr(shapes_encoder, "encode_pixels", no_embedding)
    monkeypatch.setattr(shapes_encoder, "encode_texts", no_embedding)
    monkeypatch.setattr(WordCount, "calls", [])
    with Engine(Settings(data_dir=data, ingest={"stages": ["words"]}), encoder=shapes_encoder) as engine:
        assert engine.status()["stages"] == {"words": {"version": 1, "pending": len(existing)}}
        report = engine.index(notes, progress=False)
        assert (report.added, report.unchanged, report.stages) == (0, 6, {"words": len(existing)})
        assert sorted(WordCount.calls) == sorted(existing)  # each existing chunk exactly once
        outputs = engine.store.stage_outputs("words", list(existing))
        assert outputs == {i: {"words": len(text.split())} for i, text in existing.items()}
        assert engine.status()["stages"]["words"]["pending"] == 0

        WordCount.calls.clear()
        assert engine.index(notes, progress=False).stages == {"words": 0} and WordCount.calls == []

    monkeypatch.setattr(WordCount, "version", 2)
    with Engine(Settings(data_dir=data, ingest={"stages": ["words"]}), encoder=shapes_encoder) as engine:
        assert engine.index(notes, progress=False).stages == {"words": len(existing)}
    assert sorted(stage_rows(data)) == [(i, 2) for i in sorted(existing)]


def test_stage_outputs_follow_edits_and_copies(notes, tmp_path, shapes_encoder, monkeypatch):
    """An edited file's new chunks are processed; an identical copy inherits outputs without a run."""
    data = tmp_path / "data"
    monkeypatch.setattr(shapes_encoder, "batch_size", 64)
    with Engine(Settings(data_dir=data, ingest={"stages": ["words"]}), encoder=shapes_encoder) as engine:
        engine.index(notes, progress=False)
        (notes / "note-0.md").write_text("# Edited\n\nNow only three words.")
        (notes / "copy-of-1.md").write_bytes((notes / "note-1.md").read_bytes())
        WordCount.calls.clear()
        report = engine.index(notes, progress=False)
        assert report.updated == 1 and report.copied == 1
        assert len(WordCount.calls) == report.stages["words"] >= 1  # only the edited file's new chunks
        assert engine.status()["stages"]["words"]["pending"] == 0
    assert {item for item, _ in stage_rows(data)} == set(chunks(data))


def test_a_killed_stage_run_resumes_where_it_stopped(notes, tmp_path, shapes_encoder):
    data = tmp_path / "data"
    with Engine(Settings(data_dir=data), encoder=shapes_encoder) as engine:
        engine.index(notes, progress=False)
    total = len(chunks(data))
    runner = [
        sys.executable,
        str(SUPPORT / "stage_runner.py"),
        str(data),
        shapes_encoder.model_id,
        str(shapes_encoder.dim),
    ]
    env = {**os.environ, "TOY_STAGE_DELAY": "0.3", "PYTHONPATH": str(SUPPORT)}
    process = subprocess.Popen(runner, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(stage_rows(data)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done = len(stage_rows(data))
    assert 4 <= done < total, "the kill must land mid-run"
    resumed = subprocess.run(
        runner, env={**env, "TOY_STAGE_DELAY": "0"}, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert int(resumed.stdout.strip()) == total - done  # nothing committed is redone
    assert sorted(item for item, _ in stage_rows(data)) == sorted(chunks(data))
