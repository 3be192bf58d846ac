"""The six generation controls: from settings, the API, MCP's body and the CLI to each backend's own
form; several candidate answers, each checked; out-of-range values refused with the field named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import write_shapes
from support.chat_server import ChatServer
from support.live_server import LiveServer

from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.generator import PromptOptions
from spyglass.generator.backends import GenerationParams, GenerationParamsError, Request
from spyglass.generator.backends.extractive import ExtractiveBackend
from spyglass.generator.evidence import Evidence
from spyglass.generator.prompt import build_messages
from spyglass.settings import Settings

QUESTION = "which picture shows a red circle?"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("controls-shapes"), 24, seed=21)


@pytest.fixture(scope="module")
def chat():
    with ChatServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory, shapes, shapes_encoder, chat):
    """The real app over HTTP, answering through the chat server, with the settings' own controls."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("controls-data"),
        generator={
            "backend": "openai",
            "model": "vlm",
            "base_url": chat.url,
            "max_answer_tokens": 99,
            "seed": 3,
        },
    )
    with Engine(settings, encoder=shapes_encoder) as engine:
        engine.index(shapes, progress=False)
        with LiveServer(create_app(engine)) as live, httpx.Client(base_url=live.url, timeout=60) as client:
            yield client


def test_each_control_reaches_the_chat_completions_body(served, chat):
    chat.choices = None
    chat.script = [(200, "A red circle [1].", {})]
    reply = served.post("/v1/ask", json={"question": QUESTION})
    assert reply.status_code == 200, reply.text
    body = chat.requests[-1]["body"]
    assert (body["max_tokens"], body["seed"], "n" not in body) == (99, 3, True)  # settings, old name too
    asked = {"max_tokens": 33, "temperature": 0.7, "top_p": 0.8, "stop": ["END", "\n\n"], "seed": 5}
    assert served.post("/v1/ask", json={"question": QUESTION, **asked}).status_code == 200
    body = chat.requests[-1]["body"]
    assert {name: body[name] for name in asked} == asked


def test_an_answer_ends_at_its_stop_string_and_cites_only_what_is_before(served, chat):
    chat.choices = None  # a server that ignores stop: the generator still cuts there
    chat.script = [(200, "It is the first picture [1]. END and then [99].", {})]
    answer = served.post("/v1/ask", json={"question": QUESTION, "stop": ["END"]}).json()
    assert answer["answer"] == "It is the first picture [1]." and answer["invalid_citations"] == []


def test_n_candidates_are_each_checked_and_cited(served, chat):
    chat.choices = ["It is the first picture [1].", "No evidence says so.", "See [99] and [1]."]
    reply = served.post("/v1/ask", json={"question": QUESTION, "n": 3})
    assert reply.status_code == 200, reply.text
    assert chat.requests[-1]["body"]["n"] == 3
    answer = reply.json()
    first, unsupported, partly = answer["candidates"]
    assert answer["answer"] == first["answer"] == "It is the first picture [1]."
    assert [c["number"] for c in first["citations"]] == [1]
    assert not unsupported["supported"] and unsupported["citations"] == []
    assert partly["supported"] and partly["invalid_citations"] == [99]
    assert [c["number"] for c in partly["citations"]] == [1] and partly["answer"] == "See and [1]."


@pytest.mark.parametrize(
    ("controls", "field"),
    [
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 0}, "n"),
        ({"n": 5}, "n"),  # above generator.max_n
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
    ],
)
def test_out_of_range_controls_are_refused_naming_the_field(served, chat, controls, field):
    before = len(chat.requests)
    reply = served.post("/v1/ask", json={"question": QUESTION, **controls})
    assert reply.status_code == 422
    assert reply.json()["error"]["message"].startswith(f"invalid {field}")
    assert len(chat.requests) == before  # nothing was asked of the model


def test_several_candidates_are_not_streamed(served):
    reply = served.post("/v1/ask?stream=true", json={"question": QUESTION, "n": 2})
    assert reply.status_code == 422 and "invalid n" in reply.json()["error"]["message"]


