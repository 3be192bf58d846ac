"""``Models``: the models one CLIP spec and the text settings search and index with.

Everything here is loaded when first needed (``Lazy``) and holds no collection state, so
collections that use the same spec can share one ``Models``: one copy of the weights in memory.
Searches prefer the exported query towers (no torch); ingest loads the full models and then
exports them once for later starts (``export_after_ingest``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from spyglass.errors import ModelSpecError, WeightsUnavailableError
from spyglass.runtime.lazy import Lazy
from spyglass.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder
    from spyglass.encoders.sentence import SentenceEncoder
    from spyglass.encoders.sentence_onnx import OnnxSentenceEncoder
    from spyglass.generator.backends import Backend
    from spyglass.indexer.ocr.reader import OcrReader

log = logging.getLogger(__name__)


class Models:
    """The CLIP model of ``spec``, its query tower, the text space's model, the OCR reader and the
    answer backend."""

    def __init__(self, settings: Settings, spec: str, *, encoder: Encoder | None = None) -> None:
        self.settings, self.spec = settings, spec
        self.encoder: Lazy[Encoder] = (
            Lazy.of(encoder) if encoder else Lazy(lambda: load_encoder(settings, spec))
        )
        self.query_encoder: Lazy[Encoder | QueryEncoder] = Lazy(self._query_encoder)
        self.text_model_id: Lazy[str | None] = Lazy(self._text_model_id)
        self.text_encoder: Lazy[SentenceEncoder] = Lazy(self._text_encoder)
        self.text_query_encoder: Lazy[SentenceEncoder | OnnxSentenceEncoder] = Lazy(self._text_query_encoder)
        self.ocr_reader: Lazy[OcrReader] = Lazy(self._ocr_reader)
        self.backend: Lazy[Backend] = Lazy(self._backend)

    def switched(self, spec: str, encoder: Encoder | None = None) -> Models:
        """Models for another CLIP model, sharing this one's text space model, OCR reader and answer backend."""
        models = Models(self.settings, spec, encoder=encoder)
        models.text_model_id, models.text_encoder = self.text_model_id, self.text_encoder
        models.text_query_encoder, models.ocr_reader = self.text_query_encoder, self.ocr_reader
        models.backend = self.backend
        return models

    @property
    def query_ready(self) -> bool:
        """Whether a query embeds without loading anything: its tower is open, or the full model is
        (a switch hands over the model it re-embedded with, and queries then use that)."""
        return self.query_encoder.loaded or self.encoder.loaded

    def _query_encoder(self) -> Encoder | QueryEncoder:
        """The exported text tower when this model has one, so a text query never loads torch;
        the full model when it is already loaded or no export exists."""
        settings = self.settings.encoder
        if self.encoder.loaded or not settings.fast_text:
            return self.encoder.get()
        from spyglass.encoders.query import QueryEncoder
        from spyglass.encoders.text_tower import TextTower

        model_id = self.configured_model_id()
        tower = TextTower.open(settings.cache_dir, model_id, threads=settings.threads) if model_id else None
        return self.encoder.get() if tower is None else QueryEncoder(tower, self.encoder.get)

    def configured_model_id(self) -> str | None:
        """The CLIP model's id without loading it (None: a builtin model not trained yet)."""
        if (encoder := self.encoder.peek()) is not None:
            return encoder.model_id
        from spyglass.encoders.spec import model_id_of, parse_spec

        spec = parse_spec(self.spec)
        if spec.backend == "builtin":
            from spyglass.encoders.builtin import trained_model_dir

            directory = trained_model_dir(self.settings.encoder.models_dir)
            return model_id_of(spec, directory) if directory else None
        try:
            return model_id_of(spec)
        except ModelSpecError:
            return None

    def _text_model_id(self) -> str | None:
        """The text space's model id (None: off), worked out once: for a local model it reads its files."""
        from spyglass.encoders.sentence import text_model_id

        return text_model_id(self.settings.text.model) if self.settings.text.model else None

    def text_load_options(self) -> dict:
        """``SentenceEncoder.load``'s arguments for the text space: here, and on a cluster's workers."""
        settings = self.settings.text
        return {
            "spec": settings.model,
            "device": self.settings.encoder.device,
            "precision": settings.precision,
            "batch_size": settings.batch_size,
        }

    def _text_encoder(self) -> SentenceEncoder:
        """The sentence-embedding model (raises WeightsUnavailableError when it is not here)."""
        from spyglass.encoders.sentence import SentenceEncoder

        return SentenceEncoder.load(**self.text_load_options())

    def _text_query_encoder(self) -> SentenceEncoder | OnnxSentenceEncoder:
        """What questions are embedded with: the model's ONNX export when there is one (no torch)."""
        if self.text_encoder.loaded or not self.settings.encoder.fast_text:
            return self.text_encoder.get()
        from spyglass.encoders.sentence_onnx import OnnxSentenceEncoder

        cache = self.settings.encoder.cache_dir
        return OnnxSentenceEncoder.open(cache, self.text_model_id.get()) or self.text_encoder.get()

    def _backend(self) -> Backend:
        """The answer backend the settings name (a VLM's weights load here, once for every collection)."""
        from spyglass.generator.backends import make_backend

        return make_backend(self.settings.generator, text_space=self.sentence_embedder)

    def sentence_embedder(self) -> Callable[[Sequence[str]], np.ndarray] | None:
        """The text space's model as a function of texts, None when the space is off or its model absent;
        the extractive backend ranks the sentences it quotes with it."""
        if self.text_model_id.get() is None:
            return None
        try:
            return self.text_query_encoder.get().encode_texts
        except WeightsUnavailableError:
            return None

    def _ocr_reader(self) -> OcrReader:
        """The OCR models, loaded when the first image with text needs them."""
        from spyglass.indexer.ocr.reader import OcrReader

        settings = self.settings
        return OcrReader(settings.encoder.models_dir, settings.ocr.language, settings.ocr.threads)

    def export_after_ingest(self, progress: bool) -> None:
        """After an ingest the full models are loaded anyway: export what later starts and searches
        need, once per model. An optional speed-up: a failure is logged, never raised."""
        self._export_clip(progress)
        self._export_sentence_model()

    def _export_sentence_model(self) -> None:
        if not (self.settings.encoder.fast_text and self.text_encoder.loaded):
            return
        from spyglass.encoders.sentence_onnx import export_sentence_model

        try:
            export_sentence_model(self.text_encoder.get(), self.settings.encoder.cache_dir)
        except Exception as exc:  # noqa: BLE001 - an optional speed-up must never fail an ingest
            log.warning("text-space model export failed, searches will load the full model: %s", exc)

    def _export_clip(self, progress: bool) -> None:
        """The text tower for searches (``text_tower``), then the rest for ingest and serve (``frozen``)."""
        from spyglass.encoders.frozen import frozen_exported
        from spyglass.encoders.text_tower import exported

        settings, encoder = self.settings.encoder, self.encoder.get()
        if not ((settings.fast_text or settings.fast_load) and encoder.text_exportable):
            return  # a frozen model is not text_exportable: it is the export
        text_missing = not exported(settings.cache_dir, encoder.model_id)
        frozen_missing = settings.fast_load and not frozen_exported(settings.cache_dir, encoder)
        if not (text_missing or frozen_missing):
            return
        from spyglass.encoders.frozen_export import export_frozen
        from spyglass.encoders.text_export import export_text_tower
        from spyglass.retriever.calibration import nonsense_queries

        if progress:
            print("preparing fast starts for this model (once per model)", file=sys.stderr)
        try:
            if text_missing:
                export_text_tower(encoder, settings.cache_dir, remember=nonsense_queries())
            if frozen_missing:
                export_frozen(encoder, settings.cache_dir)
        except Exception as exc:  # noqa: BLE001 - an optional speed-up must never fail an ingest
            log.warning("model export failed, later starts will load the full model: %s", exc)


def load_encoder(settings: Settings, spec: str) -> Encoder:
    """The CLIP model of ``spec``, with the configured threads and precision, frozen for inference."""
    from spyglass.encoders import load_encoder as load
    from spyglass.encoders.precision import set_threads

    set_threads(settings.encoder.threads)
    return load(spec, settings=settings.encoder, frozen=True)
