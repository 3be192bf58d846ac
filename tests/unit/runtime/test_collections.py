"""Named collections (spyglass/runtime/collections.py, spyglass/cli/collections.py): their folders and
settings, models shared between them, and the CLI's ``--collection`` next to the default collection."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import write_shapes
from support.serve_process import EXE, env_for, spyglass

from spyglass.errors import SpyglassError
from spyglass.runtime.collections import (
    CollectionConfig,
    CollectionNotFound,
    Collections,
    create,
    delete,
    names,
    settings_for,
)
from spyglass.settings import Settings


def test_a_collection_has_its_own_folder_and_choices_over_the_global_settings(tmp_path):
    settings = Settings(
        data_dir=tmp_path, model="builtin:shapes", index={"kind": "milvus"}, ocr={"enabled": True}
    )
    create(settings, "work", CollectionConfig(model="hf:org/other", ocr=False, labels=["receipt"]))
    create(settings, "family")
    assert names(settings) == ["default", "family", "work"]
    work = settings_for(settings, "work")
    assert work.data_dir == tmp_path / "collections" / "work"
    assert (work.encoder.model, work.ocr.enabled, work.labels.vocabulary) == (
        "hf:org/other",
        False,
        ["receipt"],
    )
    assert work.index.options["prefix"] == "work"  # its Milvus collections are named after it
    family = settings_for(settings, "family")
    assert family.encoder == settings.encoder and family.ocr == settings.ocr  # the global settings
    assert family.api.allowed_roots == []  # never another collection's roots, nor the default's
    assert settings_for(settings, "default") is settings
    with pytest.raises(SpyglassError, match="already exists"):
        create(settings, "work")
    for bad in ("Work", "../x", "a b", "", "x" * 64):
        with pytest.raises(SpyglassError, match="not a collection name"):
            create(settings, bad)
    delete(settings, "work")
    assert names(settings) == ["default", "family"] and not (tmp_path / "collections" / "work").exists()
    with pytest.raises(CollectionNotFound):
        settings_for(settings, "work")
    with pytest.raises(SpyglassError, match="cannot be deleted"):
        delete(settings, "default")


def test_collections_on_one_model_share_it_and_a_different_spec_does_not(
    tmp_path, shapes_encoder, tiny_open_clip_dir
):
    settings = Settings(data_dir=tmp_path, model="builtin:shapes", text={"model": ""})
    create(settings, "family")
    create(settings, "work")
    create(settings, "lab", CollectionConfig(model=str(tiny_open_clip_dir), ocr=False))
    hosted = Collections(settings)
    try:
        family, work, lab = (hosted.engine(name) for name in ("family", "work", "lab"))
        assert family.state.models is work.state.models  # one copy of the weights
        assert family.encoder is work.encoder
        assert lab.state.models is not family.state.models and lab.model_spec() == str(tiny_open_clip_dir)
        assert hosted.engine("family") is family
        folder = write_shapes(tmp_path / "files", 6, seed=3)
        family.index(folder, progress=False)
        assert work.status()["items"] == 0 and family.status()["items"] == 6  # catalogs of their own
        hosted.delete("work")
        assert hosted.names() == ["default", "family", "lab"]
    finally:
        hosted.close()


def test_on_milvus_a_collections_indexes_are_named_after_it(tmp_path, shapes_encoder):
    settings = Settings(
        data_dir=tmp_path, model="builtin:shapes", text={"model": ""}, index={"kind": "milvus"}
    )
    create(settings, "work-2")
    hosted = Collections(settings)
    try:
        hosted.engine("work-2").index(write_shapes(tmp_path / "files", 3, seed=1), progress=False)
        assert hosted.engine("work-2").search("a red circle").results
    finally:
        hosted.close()
    (saved,) = (tmp_path / "collections" / "work-2" / "index").glob("*.milvus.json")
    assert json.loads(saved.read_text())["collection"].startswith("spyglass_work_2_")


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env=env_for(data_dir, **env), timeout=300
    )


def test_cli_indexes_and_searches_a_named_collection_beside_the_default(
    tmp_path, shapes_encoder, tiny_open_clip_dir
):
    data = tmp_path / "data"
    home = write_shapes(tmp_path / "home", 5, seed=1)
    office = write_shapes(tmp_path / "office", 7, seed=2)
    spyglass(data, "collections", "create", "work", "--model", str(tiny_open_clip_dir), "--no-ocr")
    spyglass(data, "index", str(home))
    spyglass(data, "--collection", "work", "index", str(office))

    def hits(*flags: str, **env: str) -> set[Path]:
        found = json.loads(
            spyglass(data, *flags, "search", "a red circle", "-k", "20", "--all", "--json", **env).stdout
        )
        return {Path(hit["path"]).parent for hit in found["results"]}

    assert hits() == {home}
    assert hits("--collection", "work") == {office}
    assert hits(SPYGLASS_COLLECTION="work") == {office}
    listed = {row["name"]: row for row in json.loads(spyglass(data, "collections", "--json").stdout)}
    assert (listed["default"]["items"], listed["work"]["items"]) == (5, 7)
    assert listed["default"]["model"] == "builtin:shapes" and listed["work"]["model"] == str(
        tiny_open_clip_dir
    )
    work_status = json.loads(spyglass(data, "--collection", "work", "status", "--json").stdout)
    default_status = json.loads(spyglass(data, "status", "--json").stdout)
    assert work_status["models"]["configured"] == str(tiny_open_clip_dir)  # its own model versions
    assert default_status["models"]["configured"] == "builtin:shapes"
    assert (
        default_status["model_id"].startswith("builtin:shapes")
        and work_status["model_id"] != default_status["model_id"]
    )
    assert not work_status["reindex_needed"] and not default_status["reindex_needed"]

    spyglass(data, "--collection", "work", "models", "use", "builtin:shapes")  # switching is per collection
    switched = json.loads(spyglass(data, "--collection", "work", "status", "--json").stdout)["models"]
    assert switched["active"]["spec"] == "builtin:shapes" and switched["previous"]["spec"] == str(
        tiny_open_clip_dir
    )
    assert json.loads(spyglass(data, "status", "--json").stdout)["models"]["previous"] is None
    assert hits("--collection", "work") == {office}

    missing = run(data, "--collection", "nope", "search", "x")
    assert missing.returncode == 1 and "no collection named 'nope'" in missing.stderr
    refused = run(data, "collections", "delete", "work")  # asks first; no answer on stdin
    assert refused.returncode != 0 and (data / "collections" / "work").is_dir()
    spyglass(data, "collections", "delete", "work", "--yes")
    assert not (data / "collections" / "work").exists() and hits() == {home}
    assert os.listdir(data / "collections") == []
