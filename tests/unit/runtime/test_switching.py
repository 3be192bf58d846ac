"""Model versions: switching re-embeds from the files while searches go on, the swap is atomic,
an interrupted switch resumes, rollback is instant, and the API does it in the background."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import shared_path, write_shapes
from support.live_server import LiveServer, wait
from support.serve_process import spyglass

from spyglass.encoders import load_encoder
from spyglass.engine import Engine
from spyglass.filters import Filters
from spyglass.settings import EncoderSettings, Settings
from spyglass.training.tune import TuneOptions

QUERIES = ("a red circle", "a blue square", "a green cross")


@pytest.fixture(scope="module")
def tuned_model(tmp_path_factory, shapes_encoder) -> Path:
    """A second version of the builtin model (tuned on its own shapes): other weights, same kind."""
    root = tmp_path_factory.mktemp("version")
    folder = write_shapes(root / "pairs", 48, seed=21)
    with Engine(Settings(data_dir=root / "data", model="builtin:shapes")) as engine:
        engine.index(folder, progress=False)
        options = TuneOptions(mode="projection", epochs=3, lr=0.01, blend=1.0)
        return engine.tune(None, options, output=root / "tuned").output


@pytest.fixture
def collection(tmp_path) -> Path:
    folder = write_shapes(tmp_path / "files", 60, seed=5)
    (folder / "report.pdf").symlink_to(shared_path("data", "docs", "financial_report.pdf"))
    return folder


def _settings(data: Path) -> Settings:
    return Settings(data_dir=data, model="builtin:shapes", precision="fp32")


def _ranking(engine: Engine, folder: Path) -> list[list[tuple[str, float]]]:
    within = Filters(path_prefix=str(folder))
    return [[(h.path, round(h.score, 5)) for h in engine.search(q, within, k=8).results] for q in QUERIES]


def test_switch_keeps_searches_answering_then_swaps_and_rolls_back(tmp_path, collection, tuned_model):
    data = tmp_path / "data"
    with Engine(_settings(data)) as engine:
        engine.index(collection, progress=False)
        old_id = engine.store.model_id
        before = _ranking(engine, collection)
        embedded = engine.status()["vectors_by_model"][old_id]

        # Another process's view: an engine of its own, searching all the time.
        searcher = Engine(_settings(data))
        errors: list[str] = []
        seen: list[str] = []
        during = threading.Event()
        stop = threading.Event()

        def search() -> None:
            while not stop.is_set():
                try:
                    searcher.search("a red circle", k=3)
                    seen.append(searcher.store.model_id)
                except Exception as exc:  # noqa: BLE001 - any error at all fails the test
                    errors.append(repr(exc))

        def slow_group() -> None:  # each committed group waits, so searches happen mid-switch
            during.set()
            time.sleep(0.2)

        thread = threading.Thread(target=search)
        thread.start()
        report = engine.use_model(str(tuned_model), on_group=slow_group)
        time.sleep(1.0)  # the searcher looks for a switch every half second
        stop.set()
        thread.join()
        searcher.close()

        new_id = engine.store.model_id
        assert engine.ready  # the model the switch re-embedded with answers queries at once
        assert during.is_set() and not errors
        assert new_id != old_id and seen[0] == old_id and seen[-1] == new_id
        assert report.documents == 61 and report.items == embedded and not report.failed
        counts = engine.status()["vectors_by_model"]
        assert counts[new_id] == counts[old_id] == embedded  # every item, the old vectors kept
        versions = engine.status()["models"]
        assert versions["active"]["model_id"] == new_id and versions["previous"]["model_id"] == old_id
        assert versions["switch"] is None
        assert _ranking(engine, collection) != before

        more = write_shapes(tmp_path / "more", 6, seed=30)  # indexed with the new model only
        engine.index(more, progress=False)
        rolled = engine.rollback_model()
        assert engine.store.model_id == old_id and rolled.items == 6
        assert _ranking(engine, collection) == before

    with Engine(_settings(data)) as reopened:  # the record, not the process, decides the model
        assert reopened.store.model_id == old_id


def test_vectors_come_from_the_files_not_the_thumbnails(tmp_path, collection, tuned_model):
    """A switched collection holds the vectors a fresh index with the new model would make:
    photos decoded from their files, PDF pages rendered and figures cropped again."""
    with Engine(_settings(tmp_path / "switched")) as engine:
        engine.index(collection, progress=False)
        engine.use_model(str(tuned_model))
        switched = _vectors_by_place(engine)
    fresh_settings = Settings(data_dir=tmp_path / "fresh", model=str(tuned_model), precision="fp32")
    with Engine(fresh_settings) as engine:
        engine.index(collection, progress=False)
        fresh = _vectors_by_place(engine)
    assert switched.keys() == fresh.keys()
    assert {key[1] for key in fresh} >= {"image", "page", "figure", "chunk"}
    cosines = [float(switched[key] @ fresh[key]) for key in fresh]
    assert min(cosines) > 0.999


def _vectors_by_place(engine: Engine) -> dict[tuple, np.ndarray]:
    rows = engine.store.items(range(1, 5000))  # every item (ids count up from 1)
    found, matrix = engine.store.vectors(sorted(rows))
    return {
        (Path(rows[i]["path"]).name, rows[i]["kind"], rows[i]["page"], rows[i]["char_start"]): v
        for i, v in zip(found.tolist(), matrix)
    }


def test_an_interrupted_switch_resumes_and_shows_progress(tmp_path, collection, tuned_model):
    data = tmp_path / "data"
    with Engine(_settings(data)) as engine:
        engine.index(collection, progress=False)
        old_id = engine.store.model_id
        groups = []

        def crash() -> None:
            groups.append(1)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            engine.use_model(str(tuned_model), on_group=crash)
        assert engine.store.model_id == old_id  # still searching with the old model
        switch = engine.status()["models"]["switch"]
        assert 0 < switch["embedded"] < switch["items"]
        assert switch["model_id"] == load_encoder(str(tuned_model), EncoderSettings()).model_id

        report = engine.use_model(str(tuned_model))
        assert 0 < report.items < switch["items"]  # only what the first run had not done
        assert engine.status()["models"]["switch"] is None
        assert engine.store.model_id == switch["model_id"]

        dropped = engine.prune_models()
        assert list(dropped) == [old_id]
        assert old_id not in engine.status()["vectors_by_model"]
        with pytest.raises(Exception, match="no earlier model version"):
            engine.rollback_model()


def test_switch_and_rollback_through_the_api(tmp_path, collection, tuned_model):
    from spyglass.api.app import create_app

    settings = Settings(
        data_dir=tmp_path / "data",
        model="builtin:shapes",
        precision="fp32",
        api_keys=["reader-key"],
        admin_keys=["admin-key"],
    )
    with Engine(settings) as engine:
        engine.index(collection, progress=False)
        old_id = engine.store.model_id
        with LiveServer(create_app(engine)) as live:
            reader = {"Authorization": "Bearer reader-key"}
            admin = {"Authorization": "Bearer admin-key"}
            url = f"{live.url}/v1/models"
            assert httpx.post(url, json={"spec": str(tuned_model)}, headers=reader).status_code == 403
            assert httpx.post(url, json={"spec": "/no/such/model"}, headers=admin).status_code == 422
            job = httpx.post(url, json={"spec": str(tuned_model)}, headers=admin).json()
            state = wait(httpx.Client(base_url=live.url), job["job_id"], admin)
            assert state["state"] == "done" and state["report"]["items"] > 0
            versions = httpx.get(url, headers=reader).json()
            assert versions["active"]["spec"].endswith(str(tuned_model))
            stats = httpx.get(f"{live.url}/v1/stats", headers=reader).json()
            assert stats["model_id"] == versions["active"]["model_id"] != old_id
            hits = httpx.post(f"{live.url}/v1/search", json={"text": "a red circle"}, headers=reader).json()
            assert hits["results"]

            job = httpx.post(f"{url}/rollback", headers=admin).json()
            assert wait(httpx.Client(base_url=live.url), job["job_id"], admin)["state"] == "done"
            assert httpx.get(f"{live.url}/v1/stats", headers=reader).json()["model_id"] == old_id


def test_models_commands(tmp_path, tuned_model):
    folder = write_shapes(tmp_path / "files", 12, seed=6)
    data = tmp_path / "data"
    spyglass(data, "index", str(folder))
    out = spyglass(data, "models", "use", str(tuned_model)).stdout
    assert "now searching with open_clip:local/" in out and "12 items of 12 files re-embedded" in out
    status = spyglass(data, "status").stdout
    assert f"active    open_clip:{tuned_model}" in status and "previous  builtin:shapes" in status
    listed = spyglass(data, "models").stdout
    assert "active (models use)" in listed
    assert "already the collection's model" in spyglass(data, "models", "use", str(tuned_model)).stdout
    assert "now searching with builtin:shapes/" in spyglass(data, "models", "rollback").stdout
    assert "dropped 12 vectors of open_clip:local/" in spyglass(data, "models", "prune").stdout
    versions = json.loads(spyglass(data, "status", "--json").stdout)["models"]
    assert versions["active"]["spec"] == "builtin:shapes" and versions["previous"] is None
