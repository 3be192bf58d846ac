"""A collection's image precision (``Models.kept_precision``): int8 vectors are a space of their own,
and a collection keeps the precision it was indexed in, whatever the setting says later.

Real components: ``builtin:shapes`` through its ONNX exports in the user cache, real SQLite catalogs.
"""

from __future__ import annotations

import pytest
from conftest import write_shapes

from spyglass.engine import Engine
from spyglass.settings import Settings
from spyglass.store import Store


def engine(data_dir, precision: str) -> Engine:
    return Engine(Settings(data_dir=data_dir, encoder={"model": "builtin:shapes", "precision": precision}))


def test_a_collection_keeps_the_precision_it_was_indexed_in(tmp_path):
    folder = write_shapes(tmp_path / "pictures", 8, seed=3)
    with engine(tmp_path / "int8", "int8") as first:
        if getattr(first.encoder, "precision", None) != "int8":
            pytest.skip(f"int8 did not pass its export check on this CPU: {first.encoder.manifest.refused}")
        assert first.index(folder, progress=False).added == 8
        space = first.store.model_id
    assert space.endswith("#int8")
    assert Store.recorded_precision(tmp_path / "int8", space.removesuffix("#int8")) == "int8"

    with engine(tmp_path / "int8", "fp32") as later:  # the setting changed; the collection did not
        status = later.status()  # read before anything is loaded
        assert status["model_id"] == space and status["items_needing_reindex"] == 0, status
        assert later.encoder.model_id == space and later.store.model_id == space
        assert later.search("a red circle", k=3).results
    with engine(tmp_path / "fp32", "fp32") as other:  # a new collection follows the setting
        assert other.index(folder, progress=False).added == 8
        assert other.store.model_id == space.removesuffix("#int8")
        assert Store.recorded_precision(tmp_path / "fp32", other.store.model_id) == "fp32"
    assert Store.recorded_precision(tmp_path / "new", other.store.model_id) is None


def test_models_use_switches_a_collections_precision_by_re_embedding(tmp_path):
    folder = write_shapes(tmp_path / "pictures", 6, seed=4)
    with engine(tmp_path / "data", "int8") as first:
        if getattr(first.encoder, "precision", None) != "int8":
            pytest.skip(f"int8 did not pass its export check on this CPU: {first.encoder.manifest.refused}")
        first.index(folder, progress=False)
        space = first.store.model_id
    with engine(tmp_path / "data", "fp32") as switching:
        report = switching.use_model("builtin:shapes")
        assert report.items == 6 and not report.failed, report
        assert switching.store.model_id == space.removesuffix("#int8")
        assert switching.search("a red circle", k=3).results
    assert Store.recorded_precision(tmp_path / "data", space.removesuffix("#int8")) == "fp32"
    with engine(tmp_path / "data", "int8") as later:  # kept now in fp32, whatever the setting says
        assert later.status()["model_id"] == space.removesuffix("#int8")
