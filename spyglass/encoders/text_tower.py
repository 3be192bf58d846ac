"""A model's text tower on its own, exported to ONNX: text queries answered without torch.

A one-off ``spyglass search`` used to spend 6-10 s importing torch and open_clip and
building the whole model (image tower included) to embed a few words. The first
ingest with an open_clip model therefore exports its text tower (``text_export``)
into the user cache, keyed by ``model_id``: the ONNX graph, the tokenizer as a
``tokenizers`` JSON, and the embeddings of fixed texts the retriever always needs
(its calibration queries). Later processes load that with onnxruntime in a fraction
of a second.

An export is used only after it was checked against the model it came from
(identical token ids, cosine >= ``MIN_COSINE`` on probe texts), and its manifest is
written last, into a directory renamed into place: a half-written export is never read.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from spyglass.encoders.prompts import ensemble as ensemble_of

MIN_COSINE = 0.999
FORMAT = 1
MANIFEST = "manifest.json"
GRAPH = "text.onnx"
WEIGHTS = "text.onnx.data"
TOKENIZER = "tokenizer.json"
MEMO = "memo.npz"
_WHITESPACE = re.compile(r"\s+")
M = TypeVar("M")  # an export's manifest class (a dataclass with model_id and format)


def export_dir(cache_dir: Path, model_id: str, kind: str = "text-towers") -> Path:
    """Where the ``kind`` of export of ``model_id`` lives (model ids hold slashes and colons; the hash
    does not)."""
    return cache_dir / kind / hashlib.sha256(model_id.encode()).hexdigest()[:16]


def exported(cache_dir: Path, model_id: str) -> bool:
    """Whether a checked export of ``model_id`` has been published."""
    return (export_dir(cache_dir, model_id) / MANIFEST).exists()


def read_manifest(directory: Path, kind: type[M], model_id: str) -> M | None:
    """The published manifest of ``model_id``'s export in ``directory``, if it is there and current."""
    try:
        manifest = kind(**json.loads((directory / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if manifest.model_id != model_id or manifest.format != kind.format:
        return None
    return manifest


def publish(target: Path, write: Callable[[Path], object]) -> Path | None:
    """Run ``write`` into a fresh work directory, then rename it to ``target`` if it succeeded.

    ``write`` returns something true once the export is complete and checked. The rename is
    the publication: a reader never sees a half-written export, and when two processes export
    the same model at once, the first rename wins and the other's work is dropped.
    """
    if (target / MANIFEST).exists():
        return target
    work = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if not write(work):
            return None
        try:
            work.rename(target)
        except OSError:  # another process published the same export first
            if not (target / MANIFEST).exists():
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def save_optimised(raw: Path, graph: Path, weights: str) -> None:
    """Let onnxruntime optimise the exported ``raw`` graph once and save it as ``graph``; ``raw`` is removed.

    Readers then open it with optimisation off (it would cost every cold start), and the
    weights go to the side file ``weights``, memory-mapped at load instead of parsed
    out of the protobuf (0.1 s, not 0.5, for a CLIP text tower).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(graph)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", weights)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    onnxruntime.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    raw.unlink()


@dataclass(frozen=True)
class Manifest:
    model_id: str
    dim: int
    context_length: int
    sot: int
    eot: int
    min_cosine: float
    format: int = FORMAT

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(json.dumps(asdict(self), indent=2))


class TextTower:
    """Embeds texts like the model's own text tower: L2-normalised float32 rows in its CLIP space."""

    def __init__(self, directory: Path, manifest: Manifest, *, threads: int = 0) -> None:
        self.manifest = manifest
        self.model_id, self.dim = manifest.model_id, manifest.dim
        self._memo = _read_memo(directory / MEMO)
        # onnxruntime reads the graph without holding the GIL: a cold CLI overlaps it with its imports.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="text-tower")
        self._loaded = pool.submit(_load, directory, threads)
        pool.shutdown(wait=False)

    @classmethod
    def open(cls, cache_dir: Path, model_id: str, *, threads: int = 0) -> TextTower | None:
        """The checked export of ``model_id``, or None when there is none (yet)."""
        directory = export_dir(cache_dir, model_id)
        manifest = read_manifest(directory, Manifest, model_id)
        return None if manifest is None else cls(directory, manifest, threads=threads)

    def tokenize(self, texts: list[str]) -> np.ndarray:
        """open_clip's token ids (SOT, BPE, EOT, truncated to the context length), padding trimmed."""
        limit = self.manifest.context_length - 2
        tokenizer = self._loaded.result()[1]
        rows = [
            [self.manifest.sot, *encoding.ids[:limit], self.manifest.eot]
            for encoding in tokenizer.encode_batch([clean(text) for text in texts])
        ]
        tokens = np.zeros((len(rows), max(map(len, rows))), np.int64)
        for row, ids in zip(tokens, rows):
            row[: len(ids)] = ids
        return tokens

    def encode_texts(self, texts: list[str], *, ensemble: bool = False) -> np.ndarray:
        """Embed texts; texts embedded at export time come from the memo, computed by the original model."""
        texts = list(texts)
        if ensemble and texts:
            return ensemble_of(self.encode_texts, texts)
        known = dict(self._memo)
        missing = sorted({text for text in texts if text not in known})
        for start in range(0, len(missing), 64):
            batch = missing[start : start + 64]
            (vectors,) = self._loaded.result()[0].run(None, {"tokens": self.tokenize(batch)})
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            known.update(zip(batch, vectors.astype(np.float32)))
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([known[text] for text in texts])


def clean(text: str) -> str:
    """open_clip's cleaning before BPE: ftfy, HTML entities, whitespace, lower case.

    ftfy is imported only for text it could change (non-ASCII, control characters,
    entities), so a plain query does not pay for it.
    """
    if not (text.isascii() and text.isprintable() and "&" not in text):
        import ftfy

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


def _load(directory: Path, threads: int) -> tuple:
    """The onnxruntime session and the tokenizer."""
    import onnxruntime
    from tokenizers import Tokenizer

    session = onnxruntime.InferenceSession(
        str(directory / GRAPH), reader_options(threads), providers=["CPUExecutionProvider"]
    )
    return session, Tokenizer.from_file(str(directory / TOKENIZER))


def reader_options(threads: int = 0):
    """Session options for a published export that embeds queries.

    The graph was optimised when it was exported; doing it again would cost every cold start.
    The thread pool does not spin after a run: a query's embedding is one short run, and
    spinning threads would hold the cores that the search's own SQLite and FAISS work needs
    next (p50 of a CISI text query, 2 cores: 80 ms spinning, 52 ms not).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _read_memo(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as memo:
        return dict(zip(memo["texts"].tolist(), memo["vectors"]))
