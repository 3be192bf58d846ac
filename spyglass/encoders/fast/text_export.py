"""Write the text-tower export that ``text_tower.TextTower`` reads (see there for why).

Runs where the full open_clip model is already loaded (after an ingest). The text
tower is copied in fp32 and exported with torch's dynamo ONNX exporter, whose
sequence length stays a dynamic dimension (the TorchScript exporter bakes attention
shapes in), so short queries stay short. onnxruntime then optimises the graph once
and saves it. The tokenizer is open_clip's own BPE vocabulary and merges, rebuilt
as a ``tokenizers`` model. Nothing is published until both are checked against the
original model on probe texts.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from spyglass.encoders.clip.openclip import OpenClipEncoder, encode_text_columns, pooling
from spyglass.encoders.fast.cache import MIN_COSINE, TOKENIZER, export_dir, exported, publish, save_optimised
from spyglass.encoders.fast.dynamo import export_onnx
from spyglass.encoders.fast.text_tower import GRAPH, KIND, MEMO, WEIGHTS, Manifest, TextTower

log = logging.getLogger(__name__)

# Short and long, punctuation, digits, accents, entities, non-Latin script, and over-long text.
PROBES = (
    "a dog",
    "Two children playing football on a beach at sunset.",
    "RE16-B invoice no. 2023/0042, total $1,299.00",
    "café crème & naïve résumé",
    "Tom &amp; Jerry's  \t double   spaces",
    "東京の夜景",
    "multi-head attention allows the model to jointly attend to information " * 6,
)


class _TextColumns(torch.nn.Module):
    """An fp32 copy of an open_clip text tower that runs on exactly the token columns it is given."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        tower = model if hasattr(model, "token_embedding") else model.text
        for name in ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection"):
            setattr(self, name, copy.deepcopy(getattr(tower, name)))
        self.register_buffer("attn_mask", tower.attn_mask.clone(), persistent=False)
        self.pool_type, self.eos_id = pooling(tower)
        self.float()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return encode_text_columns(self, tokens)


def export_text_tower(encoder: OpenClipEncoder, cache_dir: Path, remember: Sequence[str] = ()) -> Path | None:
    """Export ``encoder``'s text tower unless it is already there; None when it cannot or does not match.

    ``remember``: texts whose embeddings (from the original model) ship with the export.
    """
    if not encoder.text_exportable and not exported(cache_dir, encoder.model_id, KIND):
        return None
    return publish(
        export_dir(cache_dir, encoder.model_id, KIND), lambda work: _write(encoder, work, remember)
    )


def _write(encoder: OpenClipEncoder, work: Path, remember: Sequence[str]) -> Manifest | None:
    tokenizer = encoder.tokenizer
    _fast_tokenizer(tokenizer).save(str(work / TOKENIZER))
    _export_graph(encoder, work / GRAPH, tokenizer(list(PROBES[:2])))
    manifest = Manifest(
        model_id=encoder.model_id,
        dim=encoder.dim,
        context_length=int(tokenizer.context_length),
        sot=int(tokenizer.sot_token_id),
        eot=int(tokenizer.eot_token_id),
        min_cosine=0.0,
    )
    tower = TextTower(work, manifest)
    reference = tokenizer(list(PROBES)).numpy()
    ours = tower.tokenize(list(PROBES))
    ours = np.pad(ours, ((0, 0), (0, max(0, reference.shape[1] - ours.shape[1]))))
    if ours.shape != reference.shape or not (ours == reference).all():
        log.warning(
            "not exporting the text tower of %s: its tokenizer could not be reproduced", encoder.model_id
        )
        return None
    cosine = float((tower.encode_texts(list(PROBES)) * encoder.encode_texts(list(PROBES))).sum(axis=1).min())
    if cosine < MIN_COSINE:
        log.warning(
            "not exporting the text tower of %s: cosine %.5f < %s", encoder.model_id, cosine, MIN_COSINE
        )
        return None
    texts = sorted(set(remember))
    np.savez(work / MEMO, texts=np.array(texts, dtype=str), vectors=encoder.encode_texts(texts))
    manifest = replace(manifest, min_cosine=round(cosine, 6))
    manifest.write(work)
    return manifest


def _export_graph(encoder: OpenClipEncoder, path: Path, example: torch.Tensor) -> None:
    """Dynamo export with dynamic batch and sequence length, then onnxruntime's optimisation, saved."""
    module = _TextColumns(encoder.model).eval()
    example = example[:, : int((example != 0).sum(dim=1).max())]
    raw = path.with_suffix(".raw.onnx")
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("tokens", min=2, max=module.attn_mask.shape[0])}
    export_onnx(module, (example,), raw, inputs=["tokens"], outputs=["vectors"], dynamic_shapes=(dims,))
    save_optimised(raw, path, WEIGHTS)


def _fast_tokenizer(simple) -> object:
    """open_clip's ``SimpleTokenizer`` as a ``tokenizers`` BPE: same vocabulary, merges and splitting.

    Cleaning (ftfy, entities, whitespace, lower case) stays in Python (``text_tower.clean``).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    bpe = models.BPE(vocab=dict(simple.encoder), merges=merges, end_of_word_suffix="</w>")
    fast = Tokenizer(bpe)
    fast.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return fast
