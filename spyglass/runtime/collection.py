"""``CollectionState``: what one collection (a data directory) holds open over its ``Models``.

The catalog and its vector indexes (``store``, and ``text_store`` for the text space), the item
stages the settings enable, the retriever and the generator. Each part is made when first used.
A model switch makes a new state over the new models (``switched``): searches running in other
threads keep the old one, whole, until they finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from spyglass.errors import SpyglassError, WeightsUnavailableError
from spyglass.indexer.stages import ItemStage, run_stages, stage_class
from spyglass.runtime.lazy import Lazy
from spyglass.runtime.models import Models
from spyglass.settings import Settings
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.encoders.fast.sentence import OnnxSentenceEncoder
    from spyglass.encoders.query import QueryEncoder
    from spyglass.generator import Generator
    from spyglass.indexer import IndexReport
    from spyglass.retriever import Retriever

log = logging.getLogger(__name__)


class CollectionState:
    def __init__(self, settings: Settings, models: Models, *, store: Store | None = None) -> None:
        self.settings, self.models = settings, models
        self.store: Lazy[Store] = (
            Lazy.of(store) if store else Lazy(lambda: self.open_store(self._space_model()))
        )
        self.text_store: Lazy[Store] = Lazy(lambda: self.open_store(models.text_fast_encoder.get()))
        self.stages: Lazy[list[ItemStage]] = Lazy(self._stages)
        self.retriever: Lazy[Retriever] = Lazy(self._retriever)
        self.generator: Lazy[Generator] = Lazy(self._generator)

    def switched(self, models: Models, store: Store | None = None) -> CollectionState:
        """The state for another CLIP model (and its store, if open); the text space's store carries over."""
        state = CollectionState(self.settings, models, store=store)
        state.text_store = self.text_store
        return state

    @property
    def ready(self) -> bool:
        """Whether a search answers without loading anything: the query model and the index are open."""
        return self.models.query_ready and self.store.loaded

    def _space_model(self) -> Encoder | QueryEncoder:
        """What names the CLIP space and its size: the model when an ingest loaded it, so that an
        ingest does not also read the query tower (250 MB for ViT-B-32); else the query tower."""
        models = self.models
        return models.encoder.get() if models.encoder.loaded else models.query_encoder.get()

    def open_store(self, model) -> Store:
        """One space's store (its model's vectors and index) over the collection's catalog."""
        return Store(
            self.settings.data_dir,
            model.model_id,
            model.dim,
            index=self.settings.index.kind,
            index_options=self.settings.index.options,
        )

    def text_space(self) -> tuple[Store, OnnxSentenceEncoder] | None:
        """The text space for a search: None while it is off, still empty, or its model is not here.

        Asked per search, so a space filled by another process (or by a later ingest) is used
        from then on; until then the answer costs one indexed lookup, and no model is loaded.
        A filled space needs the model's ONNX export or its weights, not both.
        """
        models = self.models
        if self.text_store.loaded:
            return self.text_store.get(), models.text_fast_encoder.get()
        model_id = models.text_model_id.get()
        if model_id is None or not self.store.get().has_vectors(model_id):
            return None
        try:  # the ONNX export answers without the weights; only without both is the space unusable
            return self.text_store.get(), models.text_fast_encoder.get()
        except WeightsUnavailableError as exc:
            log.warning("searching without the text space: %s", exc)
            return None

    def _stages(self) -> list[ItemStage]:
        """The item stages the settings enable, in order; the text space's embedding comes last."""
        settings, models = self.settings, self.models
        stages = [stage_class(name)() for name in settings.ingest.stages]
        if settings.ocr.enabled:
            stages.append(self.ocr_stage())
        vocabulary = settings.labels.vocabulary
        if vocabulary and (model_id := models.configured_model_id()) is not None:  # None: no vectors yet
            stages.append(self.label_stage(vocabulary, model_id))
        if (text_model := models.text_model_id.get()) is not None:
            from spyglass.indexer.text_space import TextSpaceStage

            stages.append(
                TextSpaceStage(
                    text_model, models.text_fast_encoder.get, self.text_store.get, models.text_load_options()
                )
            )
        return stages

    def ocr_stage(self) -> ItemStage:
        from spyglass.indexer.ocr.stage import OcrStage

        settings = self.settings.ocr
        return OcrStage(
            self.models.ocr_reader.get,
            self.store.get,
            max_pixels=settings.max_pixels,
            sparse_page_chars=settings.sparse_page_chars,
            reader_options={
                "cache_dir": str(self.settings.encoder.models_dir),
                "language": settings.language,
                "threads": settings.threads,
            },
        )

    def label_stage(self, labels: Sequence[str], model_id: str) -> ItemStage:
        from spyglass.indexer.labels import label_stage

        return label_stage(labels, self.settings.labels, model_id, self.models.encoder.get, self.store.get)

    def catch_up(self, only: Sequence[str] | None = None) -> IndexReport:
        """Run the item stages (those named in ``only``, else all) on whatever they have not processed yet:
        after a stage was added or upgraded, or (``only=["ocr"]``) to read text in an existing collection."""
        from spyglass.indexer import IndexReport

        enabled = self.stages.get()
        stages = [stage for stage in enabled if only is None or stage.name in only]
        if only is not None and not stages:
            names = ", ".join(stage.name for stage in enabled) or "none"
            raise SpyglassError(f"no enabled stage named {', '.join(only)} (enabled: {names})")
        started = time.monotonic()
        report = IndexReport()
        report.add_stages(run_stages(self.store.get(), stages))
        report.seconds = time.monotonic() - started
        return report

    def label(self, labels: Sequence[str], under: str | None) -> int:
        """Tag the pictures at or under ``under`` (all with None) with their likeliest ``labels``, from
        the stored vectors. Automatic tags from another vocabulary or model are replaced; a person's stay."""
        from spyglass.indexer.labels import vocabulary

        if not vocabulary(labels):
            raise SpyglassError("give at least one label, e.g. --labels 'cat,dog,receipt'")
        store = self.store.get()
        (report,) = run_stages(store, [self.label_stage(labels, store.model_id)], under=under)
        if report.skipped:
            raise SpyglassError(report.skipped)
        return report.processed

    def _retriever(self) -> Retriever:
        # loads the model before the imports below, to overlap them
        query_encoder = self.models.query_encoder.get()
        from spyglass.retriever import Retriever

        return Retriever(
            self.store.get(),
            query_encoder,
            text_space=self.text_space,
            ensemble=self.settings.encoder.prompt_ensemble,
            max_pixels=self.settings.ingest.max_image_pixels,
        )

    def _generator(self) -> Generator:
        from spyglass.generator import Generator
        from spyglass.generator.backends import GenerationParams

        settings = self.settings.generator
        params = GenerationParams(
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            n=settings.n,
            stop=list(settings.stop) or None,
            seed=settings.seed,
        )
        return Generator(
            self.retriever.get(),
            self.models.backend.get(),
            max_images=settings.max_images,
            max_chars=settings.max_chars,
            image_side=settings.image_side,
            params=params,
            max_n=settings.max_n,
        )

    def status(self) -> dict:
        """Counts, model, index type, re-index needs, stage backlogs and the latest errors.

        Read from the catalog alone unless the store is already open: no model is loaded.
        """
        from spyglass.versions import describe

        stages = [(stage.name, stage.version, stage.kinds) for stage in self.stages.get()]
        if (store := self.store.peek()) is not None:
            info = {**store.status(), "errors_list": store.errors(), "stages": store.stage_backlog(stages)}
        else:
            info = Store.inspect(self.settings.data_dir, self.models.configured_space_id(), stages)
        versions, progress = info.pop("model_versions"), info.pop("switch_progress")
        info["models"] = describe(versions, self.settings.encoder.model, progress)
        return {**info, "data_dir": str(self.settings.data_dir)}

    def close(self) -> None:
        for slot in (self.store, self.text_store):
            if (store := slot.peek()) is not None:
                store.close()
