"""``encoders/fast/sentence.py``: the text space's model exported to ONNX embeds like the model itself
(real all-MiniLM-L6-v2), is published once per model, and is never used for another model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spyglass.encoders.fast.cache import MANIFEST, export_dir
from spyglass.encoders.fast.sentence import GRAPH, KIND, OnnxSentenceEncoder, export_sentence_model

TEXTS = [
    "What is multi-head attention?",
    "Knead the dough for ten minutes, then let it rise overnight.",
    "café crème & naïve résumé 東京",
    "",
    "a sentence long enough to be cut at the model's own limit " * 60,
]


@pytest.fixture(scope="module")
def exported(minilm_hf_home, tmp_path_factory):
    """(the model through sentence-transformers, its export, the cache folder)."""
    with pytest.MonkeyPatch.context() as patch:
        from huggingface_hub import constants

        patch.setenv("HF_HOME", str(minilm_hf_home))
        patch.setattr(constants, "HF_HUB_CACHE", str(minilm_hf_home / "hub"))
        from spyglass.encoders.sentence.model import SentenceEncoder

        model = SentenceEncoder.load("sentence-transformers/all-MiniLM-L6-v2", precision="fp32")
    cache = tmp_path_factory.mktemp("sentence-cache")
    assert export_sentence_model(model, cache) is not None
    onnx = OnnxSentenceEncoder.open(cache, model.model_id)
    assert onnx is not None
    return model, onnx, cache


def test_the_export_embeds_like_the_model(exported):
    model, onnx, _ = exported
    ours, theirs = onnx.encode_texts(TEXTS), model.encode_texts(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert (ours * theirs).sum(axis=1).min() >= 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    # and it still separates meanings as the model does: the question is nearer its paraphrase
    question, paraphrase, other = onnx.encode_texts(
        ["How does multi-head attention work?", "Explain the attention heads of a Transformer", "bread dough"]
    )
    assert question @ paraphrase > question @ other + 0.2


def test_the_export_is_made_once_per_model(exported):
    model, _, cache = exported
    graph = export_dir(cache, model.model_id, KIND) / GRAPH
    before = graph.stat().st_mtime_ns
    assert export_sentence_model(model, cache) is not None
    assert graph.stat().st_mtime_ns == before


def test_an_export_of_another_model_is_not_used(exported, tmp_path):
    _, onnx, _ = exported
    directory = export_dir(tmp_path, "sentence:some/model", KIND)
    directory.mkdir(parents=True)
    (directory / MANIFEST).write_text(json.dumps({**dataclasses.asdict(onnx.manifest), "model_id": "other"}))
    assert OnnxSentenceEncoder.open(tmp_path, "sentence:some/model") is None
    assert OnnxSentenceEncoder.open(tmp_path, "never:exported") is None
