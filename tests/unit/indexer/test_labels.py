"""Zero-shot labels: right label first on shapes, automatic tags replaced, a person's tags kept."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import write_shapes
from support.live_server import LiveServer
from support.serve_process import EXE, env_for, spyglass

from spyglass.encoders.clip import shapes
from spyglass.engine import Engine
from spyglass.filters import Filters
from spyglass.retriever import RankingOptions
from spyglass.settings import Settings

NO_FLOOR = RankingOptions(relevance_floor=False)
PAIRS = [f"{c} {s}" for c in shapes.COLOURS for s in shapes.SHAPES]


def _truth(path: str) -> tuple[str, str]:
    colour, shape, _ = Path(path).stem.split("-")
    return colour, shape


def _automatic(engine: Engine, document_id: int) -> list[dict]:
    return [tag for tag in engine.store.tags(document_id) if tag["origin"] != "person"]


@pytest.fixture
def shapes_engine(tmp_path, shapes_encoder):
    folder = write_shapes(tmp_path / "pics", 96, seed=5)
    with Engine(Settings(data_dir=tmp_path / "data"), encoder=shapes_encoder) as engine:
        engine.index(folder, progress=False)
        yield engine, folder


def _documents(engine: Engine, folder: Path) -> dict[int, tuple[str, str]]:
    hits = engine.search("a shape", k=1000, options=NO_FLOOR).results
    return {hit.document_id: _truth(hit.path) for hit in hits if hit.path.startswith(str(folder))}


def test_labels_put_the_right_label_first_for_nine_in_ten_shapes(shapes_engine):
    engine, folder = shapes_engine
    documents = _documents(engine, folder)
    assert len(documents) == 96

    for vocabulary, truth in ((PAIRS, "{} {}"), (list(shapes.SHAPES), "{1}"), (list(shapes.COLOURS), "{0}")):
        assert engine.label(vocabulary) == 96
        right = 0
        for document_id, (colour, shape) in documents.items():
            labels = _automatic(engine, document_id)
            probabilities = [label["probability"] for label in labels]
            assert 1 <= len(labels) <= 3 and probabilities == sorted(probabilities, reverse=True)
            assert all(0 < p <= 1 for p in probabilities)
            right += labels[0]["tag"] == truth.format(colour, shape)
        assert right / len(documents) >= 0.9, (vocabulary, right)

    # Nothing new to do for the same vocabulary and model: the stored runs say so.
    assert engine.label(list(shapes.COLOURS)) == 0


def test_templates_make_an_ensemble_and_a_different_labelling(shapes_engine):
    engine, folder = shapes_engine
    document_id = next(iter(_documents(engine, folder)))
    engine.settings.labels.templates = ["{}"]
    engine.label(PAIRS)
    (single_origin,) = {tag["origin"] for tag in _automatic(engine, document_id)}
    single = {tag["tag"]: tag["probability"] for tag in _automatic(engine, document_id)}

    engine.settings.labels.templates = ["a photo of a {}.", "a {} on a grey background", "{}"]
    assert engine.label(PAIRS) == 96  # another vocabulary (templates are part of it): all relabelled
    ensembled = _automatic(engine, document_id)
    assert {tag["origin"] for tag in ensembled} != {single_origin}
    assert {tag["tag"]: tag["probability"] for tag in ensembled} != single


def test_tag_filter_finds_labelled_pictures_only(shapes_engine):
    engine, folder = shapes_engine
    documents = _documents(engine, folder)
    engine.label(PAIRS)
    found = engine.search("a shape", Filters(tags=("red circle",)), k=100, options=NO_FLOOR).results
    labelled = {d for d in documents if _automatic(engine, d)[0]["tag"] == "red circle"}
    assert {hit.document_id for hit in found} == labelled
    assert sum(documents[d] == ("red", "circle") for d in labelled) >= 0.9 * len(labelled) > 0


def test_relabelling_replaces_only_automatic_tags(shapes_engine):
    engine, folder = shapes_engine
    red = sorted(folder.glob("red-circle-*.png"))[0]
    engine.tag(red, ["favourite", "circle"])  # a person says "circle" too
    engine.label(list(shapes.SHAPES))
    document_id = (
        engine.search("x", Filters(tags=("favourite",)), k=5, options=NO_FLOOR).results[0].document_id
    )
    tags = {tag["tag"]: tag for tag in engine.store.tags(document_id)}
    assert tags["circle"]["origin"] == "person" and tags["circle"]["probability"] is None
    assert tags["favourite"]["origin"] == "person"

    engine.label(list(shapes.COLOURS))  # a new vocabulary: the shape labels go, the colours come
    tags = {tag["tag"]: tag for tag in engine.store.tags(document_id)}
    assert tags["red"]["origin"].startswith("labels:")
    assert not {"square", "triangle", "cross"} & set(tags)
    assert tags["circle"]["origin"] == tags["favourite"]["origin"] == "person"
    everywhere = [t for d in _documents(engine, folder) for t in _automatic(engine, d)]
    assert {t["tag"] for t in everywhere} <= set(shapes.COLOURS)


def test_labels_as_an_ingest_stage_follow_file_changes_and_show_in_the_api(tmp_path, shapes_encoder):
    from spyglass.api.app import create_app

    folder = write_shapes(tmp_path / "pics", 24, seed=3)
    settings = Settings(data_dir=tmp_path / "data", labels={"vocabulary": PAIRS})
    with Engine(settings, encoder=shapes_encoder) as engine:
        engine.index(folder, progress=False)
        target = folder / "red-circle-00.png"
        hit = engine.search("x", Filters(path_prefix=str(target)), k=1, options=NO_FLOOR).results[0]
        assert _automatic(engine, hit.document_id)[0]["tag"] == "red circle"
        engine.tag(target, ["mine"])

        # The file now shows a blue square: its automatic tags follow, the person's stays.
        shapes.generate(24, seed=9)[9].image.save(target)  # sample 9 is a blue square
        engine.index(folder, progress=False)
        hit = engine.search("x", Filters(path_prefix=str(target)), k=1, options=NO_FLOOR).results[0]
        tags = engine.store.tags(hit.document_id)
        assert [t["tag"] for t in tags if t["origin"] == "person"] == ["mine"]
        assert _automatic(engine, hit.document_id)[0]["tag"] == "blue square"
        assert engine.status()["stages"][engine.stages[-1].name]["pending"] == 0

        with LiveServer(create_app(engine)) as live:
            item = httpx.get(f"{live.url}/v1/items/{hit.item_id}").json()
    assert set(item["tags"]) >= {"mine", "blue square"}
    (best, *_) = item["labels"]
    assert best["tag"] == "blue square" and 0.5 < best["probability"] <= 1
    assert best["origin"].startswith("labels:") and shapes_encoder.model_id in best["origin"]


def test_label_command_labels_a_folder_and_search_filters_by_tag(tmp_path, shapes_encoder):
    first = write_shapes(tmp_path / "first", 24, seed=1)
    second = write_shapes(tmp_path / "second", 24, seed=2)
    data = tmp_path / "data"
    spyglass(data, "index", str(tmp_path))
    vocabulary = tmp_path / "labels.txt"
    vocabulary.write_text("# shapes\n" + "\n".join(PAIRS[:12]) + "\n" + ",".join(PAIRS[12:]) + "\n")
    out = spyglass(data, "label", "--labels-file", str(vocabulary), str(first)).stdout
    assert "labelled 24 picture(s)" in out

    found = json.loads(
        spyglass(data, "search", "a green cross", "-k", "50", "-f", "tag=green cross", "--json").stdout
    )
    paths = [hit["path"] for hit in found["results"]]
    assert paths and all(p.startswith(str(first)) for p in paths)  # the second folder was not labelled
    assert sum("green-cross" in p for p in paths) >= 0.9 * len(paths)
    assert not any(p.startswith(str(second)) for p in paths)

    refused = subprocess.run(
        [str(EXE), "label", str(first)], capture_output=True, text=True, env=env_for(data)
    )
    assert refused.returncode == 2 and "give labels with --labels" in refused.stderr


def test_the_web_page_shows_labels_apart_from_a_persons_tags(tmp_path, shapes_encoder, browser):
    from spyglass.api.app import create_app

    folder = write_shapes(tmp_path / "pics", 24, seed=3)
    with Engine(
        Settings(data_dir=tmp_path / "data", labels={"vocabulary": PAIRS}), encoder=shapes_encoder
    ) as engine:
        engine.index(folder, progress=False)
        engine.tag(folder / "red-circle-00.png", ["mine"])
        with LiveServer(create_app(engine)) as live:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(live.url + "/")
            page.fill("#q", "red circle 00")
            page.wait_for_function("document.querySelectorAll('#results .card').length > 0")
            page.locator("#results .card", has_text="red-circle-00").first.click()
            page.wait_for_selector("dialog[open] #detail-meta dd")
            meta = page.inner_text("#detail-meta")
            page.screenshot(path=str(tmp_path / "labels-detail.png"))
    assert "tags\nmine" in meta
    line = meta.split("labels (automatic)\n", 1)[1].splitlines()[0]
    assert line.startswith("red circle ") and line.split(",")[0].endswith("%")
