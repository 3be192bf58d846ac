"""The text space's model exported to ONNX, so a search embeds its question without torch.

Importing sentence-transformers (and with it torch and transformers) takes 5-9 s here;
a one-off ``spyglass search`` should not pay that to embed one sentence. After an
ingest has loaded the model anyway, its transformer is exported once per model into
the user cache (its own folder, ``KIND``), with its
``tokenizers`` JSON, and optimised by onnxruntime once; pooling and normalisation run in numpy. An export is published only
after it matched the model on probe texts (identical token ids, cosine >= ``MIN_COSINE``).

Models whose pipeline is more than transformer -> mean or CLS pooling -> normalise
are not exported; they are loaded through sentence-transformers as before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from spyglass.encoders.fast.cache import (
    MANIFEST,
    MIN_COSINE,
    TOKENIZER,
    export_dir,
    publish,
    read_manifest,
    reader_options,
    save_optimised,
)

log = logging.getLogger(__name__)

KIND = "sentence-models"  # apart from CLIP's text towers: another kind of model
FORMAT = 1
# Texts per onnxruntime run, whatever the settings' batch: onnxruntime holds every layer's attention
# scores for the whole run (64 texts x 12 heads x 256 x 256 floats is 200 MB a tensor), fresh
# memory the kernel must fault in each time. Measured on 128 CISI abstracts (2-core AMX Xeon, under
# load): the peak above the loaded model was 1,453 MB in runs of 64, 471 in runs of 16, 279 in runs
# of 8; and runs of 8 were the fastest, 0.8x the time of 64 on those abstracts and 0.5-0.6x on 400
# wiki chunks (45 words each). Sorted by length, a run's texts are alike, so little is padded.
MAX_RUN = 8
GRAPH = "sentence.onnx"
WEIGHTS = "sentence.onnx.data"
PROBES = (
    "What is multi-head attention?",
    "Knead the dough for ten minutes, then let it rise overnight.",
    "RE16-B invoice no. 2023/0042, total $1,299.00",
    "café crème & naïve résumé 東京",
    "a passage long enough to be truncated at the model's own limit " * 40,
)


@dataclass(frozen=True)
class Manifest:
    model_id: str
    dim: int
    max_length: int
    pooling: str  # "mean" or "cls"
    normalize: bool
    min_cosine: float
    format: int = FORMAT


class OnnxSentenceEncoder:
    """Embeds texts like the exported sentence model: L2-normalised float32 rows of the text space."""

    def __init__(self, directory: Path, manifest: Manifest, *, batch_size: int = 64) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.manifest, self.model_id, self.dim = manifest, manifest.model_id, manifest.dim
        self.batch_size = min(batch_size, MAX_RUN)
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER))
        self.tokenizer.enable_truncation(manifest.max_length)
        self.tokenizer.enable_padding()
        self.session = onnxruntime.InferenceSession(
            str(directory / GRAPH), reader_options(), providers=["CPUExecutionProvider"]
        )
        self.inputs = {node.name for node in self.session.get_inputs()}

    @classmethod
    def open(cls, cache_dir: Path, model_id: str, *, batch_size: int = 64) -> OnnxSentenceEncoder | None:
        """The checked export of ``model_id``, or None when there is none (yet)."""
        directory = export_dir(cache_dir, model_id, KIND)
        manifest = read_manifest(directory, Manifest, model_id)
        return None if manifest is None else cls(directory, manifest, batch_size=batch_size)

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], np.int64),
        }
        return {name: value for name, value in feeds.items() if name in self.inputs}

    def encode_texts(self, texts, *, ensemble: bool = False) -> np.ndarray:
        """Embed texts (``ensemble`` is CLIP's prompt averaging and means nothing here).

        Batched in order of length, as sentence-transformers does: a batch is padded to its longest
        text, so mixing a title with a full passage would run the title at the passage's length.
        """
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            feeds = self.tokenize([texts[n] for n in rows])
            (hidden,) = self.session.run(None, feeds)
            out[rows] = pool(hidden, feeds["attention_mask"], self.manifest)
        return out


def pool(hidden: np.ndarray, mask: np.ndarray, manifest: Manifest) -> np.ndarray:
    """sentence-transformers' pooling (mean over real tokens, or the CLS token) and normalisation."""
    if manifest.pooling == "cls":
        vectors = hidden[:, 0]
    else:
        weights = mask[..., None].astype(np.float32)
        vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    if manifest.normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32)


def export_sentence_model(encoder, cache_dir: Path) -> Path | None:
    """Export ``encoder`` (a ``SentenceEncoder``) unless it is there already; None when it cannot."""
    shape = _exportable(encoder.model)
    if shape is None:
        log.info("not exporting %s: its pipeline is not transformer, pooling, normalise", encoder.model_id)
        return None
    return publish(export_dir(cache_dir, encoder.model_id, KIND), lambda work: _write(encoder, work, *shape))


def _exportable(model) -> tuple[str, bool] | None:
    """(pooling, normalize) for a transformer -> mean/CLS pooling -> optional normalise pipeline."""
    modules = [type(module).__name__ for module in model]
    if modules[:2] != ["Transformer", "Pooling"] or modules[2:] not in ([], ["Normalize"]):
        return None
    pooling = model[1].get_config_dict().get("pooling_mode")
    return (pooling, bool(modules[2:])) if pooling in ("mean", "cls") else None


def _write(encoder, work: Path, pooling: str, normalize: bool) -> bool:
    model = encoder.model
    model[0].tokenizer.backend_tokenizer.save(str(work / TOKENIZER))
    manifest = Manifest(encoder.model_id, encoder.dim, int(model.max_seq_length), pooling, normalize, 0.0)
    model.float()  # exported, and checked against, in fp32; the model goes back to its precision after
    try:
        return _export_and_check(encoder, work, manifest)
    finally:
        model.to(encoder.dtype)


def _export_and_check(encoder, work: Path, manifest: Manifest) -> bool:
    import torch

    from spyglass.encoders.fast.dynamo import export_onnx

    model = encoder.model
    transformer = model[0].auto_model.eval()
    example = model[0].tokenizer(list(PROBES[:2]), padding=True, return_tensors="pt")
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in example]
    dims = {name: {0: torch.export.Dim("batch"), 1: torch.export.Dim("tokens", max=512)} for name in names}

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(names, inputs))).last_hidden_state

    export_onnx(
        Hidden(),
        tuple(example[name] for name in names),
        work / "raw.onnx",
        inputs=names,
        outputs=["hidden"],
        dynamic_shapes=(tuple(dims[name] for name in names),),  # one entry: the *inputs tuple
    )
    save_optimised(work / "raw.onnx", work / GRAPH, WEIGHTS)
    exported = OnnxSentenceEncoder(work, manifest)
    reference = model.preprocess(list(PROBES))["input_ids"].numpy()
    ours = exported.tokenize(list(PROBES))["input_ids"]
    if ours.shape != reference.shape or not (ours == reference).all():
        log.warning("not exporting %s: its tokenizer could not be reproduced", encoder.model_id)
        return False
    cosine = float((exported.encode_texts(PROBES) * encoder.encode_texts(PROBES)).sum(axis=1).min())
    if cosine < MIN_COSINE:
        log.warning("not exporting %s: cosine %.5f < %s", encoder.model_id, cosine, MIN_COSINE)
        return False
    (work / MANIFEST).write_text(json.dumps(asdict(replace(manifest, min_cosine=round(cosine, 6))), indent=2))
    return True
