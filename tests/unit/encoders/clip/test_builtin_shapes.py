"""The synthetic shapes data and the builtin:shapes model trained on it."""

from __future__ import annotations

import numpy as np
import torch

from spyglass.encoders.clip import shapes
from spyglass.encoders.clip.contrastive import clip_loss


def test_generated_data_is_deterministic_and_balanced():
    first, second = shapes.generate(48, seed=3), shapes.generate(48, seed=3)
    assert [s.caption for s in first] == [s.caption for s in second]
    assert np.array_equal(np.asarray(first[5].image), np.asarray(second[5].image))
    assert {s.label for s in first} == set(shapes.class_names())
    assert all(s.colour in s.caption and s.shape in s.caption for s in first)


def test_shape_is_drawn_in_its_colour():
    sample = shapes.generate(1, seed=0)[0]  # a red circle
    pixels = np.asarray(sample.image).reshape(-1, 3).astype(int)
    reddish = (pixels[:, 0] > 170) & (pixels[:, 1] < 80) & (pixels[:, 2] < 80)
    assert sample.label == "a red circle" and reddish.mean() > 0.05


def test_clip_loss_prefers_matching_pairs():
    features = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(np.log(20.0))
    matched = clip_loss(features, features, scale, None)
    shuffled = clip_loss(features, features.roll(1, dims=0), scale, None)
    assert matched < shuffled


def test_clip_loss_lets_a_class_share_its_target():
    """Labels change which features are best: without them every item must beat all others
    (distinct features win); with them the items of one class share the target (alike ones win)."""
    scale = torch.tensor(np.log(20.0))
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    alike = torch.eye(16)[:4].repeat_interleave(2, dim=0)  # each class's two items identical
    distinct = torch.eye(16)[:8]  # every item its own direction
    assert clip_loss(alike, alike, scale, None) > clip_loss(distinct, distinct, scale, None) + 0.5
    assert clip_loss(alike, alike, scale, labels) < clip_loss(distinct, distinct, scale, labels) - 0.5


def test_builtin_shapes_retrieves_held_out_images(shapes_encoder):
    """The bar the end-to-end tests rely on: real retrieval signal, far above chance (1/24)."""
    held_out = shapes.generate(240, seed=12345)
    names = shapes.class_names()
    images = shapes_encoder.encode_images([s.image for s in held_out])
    queries = shapes_encoder.encode_texts(names)
    scores = images @ queries.T
    image_to_class = np.mean([names[i] == s.label for i, s in zip(scores.argmax(axis=1), held_out)])
    class_to_image = np.mean([held_out[i].label == name for name, i in zip(names, scores.argmax(axis=0))])
    assert image_to_class >= 0.8, image_to_class
    assert class_to_image >= 0.8, class_to_image
    assert shapes_encoder.model_id.startswith("builtin:shapes/")


def test_builtin_shapes_is_cached_not_retrained(data_dir, shapes_encoder):
    from spyglass.encoders import load_encoder
    from spyglass.settings import EncoderSettings

    again = load_encoder("builtin:shapes", EncoderSettings(precision="fp32"))
    assert again.model_id == shapes_encoder.model_id
