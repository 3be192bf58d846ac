"""``Models``: the models one CLIP spec and the text settings search and index with.

Everything here is loaded when first needed (``Lazy``) and holds no collection state, so
collections that use the same spec can share one ``Models``: one copy of the weights in memory.
Searches embed text through the models' ONNX exports; ingest and serve run the CLIP model's ONNX
image tower where ``encoders.fast_precision`` allows (not with torch precisions, GPUs, or ``auto``
on AMX CPUs). A CLIP model is exported on its first use (``encoders.fast.export``); the text
space's model after its first ingest (which embeds its passages with the torch model; later ones
with the export).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from spyglass.errors import WeightsUnavailableError
from spyglass.runtime.lazy import Lazy
from spyglass.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from spyglass.encoders import Encoder
    from spyglass.encoders.fast.sentence import OnnxSentenceEncoder
    from spyglass.encoders.query import QueryEncoder
    from spyglass.encoders.sentence.model import SentenceEncoder
    from spyglass.generator.backends import Backend
    from spyglass.indexer.ocr.reader import OcrReader

log = logging.getLogger(__name__)


class Models:
    """The CLIP model of ``spec``, its query tower, the text space's model, the OCR reader and the
    answer backend."""

    def __init__(self, settings: Settings, spec: str, *, encoder: Encoder | None = None) -> None:
        self.settings, self.spec = settings, spec
        self.encoder: Lazy[Encoder] = (
            Lazy.of(encoder) if encoder else Lazy(lambda: load_encoder(settings, spec, self.kept_precision()))
        )
        self.query_encoder: Lazy[Encoder | QueryEncoder] = Lazy(self._query_encoder)
        self.text_model_id: Lazy[str | None] = Lazy(self._text_model_id)
        self.text_encoder: Lazy[SentenceEncoder] = Lazy(self._text_encoder)
        self.text_fast_encoder: Lazy[SentenceEncoder | OnnxSentenceEncoder] = Lazy(self._text_fast_encoder)
        self.ocr_reader: Lazy[OcrReader] = Lazy(self._ocr_reader)
        self.backend: Lazy[Backend] = Lazy(self._backend)

    def switched(self, spec: str, encoder: Encoder | None = None) -> Models:
        """Models for another CLIP model, sharing this one's text space model, OCR reader and answer backend."""
        models = Models(self.settings, spec, encoder=encoder)
        models.text_model_id, models.text_encoder = self.text_model_id, self.text_encoder
        models.text_fast_encoder, models.ocr_reader = self.text_fast_encoder, self.ocr_reader
        models.backend = self.backend
        return models

    @property
    def query_ready(self) -> bool:
        """Whether a query embeds without loading anything: its tower is open, or the full model is
        (a switch hands over the model it re-embedded with, and queries then use that)."""
        return self.query_encoder.loaded or self.encoder.loaded

    def _query_encoder(self) -> Encoder | QueryEncoder:
        """The exported text tower when this model has one, so a text query never loads an image
        tower; the model when it is already loaded or no export exists."""
        settings = self.settings.encoder
        if self.encoder.loaded or not settings.fast_text:
            return self.encoder.get()
        from spyglass.encoders import fast_precision
        from spyglass.encoders.fast.text_tower import TextTower
        from spyglass.encoders.query import QueryEncoder
        from spyglass.kinds import space_id

        model_id = self.configured_model_id()
        tower = TextTower.open(settings.cache_dir, model_id, threads=settings.threads) if model_id else None
        if tower is None:
            return self.encoder.get()
        # the ONNX tower's precision, or the torch model's space (bf16 weights included)
        precision = fast_precision(settings, model_id, self.kept_precision()) or "fp32"
        return QueryEncoder(tower, self.encoder.get, space_id(model_id, precision))

    def kept_precision(self) -> str | None:
        """The precision this model's vectors in the collection were made in (None: it has none yet);
        a collection keeps it whatever the setting says, until ``models use`` switches it."""
        from spyglass.store import Store

        model_id = self.configured_model_id()
        return None if model_id is None else Store.recorded_precision(self.settings.data_dir, model_id)

    def configured_model_id(self) -> str | None:
        """The CLIP model's id without loading it (None: a builtin model not trained yet)."""
        if (encoder := self.encoder.peek()) is not None:
            return encoder.model_id
        from spyglass.encoders import known_model_id

        return known_model_id(self.spec, self.settings.encoder)

    def configured_space_id(self) -> str | None:
        """The space this model's vectors are in here (``kinds.space_id``): its id, marked with the
        precision the collection keeps; what ``status`` counts, without loading the model."""
        if (encoder := self.encoder.peek()) is not None:
            return encoder.model_id
        from spyglass.kinds import space_id

        model_id = self.configured_model_id()
        return None if model_id is None else space_id(model_id, self.kept_precision() or "fp32")

    def _text_model_id(self) -> str | None:
        """The text space's model id (None: off), worked out once: for a local model it reads its files."""
        from spyglass.encoders.sentence.model import text_model_id

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
        from spyglass.encoders.sentence.model import SentenceEncoder

        return SentenceEncoder.load(**self.text_load_options())

    def _text_fast_encoder(self) -> SentenceEncoder | OnnxSentenceEncoder:
        """What passages and questions are embedded with: the model's ONNX export when there is one.

        Without torch, an ingest's text space stage holds ~400 MB less (torch and the model). The
        export is slower than torch on long passages (a 2-core AMX Xeon, 192 CISI abstracts: 11.1 s
        in onnxruntime runs of 8 against 7.1-8.0 s for torch fp32), and the same on a question,
        which is one short run.
        """
        if self.text_encoder.loaded or not self.settings.encoder.fast_text:
            return self.text_encoder.get()
        from spyglass.encoders.fast.sentence import OnnxSentenceEncoder

        cache = self.settings.encoder.cache_dir
        found = OnnxSentenceEncoder.open(
            cache, self.text_model_id.get(), batch_size=self.settings.text.batch_size
        )
        return found or self.text_encoder.get()

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
            return self.text_fast_encoder.get().encode_texts
        except WeightsUnavailableError:
            return None

    def _ocr_reader(self) -> OcrReader:
        """The OCR models, loaded when the first image with text needs them."""
        from spyglass.indexer.ocr.reader import OcrReader

        settings = self.settings
        return OcrReader(settings.encoder.models_dir, settings.ocr.language, settings.ocr.threads)

    def export_after_ingest(self, progress: bool) -> None:
        """After an ingest that ran a full model (the text space's, or a CLIP model kept on torch by
        its precision), export what later searches need, once per model."""
        settings = self.settings.encoder
        if settings.fast_text and self.encoder.loaded:
            from spyglass.encoders.fast.export import export_clip
            from spyglass.retriever.calibration import nonsense_queries

            export_clip(
                self.encoder.get(),
                settings.cache_dir,
                remember=nonsense_queries(),
                images=False,
                progress=progress,
            )
        self._export_sentence_model()

    def _export_sentence_model(self) -> None:
        if not (self.settings.encoder.fast_text and self.text_encoder.loaded):
            return
        from spyglass.encoders.fast.sentence import export_sentence_model

        try:
            export_sentence_model(self.text_encoder.get(), self.settings.encoder.cache_dir)
        except Exception as exc:  # noqa: BLE001 - an optional speed-up must never fail an ingest
            log.warning("text-space model export failed, searches will load the full model: %s", exc)


def load_encoder(settings: Settings, spec: str, keep: str | None = None) -> Encoder:
    """The CLIP model of ``spec`` for ingest and serve: its ONNX exports in the collection's precision
    (``keep``) or the configured one, exported first, in a child process, on the model's first use
    (see module docstring); the torch model where they are not allowed or the export failed."""
    from spyglass.encoders import cpu_device, fast_allowed
    from spyglass.encoders import load_encoder as load

    options = settings.encoder
    if fast_allowed(options, cpu_device(options.device), keep):
        from spyglass.encoders.fast.export import export_in_child
        from spyglass.retriever.calibration import nonsense_queries

        export_in_child(spec, options, remember=nonsense_queries())
    encoder = load(spec, settings=options, frozen=True, keep=keep)
    if encoder.text_exportable:  # the torch model
        from spyglass.encoders.precision import set_threads

        set_threads(options.threads)
    return encoder
