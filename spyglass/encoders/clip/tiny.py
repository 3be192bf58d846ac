"""Tiny random-weight models written to disk in each backend's own format.

Tests and benchmarks load them through the normal loading path (a local model
directory), so the code that would load real weights is the code under test.
Building one takes well under a second and touches no network.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from spyglass._compat import ensure_torchvision_importable

ensure_torchvision_importable()
import open_clip  # noqa: E402

TINY_OPEN_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def build_open_clip(model_cfg: dict = TINY_OPEN_CLIP, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return open_clip.CLIP(**json.loads(json.dumps(model_cfg)))


def save_open_clip_dir(model: torch.nn.Module, model_cfg: dict, directory: Path) -> Path:
    """Write open_clip's ``local-dir`` format (default preprocessing)."""
    from spyglass.encoders.clip.openclip import save_local_dir

    return save_local_dir(model, model_cfg, directory)


# The vision tower of both tiny transformers models (CLIP and SigLIP): 16 patches of 8 px.
TINY_VISION = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}


def write_tiny_open_clip(directory: Path, seed: int = 0, model_cfg: dict = TINY_OPEN_CLIP) -> Path:
    """A random-weight open_clip model directory, loadable as the spec ``str(directory)``."""
    return save_open_clip_dir(build_open_clip(model_cfg, seed), model_cfg, directory)


def write_tiny_hf_clip(directory: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random-weight transformers ``CLIPModel`` directory (config, weights, tokenizer, processor)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407,
        },
        vision_config=TINY_VISION,
        projection_dim=32,
    )
    CLIPModel(config).save_pretrained(directory)
    CLIPTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        directory
    )
    return directory


def write_tiny_hf_siglip(directory: Path, seed: int = 0) -> Path:
    """A random-weight transformers ``SiglipModel`` directory with a small word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel

    words = "<pad> </s> <unk> a an the of photo dog cat red blue circle square on grass".split()
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=16
    )
    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config={
            "vocab_size": len(words),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config=TINY_VISION,
    )
    SiglipModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory
