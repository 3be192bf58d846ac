"""Generator: the openai backend against a real local HTTP server, the transformers backend with a
tiny random LLaVA, and end-to-end asks with the extractive backend over the synthetic shapes."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_shapes
from PIL import Image
from support.chat_server import ChatServer

from spyglass.encoders.clip import shapes
from spyglass.engine import Engine
from spyglass.generator import NOT_FOUND, Generator, PromptOptions
from spyglass.generator.backends import GenerationParams, Request
from spyglass.generator.backends.extractive import ExtractiveBackend
from spyglass.generator.backends.openai import GenerationError, OpenAIBackend
from spyglass.generator.evidence import Evidence
from spyglass.generator.prompt import build_messages
from spyglass.settings import Settings


@pytest.fixture(scope="module")
def engine(tmp_path_factory, shapes_encoder):
    folder = tmp_path_factory.mktemp("ask-shapes")
    write_shapes(
        folder, 48, seed=13, note="# Circles\n\nA red circle has no corners. Squares have four corners.\n"
    )
    with Engine(Settings(data_dir=tmp_path_factory.mktemp("ask-data")), encoder=shapes_encoder) as opened:
        opened.index(folder, progress=False)
        yield opened


def sample_request(question: str = "what colour is the circle?") -> Request:
    evidence = [
        Evidence(
            1,
            11,
            "image",
            "/p/red-circle.png",
            "image red-circle.png",
            image=Image.new("RGB", (40, 30), (200, 0, 0)),
        ),
        Evidence(
            2, 12, "chunk", "/p/notes.md", "passage from notes.md", text="The circle in the photo is red."
        ),
    ]
    params = GenerationParams(max_tokens=64, temperature=0.0, top_p=0.9, stop=["\n\n"], seed=7)
    return Request(question, evidence, build_messages(question, evidence), params)


def test_openai_backend_sends_evidence_images_parameters_and_auth():
    with ChatServer() as server:
        server.script = [(200, "It is red [1][2].", {})]
        backend = OpenAIBackend(server.url, "llava:7b", api_key="sk-test-secret")
        assert backend.generate(sample_request()) == "It is red [1][2]."
        sent = server.requests[0]
        assert sent["path"] == "/v1/chat/completions"
        assert sent["headers"]["Authorization"] == "Bearer sk-test-secret"
        body = sent["body"]
        assert (
            body["model"],
            body["max_tokens"],
            body["temperature"],
            body["top_p"],
            body["stop"],
            body["seed"],
            body["stream"],
        ) == ("llava:7b", 64, 0.0, 0.9, ["\n\n"], 7, False)
        system, user = body["messages"]
        assert system["role"] == "system" and "only the numbered evidence" in system["content"]
        texts = [p["text"] for p in user["content"] if p["type"] == "text"]
        assert texts[1] == "[1] image red-circle.png:" and texts[2].startswith(
            "[2] passage from notes.md: The circle"
        )
        assert texts[-1] == "Question: what colour is the circle?"
        (image_part,) = [p for p in user["content"] if p["type"] == "image_url"]
        header, data = image_part["image_url"]["url"].split(",", 1)
        assert header == "data:image/jpeg;base64"
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (40, 30)
        assert "sk-test-secret" not in repr(backend)


def test_openai_backend_streams():
    with ChatServer() as server:
        server.script = [(200, "Red circle [1].", {})]
        pieces = list(OpenAIBackend(server.url, "m").stream(sample_request()))
        assert len(pieces) == 3 and "".join(pieces).strip() == "Red circle [1]."
        assert server.requests[0]["body"]["stream"] is True


def test_openai_backend_retries_429_and_5xx_then_succeeds():
    with ChatServer() as server:
        server.script = [(429, "", {"Retry-After": "0"}), (503, "", {}), (200, "fine [2]", {})]
        backend = OpenAIBackend(server.url, "m", retries=3, backoff=0.01)
        assert backend.generate(sample_request()) == "fine [2]"
        assert len(server.requests) == 3
        server.script = [(500, "", {})]
        with pytest.raises(GenerationError, match="answered 500"):
            OpenAIBackend(server.url, "m", retries=1, backoff=0.01).generate(sample_request())
        server.script = [(400, "", {})]
        before = len(server.requests)
        with pytest.raises(GenerationError, match="answered 400"):
            OpenAIBackend(server.url, "m", retries=3, backoff=0.01).generate(sample_request())
        assert len(server.requests) == before + 1  # client errors are not retried


def test_openai_backend_times_out_and_reports_unreachable():
    with ChatServer() as server:
        server.delay = 2.0
        started = time.monotonic()
        with pytest.raises(GenerationError, match="cannot reach"):
            OpenAIBackend(server.url, "m", timeout=0.3, retries=1, backoff=0.01).generate(sample_request())
        assert time.monotonic() - started < 1.9 * 2  # two attempts, each cut at the timeout
    with pytest.raises(GenerationError, match="cannot reach"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", retries=0).generate(sample_request())


def test_transformers_backend_with_a_tiny_random_llava(tmp_path, monkeypatch):
    from spyglass.generator.backends import transformers as tb
    from spyglass.generator.tiny import write_tiny_llava

    backend = tb.TransformersBackend(str(write_tiny_llava(tmp_path / "llava")))
    seen = {}
    original = backend.processor.__class__.__call__

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(backend.processor.__class__, "__call__", spy)
    request = sample_request()
    request.params = GenerationParams(max_tokens=6, temperature=0.0)
    text = backend.generate(request)
    assert isinstance(text, str)
    assert len(seen["images"]) == 1 and seen["images"][0].size == (
        40,
        30,
    )  # the evidence image reached the processor
    assert seen["text"].count("<image>") == 1 and "Question: what colour is the circle?" in seen["text"]
    assert len(backend.processor.tokenizer(text)["input_ids"]) <= 6 + 2  # generation stopped at max_tokens
    streamed = "".join(backend.stream(request))
    assert streamed.strip() == text  # greedy: the same tokens, streamed


def test_extractive_quotes_matching_sentences_with_citations():
    text = ExtractiveBackend().generate(sample_request("what colour is the circle?"))
    assert "[1]" in text and "“The circle in the photo is red.” [2]" in text


def test_ask_red_circle_cites_a_red_circle_image(engine):
    answer = engine.ask("which picture shows a red circle?")
    assert answer.supported and answer.backend == "extractive"
    images = [c for c in answer.cited if c.kind == "image"]
    assert images and all("red-circle" in Path(c.path).name for c in images)
    assert f"[{images[0].number}]" in answer.text
    assert all(c.number not in [u.number for u in answer.uncited] for c in answer.cited)


def test_ask_without_evidence_says_it_could_not_find(engine):
    answer = engine.ask("zorblax quimfet vrrk")
    assert not answer.supported and answer.text == NOT_FOUND and answer.cited == []


def test_unsupported_model_answer_is_replaced(engine):
    class Chatty(ExtractiveBackend):
        name = "chatty"

        def generate(self, request):
            return "Circles are round, everyone knows that [9]."

    generator = Generator(engine.retriever, Chatty())
    answer = generator.answer(generator.prepare("which picture shows a red circle?"))
    assert answer.text == NOT_FOUND and answer.invalid_citations == [9] and "everyone knows" in answer.raw


def test_citation_numbers_run_in_reading_order(engine):
    class Backwards(ExtractiveBackend):
        name = "backwards"

        def generate(self, request):
            return "A red circle [3], another [1], the first again [3]."

    generator = Generator(engine.retriever, Backwards())
    request = generator.prepare("which picture shows a red circle?")
    assert len(request.evidence) >= 3
    answer = generator.answer(request)
    assert answer.text == "A red circle [1], another [2], the first again [1]." and answer.renumbered
    assert [c.number for c in answer.cited] == [1, 2]
    assert [c.item_id for c in answer.cited] == [request.evidence[2].item_id, request.evidence[0].item_id]
    assert [u.number for u in answer.uncited] == list(range(3, len(request.evidence) + 1))
    assert [e.number for e in request.evidence] == list(
        range(1, len(request.evidence) + 1)
    )  # left as prompted


def test_streaming_yields_text_then_the_checked_answer(engine):
    events = list(engine.ask_stream("which picture shows a blue square?"))
    *pieces, final = events
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert final.supported and "".join(pieces).strip().startswith("The closest matching")
    assert any("blue-square" in c.path for c in final.cited)


def test_ask_with_own_image_and_look_mode(engine, tmp_path):
    mine = tmp_path / "mine.png"
    shapes.generate(3, seed=99)[2].image.save(mine)  # a red triangle
    request = engine.generator.prepare("what is this and where else does it appear?", images=[mine])
    assert request.evidence[0].kind == "upload" and request.evidence[0].number == 1
    assert any("red-triangle" in e.path for e in request.evidence[1:])
    look = engine.generator.look("what is in this picture?", [mine], PromptOptions(step_by_step=True))
    assert [e.kind for e in look.evidence] == ["upload"] and "step by step" in look.messages[0]["content"]
    assert sum(p["type"] == "image_url" for p in look.messages[1]["content"]) == 1


def test_image_resolution_sent_to_the_model_is_capped(engine, tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (0, 0, 200)).save(big)
    request = engine.generator.look("describe", [big])
    assert max(request.evidence[0].image.size) <= engine.settings.generator.image_side


def test_few_shot_prompt():
    messages = build_messages("q", [], PromptOptions(few_shot=True))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]


def test_cli_ask_json(engine, data_dir, shapes_encoder):
    env = {
        **os.environ,
        "SPYGLASS_DATA_DIR": str(engine.settings.data_dir),
        "SPYGLASS_MODEL": "builtin:shapes",
        "COLUMNS": "400",
    }
    exe = str(Path(sys.executable).with_name("spyglass"))
    result = subprocess.run(
        [exe, "ask", "which picture shows a red circle?", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout)
    assert payload["supported"] and any("red-circle" in c["path"] for c in payload["citations"])
    human = subprocess.run(
        [exe, "ask", "which picture shows a red circle?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    ).stdout
    assert "red-circle" in human and "[1]" in human
