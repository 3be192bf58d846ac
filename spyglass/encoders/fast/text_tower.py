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

import html
import json
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spyglass.encoders.fast.cache import MANIFEST, TOKENIZER, export_dir, read_manifest, reader_options
from spyglass.encoders.prompts import ensemble as ensemble_of

KIND = "text-towers"
FORMAT = 1
GRAPH = "text.onnx"
WEIGHTS = "text.onnx.data"
MEMO = "memo.npz"
_WHITESPACE = re.compile(r"\s+")


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

    def __init__(
        self, directory: Path, manifest: Manifest, *, threads: int = 0, preload: bool = True
    ) -> None:
        """``preload``: start reading the graph now, in a thread. Without it the graph (250 MB for
        ViT-B-32) is read on the first text: an ingest that embeds only pictures never holds it."""
        self.manifest, self._directory, self._threads = manifest, directory, threads
        self.model_id, self.dim = manifest.model_id, manifest.dim
        self._memo = _read_memo(directory / MEMO)
        self._lock = threading.Lock()
        self._future: Future | None = None
        if preload:
            self._loaded()

    def _loaded(self) -> Future:
        """The session and tokenizer, being read: onnxruntime reads the graph without holding the
        GIL, so a cold CLI overlaps it with its imports."""
        with self._lock:
            if self._future is None:
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="text-tower")
                self._future = pool.submit(_load, self._directory, self._threads)
                pool.shutdown(wait=False)
            return self._future

    @classmethod
    def open(
        cls, cache_dir: Path, model_id: str, *, threads: int = 0, preload: bool = True
    ) -> TextTower | None:
        """The checked export of ``model_id``, or None when there is none (yet)."""
        directory = export_dir(cache_dir, model_id, KIND)
        manifest = read_manifest(directory, Manifest, model_id)
        return None if manifest is None else cls(directory, manifest, threads=threads, preload=preload)

    def tokenize(self, texts: list[str]) -> np.ndarray:
        """open_clip's token ids (SOT, BPE, EOT, truncated to the context length), padding trimmed."""
        limit = self.manifest.context_length - 2
        tokenizer = self._loaded().result()[1]
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
            (vectors,) = self._loaded().result()[0].run(None, {"tokens": self.tokenize(batch)})
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


def _read_memo(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as memo:
        return dict(zip(memo["texts"].tolist(), memo["vectors"]))
