"""Both backends, loaded from tiny random-weight model directories through the normal loading path."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from spyglass.encoders import load_encoder
from spyglass.errors import ModelSpecError
from spyglass.settings import EncoderSettings

TEXTS = ["a dog", "a photograph of a very small red bicycle leaning on a wall", "cat", "x"]


def _images(count: int = 5) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + 7 * i, 50, 3), dtype=np.uint8)) for i in range(count)]


@pytest.fixture(params=["open_clip", "hf"])
def model_dir(request):
    return request.getfixturevalue("tiny_open_clip_dir" if request.param == "open_clip" else "tiny_hf_dir")


def _load(model_dir, tmp_path, **settings):
    return load_encoder(str(model_dir), EncoderSettings(**{"precision": "fp32", **settings}))


def test_shapes_dtype_and_unit_norm(model_dir, tmp_path):
    encoder = _load(model_dir, tmp_path)
    images, texts = encoder.encode_images(_images()), encoder.encode_texts(TEXTS)
    assert images.shape == (5, encoder.dim) and texts.shape == (4, encoder.dim)
    assert images.dtype == np.float32 and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    assert encoder.encode_texts([]).shape == (0, encoder.dim)
    assert encoder.encode_images([]).shape == (0, encoder.dim)


def test_model_id_is_stable_and_tied_to_weights(model_dir, tmp_path):
    first, second = _load(model_dir, tmp_path), _load(model_dir, tmp_path)
    assert first.model_id == second.model_id
    assert first.model_id.startswith(("open_clip:local/", "hf:local/"))


def test_deterministic_and_batch_size_invariant(model_dir, tmp_path):
    big, small = _load(model_dir, tmp_path, batch_size=64), _load(model_dir, tmp_path, batch_size=2)
    images = _images()
    np.testing.assert_allclose(big.encode_images(images), big.encode_images(images), atol=0)
    np.testing.assert_allclose(big.encode_images(images), small.encode_images(images), atol=1e-5)
    np.testing.assert_allclose(big.encode_texts(TEXTS), small.encode_texts(TEXTS), atol=1e-5)


def test_different_inputs_differ(model_dir, tmp_path):
    encoder = _load(model_dir, tmp_path)
    texts = encoder.encode_texts(TEXTS)
    assert np.abs(texts[0] - texts[1]).max() > 1e-3


def test_bf16_weights_stay_close_to_fp32(model_dir, tmp_path):
    fp32, bf16 = _load(model_dir, tmp_path), _load(model_dir, tmp_path, precision="bf16")
    assert str(bf16.dtype) == "torch.bfloat16"
    images = _images()
    image_cos = (fp32.encode_images(images) * bf16.encode_images(images)).sum(axis=1)
    text_cos = (fp32.encode_texts(TEXTS) * bf16.encode_texts(TEXTS)).sum(axis=1)
    assert image_cos.min() >= 0.999, image_cos
    assert text_cos.min() >= 0.999, text_cos


def test_trimmed_text_equals_padded(model_dir, tmp_path):
    encoder = _load(model_dir, tmp_path)
    trimmed = encoder.encode_texts(TEXTS)
    padded = encoder.encode_tokens_padded(TEXTS).numpy()
    padded /= np.linalg.norm(padded, axis=1, keepdims=True)
    np.testing.assert_allclose(trimmed, padded, atol=2e-6)


def test_open_clip_actually_trims(tiny_open_clip_dir, tmp_path, monkeypatch):
    """The trimmed path must run on fewer than context_length tokens, or it saves nothing."""
    encoder = _load(tiny_open_clip_dir, tmp_path)
    seen = []
    original = encoder.model.token_embedding.forward
    monkeypatch.setattr(
        encoder.model.token_embedding, "forward", lambda t: seen.append(t.shape) or original(t)
    )
    encoder.encode_texts(["a dog", "cat"])
    assert seen and seen[0][1] == 4  # <sot> a dog <eot>


def test_prompt_ensemble_averages_templates(model_dir, tmp_path):
    from spyglass.encoders import PROMPT_TEMPLATES

    encoder = _load(model_dir, tmp_path)
    ensembled = encoder.encode_texts(["a dog", "cat"], ensemble=True)
    np.testing.assert_allclose(np.linalg.norm(ensembled, axis=1), 1, atol=1e-5)
    manual = encoder.encode_texts([t.format("a dog") for t in PROMPT_TEMPLATES]).mean(axis=0)
    np.testing.assert_allclose(ensembled[0], manual / np.linalg.norm(manual), atol=1e-5)
    assert not np.allclose(ensembled[0], encoder.encode_texts(["a dog"])[0], atol=1e-3)


def test_preprocess_is_the_models_own(tiny_open_clip_dir, tiny_hf_dir, tmp_path):
    import open_clip
    from transformers import CLIPImageProcessor

    image = _images(1)[0]
    encoder = _load(tiny_open_clip_dir, tmp_path)
    _, _, reference = open_clip.create_model_and_transforms(f"local-dir:{tiny_open_clip_dir}")
    assert encoder.preprocess(image).equal(reference(image))
    hf = _load(tiny_hf_dir, tmp_path)
    expected = CLIPImageProcessor.from_pretrained(tiny_hf_dir)(images=image, return_tensors="pt")[
        "pixel_values"
    ][0]
    assert hf.preprocess(image).equal(expected)
    assert tuple(encoder.preprocess(image).shape) == (3, encoder.image_size, encoder.image_size)


def test_hf_siglip_pads_to_max_length_so_batch_mates_do_not_matter(tmp_path):
    """SigLIP pools without a causal mask, so padding must be the fixed length it was trained with."""
    from spyglass.encoders.clip.tiny import write_tiny_hf_siglip

    encoder = _load(write_tiny_hf_siglip(tmp_path / "siglip"), tmp_path)
    assert encoder.padding == "max_length" and encoder.model_id.startswith("hf:local/")
    alone = encoder.encode_texts(["a dog"])
    with_longer = encoder.encode_texts(["a dog", "the photo of a red circle on grass"])
    np.testing.assert_allclose(alone[0], with_longer[0], atol=1e-5)
    images = encoder.encode_images(_images(3))
    assert images.shape == (3, encoder.dim) and np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)


def test_weights_are_loaded_not_initialised(tiny_open_clip_dir, tmp_path):
    """Loading skips random initialisation: every parameter must then come from the checkpoint."""
    from safetensors.torch import load_file

    normal = torch.nn.init.normal_
    encoder = load_encoder(str(tiny_open_clip_dir), EncoderSettings(precision="fp32", cache_dir=tmp_path))
    assert torch.nn.init.normal_ is normal  # the initialisers are put back
    saved = load_file(str(next(tiny_open_clip_dir.glob("*.safetensors"))))
    loaded = encoder.model.state_dict()
    assert saved.keys() <= loaded.keys() and all(torch.equal(loaded[k], saved[k].float()) for k in saved)
    without_weights = tmp_path / "config-only"
    without_weights.mkdir()
    shutil.copy(tiny_open_clip_dir / "open_clip_config.json", without_weights)
    with pytest.raises(ModelSpecError, match="could not load its weights"):
        load_encoder(str(without_weights), EncoderSettings(precision="fp32", cache_dir=tmp_path))