def test_the_extractive_backend_honours_max_tokens_and_refuses_n(tmp_path, shapes, shapes_encoder):
    with Engine(Settings(data_dir=tmp_path / "data"), encoder=shapes_encoder) as engine:
        engine.index(shapes, progress=False)
        whole = engine.ask(QUESTION).raw
        assert len(whole.split()) > 4
        short = engine.ask(QUESTION, options=PromptOptions(generation={"max_tokens": 4})).raw
        assert short.split() == whole.split()[:4]
        with pytest.raises(GenerationParamsError, match="invalid n: must be between 1 and 1"):
            engine.ask(QUESTION, options=PromptOptions(generation={"n": 2}))
        with LiveServer(create_app(engine)) as live:
            reply = httpx.post(f"{live.url}/v1/ask", json={"question": QUESTION, "n": 2}, timeout=60)
            assert reply.status_code == 422 and "invalid n" in reply.json()["error"]["message"]


def test_the_cli_flags_reach_the_model_and_refuse_bad_values(tmp_path, shapes, shapes_encoder, chat):
    data = tmp_path / "data"
    with Engine(Settings(data_dir=data), encoder=shapes_encoder) as engine:
        engine.index(shapes, progress=False)
    env = {
        **os.environ,
        "SPYGLASS_DATA_DIR": str(data),
        "SPYGLASS_MODEL": "builtin:shapes",
        "SPYGLASS_GENERATOR": "openai",
        "SPYGLASS_GENERATOR_MODEL": "vlm",
        "SPYGLASS_GENERATOR_BASE_URL": chat.url,
        "COLUMNS": "400",
    }
    exe = str(Path(sys.executable).with_name("spyglass"))

    def ask(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [exe, "ask", QUESTION, "--json", *flags], capture_output=True, text=True, env=env, timeout=300
        )

    chat.script, chat.choices = [(200, "The first picture [1].", {})], ["Red [1].", "A circle [1]."]
    flags = ["--max-tokens", "3", "--temperature", "0.5", "--top-p", "0.9", "--stop", "END", "--seed", "1"]
    done = ask(*flags, "-n", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    body = chat.requests[-1]["body"]
    sent = (body["max_tokens"], body["temperature"], body["top_p"], body["stop"], body["seed"], body["n"])
    assert sent == (3, 0.5, 0.9, ["END"], 1, 2)
    assert [c["answer"] for c in json.loads(done.stdout)["candidates"]] == ["Red [1].", "A circle [1]."]
    before = len(chat.requests)
    refused = ask("-n", "5")  # above generator.max_n
    assert refused.returncode != 0 and "invalid n" in refused.stderr + refused.stdout
    assert len(chat.requests) == before


def _request(params: GenerationParams) -> Request:
    evidence = [
        Evidence(
            1, 11, "chunk", "/p/notes.md", "passage from notes.md", text="The circle in the photo is red."
        )
    ]
    question = "what colour is the circle?"
    return Request(question, evidence, build_messages(question, evidence), params)


def test_transformers_maps_the_controls_to_generate(tmp_path, monkeypatch):
    from spyglass.generator.backends import transformers as tb
    from spyglass.generator.tiny import write_tiny_llava

    backend = tb.TransformersBackend(str(write_tiny_llava(tmp_path / "llava")))
    seen: list[dict] = []
    original = backend.model.generate
    monkeypatch.setattr(backend.model, "generate", lambda **kw: seen.append(kw) or original(**kw))
    sampled = GenerationParams(max_tokens=5, temperature=0.9, top_p=0.7, n=2, stop=["zzz"], seed=11)
    first = backend.candidates(_request(sampled))
    kwargs = seen[-1]
    assert (kwargs["max_new_tokens"], kwargs["do_sample"], kwargs["temperature"], kwargs["top_p"]) == (
        5,
        True,
        0.9,
        0.7,
    )
    assert kwargs["num_return_sequences"] == 2
    assert "stop_strings" not in kwargs  # this word-level tokenizer cannot map them: cut after instead
    assert len(first) == 2 and backend.candidates(_request(sampled)) == first  # the seed repeats the sample
    greedy = backend.candidates(_request(GenerationParams(max_tokens=4, temperature=0.0, n=2)))
    assert len(greedy) == 2 and seen[-1]["num_beams"] == 2  # greedy search has one answer: n beams


def test_extractive_answers_in_at_most_max_tokens_words():
    assert ExtractiveBackend().generate(_request(GenerationParams(max_tokens=3))) == "“The circle in"
    assert GenerationParams(stop=["photo", "in"]).until_stop("The circle in the photo") == "The circle "
