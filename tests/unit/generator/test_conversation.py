"""Conversations (spyglass/generator/conversation.py): follow-ups made standalone, answered and recorded.

The extractive backend rewrites without a model (the earlier questions' subject words as a
boost); a model backend is asked to condense, shown here through the local chat-completions
server, which records what it receives.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import shared_path, write_shapes
from support.chat_server import ChatServer

from spyglass.engine import Engine
from spyglass.generator.backends.extractive import ExtractiveBackend
from spyglass.generator.conversation import CONDENSE, LOCAL, ConversationNotFound, Turn, standalone
from spyglass.settings import Settings

H8 = "In this work we employ h = 8 parallel attention layers, or heads."


def test_the_extractive_rewrite_carries_earlier_subject_words_as_extra_terms():
    asked = [Turn("What is multi-head attention?", "What is multi-head attention?", "It is ... [1]")]
    follow_up = standalone("how many heads does the model use?", asked, ExtractiveBackend())
    assert follow_up == "how many heads does the model use? multi head attention"
    assert standalone("what is a transformer?", [], ExtractiveBackend()) == "what is a transformer?"
    # the latest turn's subject first, nothing twice, the new question's own words not repeated
    turns = [Turn("photos of Oslo", "", ""), Turn("the harbour in Oslo at night", "", "")]
    assert standalone("any receipts?", turns, ExtractiveBackend()) == "any receipts? harbour Oslo night"


@pytest.fixture(scope="module")
def papers(tmp_path_factory, minilm_hf_home, shapes_encoder):
    """../shared/data/docs indexed with the real MiniLM, answered by the extractive backend."""
    docs = shared_path("data", "docs")
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_HOME", str(minilm_hf_home))
    from huggingface_hub import constants

    patch.setattr(constants, "HF_HUB_CACHE", str(minilm_hf_home / "hub"))
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("papers"), text={"model": "sentence-transformers/all-MiniLM-L6-v2"}
    )
    engine = Engine(settings, encoder=shapes_encoder)
    engine.index(docs, progress=False)
    yield engine
    engine.close()
    patch.undo()


def cited_files(answer) -> set[str]:
    return {Path(piece.path).name for piece in answer.cited}


def test_an_extractive_conversation_answers_the_follow_up_from_the_first_answers_paper(papers):
    talk = papers.conversation(None, LOCAL)
    first = papers.ask("What is multi-head attention?", conversation=talk)
    assert first.supported and "attention.pdf" in cited_files(first) and first.turn == 1
    assert talk.turns()[0].cited == tuple(piece.item_id for piece in first.cited)  # later turns' candidates
    second = papers.ask("how many heads does the model use?", conversation=talk)
    assert second.supported and second.turn == 2 and second.question == "how many heads does the model use?"
    assert "attention" in second.standalone  # the subject carried forward
    assert "attention.pdf" in cited_files(second) and "h = 8" in second.text, second.text
    assert any(H8 in (piece.text or "") for piece in second.cited)
    recorded = papers.store.conversation(talk.id, LOCAL)
    assert [turn["question"] for turn in recorded["turns"]] == [first.question, second.question]
    assert recorded["turns"][1]["answer"]["citations"][0]["path"].endswith("attention.pdf")
    assert papers.store.conversation(talk.id, "key:someone-else") is None  # owned by its key alone


def test_a_follow_up_finds_its_paper_and_a_new_subject_finds_new_evidence(papers):
    talk = papers.conversation(None, LOCAL)
    papers.ask("What is multi-head attention?", conversation=talk)
    where = papers.ask("and on which page is it defined?", conversation=talk)
    assert "attention.pdf" in cited_files(where) or "attention.pdf" in {
        Path(piece.path).name for piece in where.uncited
    }
    switched = papers.ask("Which products are in the Acme annual report?", conversation=talk)
    assert "financial_report.pdf" in cited_files(switched) | {Path(p.path).name for p in switched.uncited}
    with pytest.raises(ConversationNotFound):
        papers.ask("more?", conversation=papers.conversation("no-such-id", LOCAL))


def test_a_model_backend_condenses_the_history_then_answers_the_standalone_question(tmp_path, shapes_encoder):
    folder = write_shapes(tmp_path / "files", 12, seed=8, note="The lighthouse lamp was cleaned on Tuesday.")
    with ChatServer() as chat:
        settings = Settings(
            data_dir=tmp_path / "data", generator={"backend": "openai", "model": "vlm", "base_url": chat.url}
        )
        with Engine(settings, encoder=shapes_encoder) as engine:
            engine.index(folder, progress=False)
            talk = engine.conversation(None, LOCAL)
            chat.script = [(200, "The lamp was cleaned on Tuesday [1].", {})]
            first = engine.ask("When was the lighthouse lamp cleaned?", conversation=talk)
            assert first.supported and len(chat.requests) == 1  # a first question needs no rewrite
            chat.script = [(200, "Who cleaned the lighthouse lamp?", {}), (200, "Nobody says [1].", {})]
            engine.ask("and who cleaned it?", conversation=talk)
    condense, answer = (request["body"] for request in chat.requests[-2:])
    assert condense["messages"][0]["content"] == CONDENSE and condense["temperature"] == 0.0
    said = [(m["role"], m["content"]) for m in condense["messages"][1:]]
    assert said == [
        ("user", "When was the lighthouse lamp cleaned?"),
        ("assistant", first.text),
        ("user", "and who cleaned it?"),
    ]
    assert answer["messages"][-1]["content"][-1]["text"] == "Question: Who cleaned the lighthouse lamp?"
    assert {"role": "user", "content": "When was the lighthouse lamp cleaned?"} in answer["messages"]


def test_conversations_idle_past_their_days_are_deleted_when_one_starts(tmp_path, shapes_encoder):
    with Engine(Settings(data_dir=tmp_path / "data"), encoder=shapes_encoder) as engine:
        old = engine.conversation(None, LOCAL)
        time.sleep(0.05)
        engine.settings.generator.conversation_days = 0.01 / 86400  # 10 ms
        fresh = engine.conversation(None, LOCAL)
        assert engine.store.conversation(old.id, LOCAL) is None
        assert [row["id"] for row in engine.store.conversations(LOCAL)] == [fresh.id]
