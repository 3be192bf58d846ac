"""``Engine``: the one facade the CLI, the API and library users share.

It owns the settings, loads the encoder once, opens the store for that encoder's
model, and exposes the operations: index, tag, search, ask, evaluate, status.

The model, torch and the ingest pipeline are imported when an operation first needs
them, so ``status`` (and the CLI's ``--help`` and ``models``) answer at once on a
machine with no weights.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.errors import ModelSpecError, SpyglassError, WeightsUnavailableError
from spyglass.indexer.stages import ItemStage, run_stages, stage_class
from spyglass.settings import Settings
from spyglass.store import PERSON, Store

if TYPE_CHECKING:
    import numpy as np

    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder
    from spyglass.encoders.sentence import SentenceEncoder
    from spyglass.encoders.sentence_onnx import OnnxSentenceEncoder
    from spyglass.filters import Filters
    from spyglass.generator import Answer, Generator, PromptOptions
    from spyglass.images import ImageSource
    from spyglass.indexer import IndexReport
    from spyglass.indexer.ocr.reader import OcrReader
    from spyglass.indexer.ray_executor import RayExecutor
    from spyglass.indexer.reembed import ReembedReport
    from spyglass.retriever import Query, RankingOptions, Retriever, SearchResponse
    from spyglass.retriever.evaluation import EvalReport
    from spyglass.training.tune import TuneOptions, TuneReport

log = logging.getLogger(__name__)
FOLLOW_INTERVAL_S = 0.5  # how often a search looks whether another process switched the model


class Engine:
    def __init__(self, settings: Settings | None = None, *, encoder: Encoder | None = None) -> None:
        self.settings = settings or Settings()
        self._pinned = encoder is not None  # a given encoder is used whatever the data directory records
        self._followed = 0.0  # monotonic time of the last look for a model switch by another process
        self._retired: list[Store] = []  # stores of models switched away from, closed with the engine
        if encoder is not None:
            self.__dict__["encoder"] = encoder

    @cached_property
    def encoder(self) -> Encoder:
        return self._load_encoder(self.model_spec())

    def _load_encoder(self, spec: str) -> Encoder:
        from spyglass.encoders import load_encoder
        from spyglass.encoders.precision import set_threads

        set_threads(self.settings.encoder.threads)
        return load_encoder(spec, settings=self.settings.encoder, frozen=True)

    def model_spec(self) -> str:
        """The CLIP model this data directory searches with (see ``spyglass.versions``)."""
        from spyglass.versions import active_spec

        return active_spec(Store.recorded_models(self.settings.data_dir), self.settings.encoder.model)

    @cached_property
    def query_encoder(self) -> Encoder | QueryEncoder:
        """What searches embed with: the exported text tower when this model has one, so a text
        query never loads torch; the full model when it is already loaded or no export exists."""
        settings = self.settings.encoder
        if "encoder" in self.__dict__ or not settings.fast_text:
            return self.encoder
        from spyglass.encoders.query import QueryEncoder
        from spyglass.encoders.text_tower import TextTower

        model_id = self._configured_model_id()
        tower = TextTower.open(settings.cache_dir, model_id, threads=settings.threads) if model_id else None
        return self.encoder if tower is None else QueryEncoder(tower, lambda: self.encoder)

    @cached_property
    def store(self) -> Store:
        return self._open_store(self.query_encoder)

    def _open_store(self, model: Encoder | QueryEncoder | SentenceEncoder | OnnxSentenceEncoder) -> Store:
        """One space's store (its model's vectors and index) over the shared catalog."""
        return Store(
            self.settings.data_dir,
            model.model_id,
            model.dim,
            index=self.settings.index.kind,
            index_options=self.settings.index.options,
        )

    @cached_property
    def text_encoder(self) -> SentenceEncoder:
        """The text space's sentence-embedding model (raises WeightsUnavailableError when it is not here)."""
        from spyglass.encoders.sentence import SentenceEncoder

        return SentenceEncoder.load(**self._text_load_options())

    def _text_load_options(self) -> dict:
        """``SentenceEncoder.load``'s arguments for the text space: here, and on a cluster's workers."""
        settings = self.settings.text
        return {
            "spec": settings.model,
            "device": self.settings.encoder.device,
            "precision": settings.precision,
            "batch_size": settings.batch_size,
        }

    @cached_property
    def text_model_id(self) -> str | None:
        """The text space's model id (None: off), worked out once: for a local model it reads its files."""
        from spyglass.encoders.sentence import text_model_id

        return text_model_id(self.settings.text.model) if self.settings.text.model else None

    @cached_property
    def text_query_encoder(self) -> SentenceEncoder | OnnxSentenceEncoder:
        """What questions are embedded with: the model's ONNX export when there is one (no torch)."""
        if "text_encoder" in self.__dict__ or not self.settings.encoder.fast_text:
            return self.text_encoder
        from spyglass.encoders.sentence_onnx import OnnxSentenceEncoder

        cache = self.settings.encoder.cache_dir
        return OnnxSentenceEncoder.open(cache, self.text_model_id) or self.text_encoder

    @cached_property
    def text_store(self) -> Store:
        """The text space's vectors: the same catalog, the text model's own index."""
        return self._open_store(self.text_query_encoder)

    def text_space(self) -> tuple[Store, SentenceEncoder | OnnxSentenceEncoder] | None:
        """The text space for a search: None while it is off, still empty, or its model is not here.

        Asked per search, so a space filled by another process (or by a later ingest) is used
        from then on; until then the answer costs one indexed lookup, and no model is loaded.
        A filled space needs the model's ONNX export or its weights, not both.
        """
        if "text_store" in self.__dict__:
            return self.text_store, self.text_query_encoder
        if self.text_model_id is None or not self.store.has_vectors(self.text_model_id):
            return None
        try:  # the ONNX export answers without the weights; only without both is the space unusable
            return self.text_store, self.text_query_encoder
        except WeightsUnavailableError as exc:
            log.warning("searching without the text space: %s", exc)
            return None

    def _text_space_encoder(self) -> Callable[[Sequence[str]], np.ndarray] | None:
        space = self.text_space()
        return None if space is None else space[1].encode_texts

    @cached_property
    def stages(self) -> list[ItemStage]:
        """The item stages the settings enable, in order; the text space's embedding comes last."""
        stages = [stage_class(name)() for name in self.settings.ingest.stages]
        if self.settings.ocr.enabled:
            stages.append(self._ocr_stage())
        vocabulary = self.settings.labels.vocabulary
        if (
            vocabulary and (model_id := self._configured_model_id()) is not None
        ):  # None: no model yet, no vectors
            stages.append(self._label_stage(vocabulary, model_id))
        if self.text_model_id is not None:
            from spyglass.indexer.text_space import TextSpaceStage

            stages.append(
                TextSpaceStage(
                    self.text_model_id,
                    lambda: self.text_encoder,
                    lambda: self.text_store,
                    self._text_load_options(),
                )
            )
        return stages

    def _ocr_stage(self) -> ItemStage:
        from spyglass.indexer.ocr.stage import OcrStage

        settings = self.settings.ocr
        return OcrStage(
            lambda: self.ocr_reader,
            lambda: self.store,
            max_pixels=settings.max_pixels,
            sparse_page_chars=settings.sparse_page_chars,
            reader_options={
                "cache_dir": str(self.settings.encoder.models_dir),
                "language": settings.language,
                "threads": settings.threads,
            },
        )

    def _label_stage(self, labels: Sequence[str], model_id: str) -> ItemStage:
        from spyglass.indexer.labels import label_stage

        return label_stage(labels, self.settings.labels, model_id, lambda: self.encoder, lambda: self.store)

    def label(self, labels: Sequence[str], path: str | Path | None = None) -> int:
        """Give every picture (at or under ``path``, else all) its likeliest ``labels`` as automatic
        tags, from the stored vectors; returns how many pictures were labelled now (see ``labels``).

        Automatic tags from another vocabulary or model are replaced; a person's tags stay.
        """
        from spyglass.indexer.labels import vocabulary

        if not vocabulary(labels):
            raise SpyglassError("give at least one label, e.g. --labels 'cat,dog,receipt'")
        under = None if path is None else str(Path(path).expanduser().absolute())
        stage = self._label_stage(labels, self.store.model_id)
        (report,) = run_stages(self.store, [stage], under=under)
        if report.skipped:
            raise SpyglassError(report.skipped)
        return report.processed

    @cached_property
    def ocr_reader(self) -> OcrReader:
        """The OCR models, loaded when the first image with text needs them."""
        from spyglass.indexer.ocr.reader import OcrReader

        settings = self.settings
        return OcrReader(settings.encoder.models_dir, settings.ocr.language, settings.ocr.threads)

    def index(
        self,
        path: str | Path,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        kinds: Sequence[str] | None = None,
        progress: bool = True,
        confine: Sequence[Path] | None = None,
        executor: str | None = None,
    ) -> IndexReport:
        """Index a folder or file incrementally, then let item stages catch up; see :class:`Indexer`.

        ``confine`` limits reading to files whose real path is inside those folders. ``executor``
        (default ``ingest.executor``): ``local``, or ``ray`` / ``ray=ADDRESS`` for a Ray cluster.
        """
        from spyglass.indexer import Indexer
        from spyglass.indexer.loaders import LoadOptions

        self._follow_active_model()
        options = LoadOptions.from_settings(self.settings.ingest)
        indexer = Indexer(
            self.store,
            self.encoder,
            options=options,
            stages=self.stages,
            executor=self._executor(executor or self.settings.ingest.executor),
        )
        report = indexer.index(
            Path(path), include=include, exclude=exclude, kinds=kinds, progress=progress, confine=confine
        )
        self._export_model(progress)
        self._export_sentence_model()
        return report

    def _executor(self, choice: str) -> RayExecutor | None:
        """None for ``local``; a Ray executor for ``ray`` or ``ray=ADDRESS``."""
        kind, _, address = choice.partition("=")
        if kind == "local":
            return None
        if kind != "ray":
            raise SpyglassError(f"unknown executor {choice!r}: local, ray or ray=ADDRESS")
        from spyglass.indexer.ray_executor import RayExecutor

        settings = self.settings.ray.model_copy(update={"address": address}) if address else self.settings.ray
        return RayExecutor(settings, self.model_spec(), self.settings.encoder)

    def _export_sentence_model(self) -> None:
        """Once the text space's model has been loaded for an ingest, export it for searches (see ``sentence_onnx``)."""
        if not (self.settings.encoder.fast_text and "text_encoder" in self.__dict__):
            return
        from spyglass.encoders.sentence_onnx import export_sentence_model

        try:
            export_sentence_model(self.text_encoder, self.settings.encoder.cache_dir)
        except Exception as exc:  # noqa: BLE001 - an optional speed-up must never fail an ingest
            log.warning("text-space model export failed, searches will load the full model: %s", exc)

    def _export_model(self, progress: bool) -> None:
        """After an ingest the full model is loaded anyway: export it once for fast starts, its text
        tower for searches (see ``text_tower``) and then the rest for ingest and serve (``frozen``)."""
        from spyglass.encoders.frozen import frozen_exported
        from spyglass.encoders.text_tower import exported

        settings, encoder = self.settings.encoder, self.encoder
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

    def catch_up(self, only: Sequence[str] | None = None) -> IndexReport:
        """Run the item stages (those named in ``only``, else all) on whatever they have not processed yet:
        after a stage was added or upgraded, or (``only=["ocr"]``) to read text in an existing collection."""
        from spyglass.indexer import IndexReport

        self._follow_active_model()
        stages = [stage for stage in self.stages if only is None or stage.name in only]
        if only is not None and not stages:
            enabled = ", ".join(stage.name for stage in self.stages) or "none"
            raise SpyglassError(f"no enabled stage named {', '.join(only)} (enabled: {enabled})")
        started = time.monotonic()
        report = IndexReport()
        report.add_stages(run_stages(self.store, stages))
        report.seconds = time.monotonic() - started
        return report

    @cached_property
    def retriever(self) -> Retriever:
        self.query_encoder  # noqa: B018 - starts loading the model before the imports below, to overlap them
        from spyglass.retriever import Retriever

        return Retriever(
            self.store,
            self.query_encoder,
            text_space=self.text_space,
            ensemble=self.settings.encoder.prompt_ensemble,
            max_pixels=self.settings.ingest.max_image_pixels,
        )

    def search(
        self,
        query: Query | str,
        filters: Filters | None = None,
        *,
        k: int = 10,
        offset: int = 0,
        options: RankingOptions | None = None,
    ) -> SearchResponse:
        """Search with text, images, an item id, or a combination; see :class:`spyglass.retriever.Retriever`."""
        from spyglass.retriever import Query

        self._follow_active_model()
        query = Query(text=query) if isinstance(query, str) else query
        return self.retriever.search(query, filters, k=k, offset=offset, options=options)

    @cached_property
    def generator(self) -> Generator:
        from spyglass.generator import Generator
        from spyglass.generator.backends import GenerationParams, make_backend

        settings = self.settings.generator
        params = GenerationParams(max_tokens=settings.max_answer_tokens, temperature=settings.temperature)
        return Generator(
            self.retriever,
            make_backend(settings, text_space=self._text_space_encoder),
            max_images=settings.max_images,
            max_chars=settings.max_chars,
            image_side=settings.image_side,
            params=params,
        )

    def ask(
        self,
        question: str,
        *,
        images: Sequence[ImageSource] = (),
        filters: Filters | None = None,
        options: PromptOptions | None = None,
        look: bool = False,
    ) -> Answer:
        """Answer from the collection with citations; ``look`` asks about ``images`` alone, without retrieval."""
        request = self._request(question, images, filters, options, look)
        return self.generator.answer(request, retrieval=not look)

    def ask_stream(
        self,
        question: str,
        *,
        images: Sequence[ImageSource] = (),
        filters: Filters | None = None,
        options: PromptOptions | None = None,
        look: bool = False,
    ) -> Iterator[str | Answer]:
        """Like :meth:`ask`, streamed: text pieces, then the checked :class:`Answer`."""
        request = self._request(question, images, filters, options, look)
        return self.generator.stream(request, retrieval=not look)

    def _request(self, question, images, filters, options, look):
        self._follow_active_model()
        if look:
            if not images:
                from spyglass.retriever import QueryError

                raise QueryError("look mode needs at least one image")
            return self.generator.look(question, list(images), options)
        return self.generator.prepare(question, list(images), filters, options=options)

    def evaluate(self, dataset: str | Path) -> EvalReport:
        """Recall@k and MRR of the configured model on a captioned image set."""
        from spyglass.retriever.evaluation import evaluate

        return evaluate(
            self.encoder,
            Path(dataset),
            ensemble=self.settings.encoder.prompt_ensemble,
            max_pixels=self.settings.ingest.max_image_pixels,
        )

    def item(self, item_id: int) -> dict | None:
        """An item as the API and MCP show it: where it is, its text, its document's metadata and tags,
        and the lines read in it."""
        from spyglass.kinds import ItemKind
        from spyglass.retriever.results import parse_bbox, read_lines

        row = self.store.item(item_id)
        if row is None:
            return None
        visual = ItemKind(row["kind"]).visual
        tags = self.store.tags(row["document_id"])
        return {
            "item_id": row["id"],
            "kind": row["kind"],
            "document_id": row["document_id"],
            "path": row["path"],
            "mime": row["mime"],
            "page": row["page"],
            "bbox": parse_bbox(row["bbox"]),
            "timestamp": row["timestamp"],
            "text": row["text"],
            "char_start": row["char_start"],
            "char_end": row["char_end"],
            "parent_id": row["parent_id"],
            "metadata": self.store.metadata(row["document_id"]),
            "tags": [tag["tag"] for tag in tags],
            # Tags a labeller chose: {"tag", "probability", "origin": "labels:VOCABULARY@MODEL"}.
            "labels": [tag for tag in tags if tag["origin"] != PERSON],
            # Lines read in the picture: {"size": [w, h], "lines": [{"text", "box": [x0, y0, x1, y1], "confidence"}]}.
            "ocr": read_lines(self.store.stage_outputs("ocr", [item_id]).get(item_id)) if visual else None,
        }

    def tag(self, path: str | Path, tags: Sequence[str]) -> int:
        """Tag the documents at ``path`` (a file, or every file under a folder); returns how many."""
        return self.store.tag(str(Path(path).expanduser().absolute()), tags)

    def status(self) -> dict:
        """Counts, model, index type, re-index needs, stage backlogs and the latest errors.

        Read from the catalog alone unless the store is already open: no model is loaded.
        """
        stages = [(stage.name, stage.version, stage.kinds) for stage in self.stages]
        if "store" in self.__dict__:
            info = {
                **self.store.status(),
                "errors_list": self.store.errors(),
                "stages": self.store.stage_backlog(stages),
            }
        else:
            info = Store.inspect(self.settings.data_dir, self._configured_model_id(), stages)
        from spyglass.versions import describe

        versions, progress = info.pop("model_versions"), info.pop("switch_progress")
        info["models"] = describe(versions, self.settings.encoder.model, progress)
        return {**info, "data_dir": str(self.settings.data_dir)}

    def _configured_model_id(self) -> str | None:
        """The configured model's id without loading it (None: a builtin model not trained yet)."""
        if "encoder" in self.__dict__:
            return self.encoder.model_id
        from spyglass.encoders.spec import model_id_of, parse_spec

        spec = parse_spec(self.model_spec())
        if spec.backend == "builtin":
            from spyglass.encoders.builtin import trained_model_dir

            directory = trained_model_dir(self.settings.encoder.models_dir)
            return model_id_of(spec, directory) if directory else None
        try:
            return model_id_of(spec)
        except ModelSpecError:
            return None

    # --- learning from the collection -----------------------------------------------------
    def tune(
        self,
        dataset: str | Path | None,
        options: TuneOptions,
        *,
        output: Path | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        progress: bool = False,
    ) -> TuneReport:
        """Fine-tune the active model on a captioned set (a folder with ``captions.csv``, or a COCO
        JSON), or with ``dataset=None`` on pairs mined from the collection; the result is a new
        model version in ``output`` (default: under the models folder), for ``use_model``."""
        from spyglass.encoders import load_encoder
        from spyglass.retriever.evaluation import load_dataset
        from spyglass.training.tune import mined_pairs, tune

        data = (
            load_dataset(Path(dataset)) if dataset is not None else mined_pairs(self.store.described_images())
        )
        if dataset is None and len(data.images) < 4:
            raise SpyglassError(
                f"the collection has {len(data.images)} images with a description or a worded file name; "
                "tuning needs more: give a folder with captions.csv"
            )
        fp32 = self.settings.encoder.model_copy(update={"precision": "fp32"})
        encoder = load_encoder(self.model_spec(), settings=fp32)  # its own copy: tuning changes it
        tuned = self.settings.encoder.models_dir / "tuned"
        output = output or tuned / f"{options.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
        return tune(
            encoder,
            data,
            Path(output).expanduser().absolute(),
            options,
            checkpoint_dir=tuned,
            max_pixels=self.settings.ingest.max_image_pixels,
            on_epoch=on_epoch,
            progress=progress,
        )

    # --- model versions ---------------------------------------------------------------------
    def use_model(
        self, spec: str, *, progress: bool = False, on_group: Callable[[], None] | None = None
    ) -> ReembedReport:
        """Switch the collection to another CLIP model without a pause in searching.

        Every item is re-embedded from its file beside the current vectors (see ``reembed``),
        which keep answering searches meanwhile, here and in other processes; the switch is
        recorded in one transaction once the new vectors are complete. Interrupted, it resumes
        when called again. Returns the :class:`ReembedReport`.
        """
        from spyglass.encoders.spec import parse_spec
        from spyglass.indexer.reembed import ReembedReport
        from spyglass.versions import Version

        spec = str(parse_spec(spec))  # local paths made absolute: the record must work from anywhere
        configured = self.settings.encoder.model
        target = self._load_encoder(spec)
        current = self.store
        records = current.model_versions()
        if target.model_id == current.model_id:  # already searched with: a pending switch is called off
            with current.write() as tx:
                tx.set_model_versions({"switch": None})
            return ReembedReport()
        old = Version.of(records.get("active")) or Version.now(
            self.model_spec(), current.model_id, configured
        )
        new = Version.now(spec, target.model_id, configured)
        store = self._open_store(target)
        with store.write() as tx:
            tx.set_model_versions({"switch": new.record()})
        report = ReembedReport()
        while True:
            report.add(self._reembed(store, target, progress, on_group))
            with store.write() as tx:  # checked and switched in one transaction: nothing slips between
                if not tx.stale_documents() - report.failed.keys():
                    tx.set_model_versions({"active": new.record(), "previous": old.record(), "switch": None})
                    break
            # files indexed with the old model since the last round: one more round
        self._adopt(target, store)
        self._export_model(progress)
        return report

    def rollback_model(self, *, progress: bool = False) -> ReembedReport:
        """Return to the previous model at once (its vectors were kept); items indexed since the
        switch are then embedded by it too. Returns the :class:`ReembedReport` of those."""
        from spyglass.versions import Version

        records = self.store.model_versions()
        previous, active = Version.of(records.get("previous")), Version.of(records.get("active"))
        if previous is None or active is None:
            raise SpyglassError("there is no earlier model version to roll back to")
        target = self._load_encoder(previous.spec)
        if target.model_id != previous.model_id:
            raise SpyglassError(
                f"{previous.spec} now loads other weights ({target.model_id}) than the version kept "
                f"({previous.model_id}); switch to them with `spyglass models use`"
            )
        store = self._open_store(target)
        back = Version.now(previous.spec, previous.model_id, self.settings.encoder.model)
        with store.write() as tx:
            tx.set_model_versions({"active": back.record(), "previous": active.record(), "switch": None})
        self._adopt(target, store)
        return self._reembed(store, target, progress, None)

    def prune_models(self) -> dict[str, int]:
        """Drop the vectors of every CLIP model but the active one (and one being switched to);
        returns the vectors dropped per model. Rolling back is impossible afterwards."""
        from spyglass.kinds import space_of

        records = self.store.model_versions()
        keep = {self.store.model_id} | {r["model_id"] for r in (records.get("switch"),) if r}
        dropped = {
            model_id: self.store.prune(model_id)
            for model_id in self.store.status()["vectors_by_model"]
            if space_of(model_id) == "clip" and model_id not in keep
        }
        with self.store.write() as tx:
            tx.set_model_versions({"previous": None})
        return dropped

    def _reembed(
        self, store: Store, encoder: Encoder, progress: bool, on_group: Callable[[], None] | None
    ) -> ReembedReport:
        from spyglass.indexer.loaders import LoadOptions
        from spyglass.indexer.reembed import reembed

        options = LoadOptions.from_settings(self.settings.ingest)
        return reembed(store, encoder, options, progress=progress, on_group=on_group)

    def _adopt(self, encoder: Encoder, store: Store) -> None:
        """Search with ``encoder`` and its ``store`` from now on; what was built on the old model goes.

        The new pair is in place before anything is forgotten, so a search in another thread
        finds either the old model's objects or the new one's, never none.
        """
        old = self.__dict__.get("store")
        self.__dict__.update(encoder=encoder, store=store)
        self._forget_derived()
        if old is not None:
            self._retired.append(old)

    def _retire(self) -> None:
        """Forget the model and everything built on it; its store stays open for searches still using it."""
        if "store" in self.__dict__:
            self._retired.append(self.__dict__.pop("store"))
        self.__dict__.pop("encoder", None)
        self._forget_derived()

    def _forget_derived(self) -> None:
        for name in ("query_encoder", "retriever", "generator", "stages"):
            self.__dict__.pop(name, None)

    def _follow_active_model(self) -> None:
        """Pick up a switch or rollback made by another process: the next search uses that model."""
        now = time.monotonic()
        if self._pinned or "store" not in self.__dict__ or now - self._followed < FOLLOW_INTERVAL_S:
            return
        self._followed = now
        from spyglass.versions import Version

        active = Version.of(self.store.model_versions().get("active"))
        if active is not None and active.model_id != self.store.model_id:
            if self.model_spec() == active.spec:  # not overridden by the configuration
                log.info("the collection switched to %s; searching with it from now on", active.spec)
                self._retire()

    def close(self) -> None:
        for store in self._retired:
            store.close()
        for name in ("store", "text_store"):
            if name in self.__dict__:
                self.__dict__[name].close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
