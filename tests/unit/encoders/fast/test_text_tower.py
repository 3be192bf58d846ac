"""The exported CLIP text tower (``encoders/fast/text_tower.py``): it tokenizes and embeds like the model
it came from, remembers the texts embedded at export, and is never used for another model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spyglass.encoders.fast.cache import MANIFEST, export_dir
from spyglass.encoders.fast.text_tower import KIND, TextTower

TEXTS = [
    "a red circle",
    "A BLUE square on a white background",
    "green   triangle &amp; yellow star",
    "café crème, naïve résumé",
    "東京の夜景",
    "a very long caption that goes on and on " * 12,
]


@pytest.fixture(scope="module")
def tower(shapes_encoder, tmp_path_factory) -> TextTower:
    from spyglass.encoders.fast.text_export import export_text_tower

    cache = tmp_path_factory.mktemp("cache")
    assert export_text_tower(shapes_encoder, cache, remember=["remembered text"]) is not None
    opened = TextTower.open(cache, shapes_encoder.model_id)
    assert opened is not None
    return opened


def test_export_tokenizes_like_open_clip(tower, shapes_encoder):
    """Same ids as open_clip's tokenizer, truncation at the context length (with EOT last) included."""
    reference = shapes_encoder.tokenizer(TEXTS).numpy()
    ours = tower.tokenize(TEXTS)
    assert ours.shape[1] == reference.shape[1]  # the long caption fills the whole context
    assert (ours == reference).all()


def test_export_embeds_like_the_model(tower, shapes_encoder):
    ours, theirs = tower.encode_texts(TEXTS), shapes_encoder.encode_texts(TEXTS)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert (ours * theirs).sum(axis=1).min() >= 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    ensemble = tower.encode_texts(["a red circle"], ensemble=True)
    assert (ensemble @ shapes_encoder.encode_texts(["a red circle"], ensemble=True).T).item() >= 0.999


def test_remembered_texts_are_the_models_own(tower, shapes_encoder):
    """Texts embedded at export time (the calibration queries) come back as the model made them."""
    assert np.array_equal(
        tower.encode_texts(["remembered text"]), shapes_encoder.encode_texts(["remembered text"])
    )


def test_an_export_for_another_model_is_not_used(tower, tmp_path):
    directory = export_dir(tmp_path, "open_clip:some/model", KIND)
    directory.mkdir(parents=True)
    (directory / MANIFEST).write_text(json.dumps({**dataclasses.asdict(tower.manifest), "model_id": "other"}))
    assert TextTower.open(tmp_path, "open_clip:some/model") is None
    assert TextTower.open(tmp_path, "never:exported") is None
