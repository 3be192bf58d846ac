"""The ingest pipeline (``spyglass.indexer.pipeline``): real files, the real loaders and the trained
``builtin:shapes`` model; ``write`` is the pipeline's own callback, here one that records."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
from conftest import write_shapes

from spyglass.indexer.loaders import LoadOptions, load
from spyglass.indexer.pipeline import run_pipeline


def load_job(path, digest):
    return load(path, replace(LoadOptions(), digest=digest))


@pytest.fixture
def pictures(tmp_path):
    return sorted(write_shapes(tmp_path / "shapes", 12, seed=4).glob("*.png"))


def test_a_group_is_written_while_the_next_is_embedded_in_order(pictures, shapes_encoder, monkeypatch):
    monkeypatch.setattr(shapes_encoder, "batch_size", 4)  # 12 pictures: three groups
    embedding, writes = [], []
    encode = shapes_encoder.encode_preprocessed

    def recording_encode(pixels):
        embedding.append(time.monotonic())
        return encode(pixels)

    def write(group):
        started = time.monotonic()
        time.sleep(0.5)  # a slow transaction
        writes.append((started, time.monotonic(), [o.job for o in group], threading.current_thread().name))

    monkeypatch.setattr(shapes_encoder, "encode_preprocessed", recording_encode)
    run_pipeline(pictures, load_job, shapes_encoder, write)
    assert [job for *_, jobs, _ in writes for job in jobs] == pictures  # every file once, in order
    assert all(name.startswith("spyglass-write") for *_, name in writes)
    first_write_started, first_write_ended = writes[0][:2]
    assert any(first_write_started < t < first_write_ended for t in embedding)  # overlapped
    assert all(a[1] <= b[0] for a, b in pairwise(writes))  # one transaction at a time


def test_a_failed_write_stops_the_run_with_its_error(pictures, shapes_encoder, monkeypatch):
    monkeypatch.setattr(shapes_encoder, "batch_size", 4)
    written = []

    def write(group):
        if written:
            raise RuntimeError("disk full")
        written.append([o.vectors for o in group])

    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline(pictures, load_job, shapes_encoder, write)
    assert len(written) == 1 and all(np.isfinite(v).all() for v in written[0])
