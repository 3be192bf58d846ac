"""The text space with the real all-MiniLM-L6-v2, found through the hub cache as a user's download leaves it.

CLIP here is ``builtin:shapes`` (no pretrained CLIP can be had offline), so "CLIP text"
is a weak baseline on passages; the text space and BM25 are real.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import MINILM, imported, shared_path
from support.live_server import LiveServer
from support.serve_process import env_for, spyglass

from spyglass import Engine, Settings
from spyglass.api import create_app
from spyglass.defaults import DEFAULT_TEXT_MODEL
from spyglass.evaluation.judged import evaluate_judged
from spyglass.generator.backends.extractive import sentences
from spyglass.settings import EncoderSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # real MiniLM over the wiki set: see test_judged

DEFINITION = (
    "Multi-head attention allows the model to jointly attend to information from different "
    "representation subspaces at different positions"
)


def engine_for(data_dir: Path, shapes_encoder, text_model: str = MINILM) -> Engine:
    return Engine(Settings(data_dir=data_dir, text={"model": text_model}), encoder=shapes_encoder)


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "bread.md").write_text(
        "# Baking\n\nKnead the dough for ten minutes, let it rise overnight and bake it at 230 degrees "
        "until the crust is dark brown and sounds hollow when tapped.\n"
    )
    (folder / "bikes.txt").write_text(
        "To fix a flat tyre, lever the tyre off the rim, find the puncture in the inner tube, "
        "roughen the rubber around it and press a patch on with glue.\n"
    )
    (folder / "stars.txt").write_text(
        "The Sun is a star at the centre of the Solar System; its energy comes from nuclear fusion "
        "of hydrogen into helium in its core.\n"
    )
    return folder


def test_text_space_beats_clip_text_on_wiki_questions(tmp_path, shapes_encoder, minilm):
    """Questions over Wikipedia articles: the right article's passages. A subset, to keep the run short:
    the 12 shortest articles that have a question (40k words; the first 12 were 96k, 90 s of MiniLM)."""
    wiki = shared_path("data", "wiki100")
    questions = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "wiki100-questions.csv"
    with open(questions, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows = sorted(rows, key=lambda row: (wiki / row["document"]).stat().st_size)[:12]
    corpus = tmp_path / "wiki"
    corpus.mkdir()
    for row in rows:
        (corpus / row["document"]).symlink_to(wiki / row["document"])
    subset = tmp_path / "questions.csv"
    with open(subset, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["question", "document"])
        writer.writeheader()
        writer.writerows(rows)
    report = evaluate_judged(engine_for(tmp_path / "data", shapes_encoder), corpus, questions=subset)
    metrics = report.metrics
    assert report.documents == len({row["document"] for row in rows}) and report.queries == 12
    assert metrics["text"]["MRR@10"] > metrics["clip"]["MRR@10"] + 0.3, metrics
    assert metrics["text"]["R@1"] >= 0.75, metrics
    assert metrics["fused"]["MRR@10"] >= metrics["rrf"]["MRR@10"], metrics


def test_ask_quotes_the_sentence_that_defines_multi_head_attention(tmp_path, minilm, notes):
    """As a user runs it, with the default text model resolved from the hub cache; later runs use
    its ONNX export, without torch (the CLIP model's image tower too: fp32, not auto's torch on AMX)."""
    assert DEFAULT_TEXT_MODEL == MINILM
    docs = shared_path("data", "docs")
    data_dir = tmp_path / "data"
    cache = tmp_path / "cache"  # a fresh cache, so this run exports the model; builtin:shapes is reused
    cache.mkdir()
    (cache / "models").symlink_to(EncoderSettings().models_dir)
    env = {"SPYGLASS_ENCODER__CACHE_DIR": str(cache), "SPYGLASS_PRECISION": "fp32"}
    stage = f"embed:text:{MINILM}"
    assert stage in spyglass(data_dir, "index", str(docs), **env).stdout
    assert f"{stage} v1: 0 items waiting" in spyglass(data_dir, "status", **env).stdout
    answer = spyglass(data_dir, "ask", "What is multi-head attention?", **env).stdout
    assert DEFINITION in answer, answer
    # the checked text comes last (printed again when its citations were renumbered in reading order)
    number = answer.rsplit(DEFINITION, 1)[1].split("[", 1)[1].split("]", 1)[0]
    assert f"[{number}] passage from attention.pdf, page 5" in answer, answer

    # A search afterwards embeds the question with the model's ONNX export: no torch, no sentence-transformers,
    # not even the weights (an empty hub cache).
    def without_weights(*arguments: str) -> tuple[dict, set[str]]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "spyglass", *arguments, "--json"],
            capture_output=True,
            text=True,
            env=env_for(data_dir, **env, HF_HOME=str(tmp_path / "empty-hf")),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout), imported(done.stderr)

    search, modules = without_weights("search", "multi-head attention")
    assert "torch" not in modules and "sentence_transformers" not in modules
    passages = [r for r in search["results"] if r["semantic"] is not None]
    assert passages and passages[0]["path"].endswith("attention.pdf")
    # A later ingest embeds its passages with the export too (the weights are not even here).
    report, modules = without_weights("index", str(notes))
    assert report["stages"][stage] == 6 and "torch" not in modules  # 3 chunks, 3 sections
    search, _ = without_weights("search", "mending a punctured bicycle wheel")
    assert search["results"][0]["path"].endswith("bikes.txt") and search["results"][0]["semantic"] is not None


def test_turning_the_text_space_on_catches_up_on_an_existing_collection(
    notes, tmp_path, shapes_encoder, minilm
):
    data_dir = tmp_path / "data"
    with engine_for(data_dir, shapes_encoder, text_model="") as engine:
        engine.index(notes, progress=False)
        assert engine.search("how do I repair a punctured tyre").results[0].semantic is None
    with engine_for(data_dir, shapes_encoder) as engine:
        stage = f"embed:text:{MINILM}"
        waiting = engine.status()["stages"][stage]["pending"]
        assert waiting == 6  # one chunk and one section per note, none embedded yet
        report = engine.catch_up()
        assert report.stages == {stage: 6} and engine.status()["stages"][stage]["pending"] == 0
        best = engine.search("how do I repair a punctured tyre").results[0]
        assert Path(best.path).name == "bikes.txt" and best.semantic is not None and best.semantic > 0.4
        assert engine.search("where does sunlight come from").results[0].path.endswith("stars.txt")
        with LiveServer(
            create_app(engine)
        ) as server:  # the API reports the text space's part, and can skip it
            query = {"text": "how do I repair a punctured tyre", "k": 3}
            on = httpx.post(f"{server.url}/v1/search", json=query, timeout=60).json()["results"]
            off = httpx.post(f"{server.url}/v1/search", json={**query, "semantic": False}, timeout=60)
        assert on[0]["path"].endswith("bikes.txt") and on[0]["semantic"] == pytest.approx(best.semantic)
        assert on[0]["semantic_rank"] == 1
        assert all(result["semantic"] is None for result in off.json()["results"])


def test_without_its_weights_the_text_stage_waits_and_search_still_works(
    notes, tmp_path, shapes_encoder, monkeypatch
):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("SPYGLASS_ENCODER__CACHE_DIR", str(tmp_path / "no-exports"))  # nor its ONNX export
    with engine_for(tmp_path / "data", shapes_encoder) as engine:
        report = engine.index(notes, progress=False)
        stage = f"embed:text:{MINILM}"
        assert (
            "not on this machine" in report.waiting[stage] and "SPYGLASS_TEXT__MODEL" in report.waiting[stage]
        )
        assert (
            engine.status()["stages"][stage]["pending"] == 6
        )  # waits for a run that has the model (3 chunks, 3 sections)
        response = engine.search("bake bread")
        assert response.results[0].path.endswith("bread.md") and response.results[0].semantic is None


def test_identical_files_share_text_space_vectors_without_re_embedding(
    notes, tmp_path, shapes_encoder, minilm
):
    data_dir = tmp_path / "data"
    with engine_for(data_dir, shapes_encoder) as engine:
        engine.index(notes, progress=False)
    shutil.copy(notes / "bikes.txt", notes / "bikes-copy.txt")
    with engine_for(data_dir, shapes_encoder) as engine:
        report = engine.index(notes, progress=False)
        assert report.copied == 1 and report.stages == {f"embed:text:{MINILM}": 0}
        ids = [r.item_id for r in engine.search("puncture", k=5).results if r.path.endswith("bikes-copy.txt")]
        found, vectors = engine.text_store.vectors(ids)
        assert len(found) == 1 and np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-2)


def test_headings_and_fragments_are_not_quotable():
    text = "3.2.2 Multi-Head Attention\n\nInstead of one attention function, we found it useful. Yes."
    assert sentences(text) == ["Instead of one attention function, we found it useful."]


def test_models_lists_the_text_model_and_whether_it_is_here(tmp_path, minilm):
    rows = json.loads(spyglass(tmp_path / "data", "models", "--json").stdout)
    text = [row for row in rows if row["role"] == "text space"]
    assert text == [
        {
            "spec": MINILM,
            "role": "text space",
            "backend": "sentence-transformers",
            "present": True,
            "where": text[0]["where"],
        }
    ]
    assert "models--sentence-transformers--all-MiniLM-L6-v2/snapshots" in text[0]["where"]
    empty = json.loads(spyglass(tmp_path / "data", "models", "--json", HF_HOME=str(tmp_path / "hf")).stdout)
    assert [row["present"] for row in empty if row["role"] == "text space"] == [False]


def test_passages_waiting_for_the_text_stage_are_still_found_by_their_words(
    notes, tmp_path, shapes_encoder, minilm
):
    data_dir = tmp_path / "data"
    with engine_for(data_dir, shapes_encoder) as engine:
        engine.index(notes, progress=False)
    (notes / "tea.txt").write_text("Oolong tea is partly oxidised, between green and black tea in flavour.\n")
    with engine_for(data_dir, shapes_encoder) as engine:
        engine.stages.clear()  # the text stage does not run: tea.txt waits in its backlog
        engine.index(notes, progress=False)
    with engine_for(data_dir, shapes_encoder) as engine:
        assert engine.status()["stages"][f"embed:text:{MINILM}"]["pending"] == 2  # its chunk and its section
        found = [r for r in engine.search("oolong").results if r.path.endswith("tea.txt")]
        assert found and found[0].bm25_rank == 1 and found[0].semantic is None


def test_text_read_in_a_picture_joins_the_text_space(notes, tmp_path, shapes_encoder, minilm):
    """A sign's words found by what they mean, not only by the words themselves (OCR, then MiniLM)."""
    pytest.importorskip("rapidocr", reason="OCR needs the rapidocr wheel")
    from PIL import Image, ImageDraw, ImageFont

    sign = Image.new("RGB", (900, 160), "white")
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 44)
    ImageDraw.Draw(sign).text((30, 50), "Blueberry pancake recipe", font=font, fill="black")
    sign.save(notes / "kitchen-sign.png")
    settings = Settings(data_dir=tmp_path / "data", text={"model": MINILM}, ocr={"enabled": True})
    with Engine(settings, encoder=shapes_encoder) as engine:
        report = engine.index(notes, progress=False)
        assert (
            report.stages[f"embed:text:{MINILM}"] == 7
        )  # three notes (a chunk and a section each), the sign
        results = engine.search("how to cook breakfast with berries", k=5).results
        found = next(r for r in results if Path(r.path).name == "kitchen-sign.png")
        assert found.bm25 is None and found.semantic is not None and found.semantic > 0.35
        assert Path(engine.search("pancake", k=1).results[0].path).name == "kitchen-sign.png"
