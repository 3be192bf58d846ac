"""``Engine``: the one facade the CLI, the API and library users share.

It owns the settings and one collection's run-time state (``spyglass.runtime``): the models,
loaded when first needed and shared per spec, and the collection's store, stages, retriever and
generator over them. It exposes the operations: index, tag, search, ask (in conversations too),
evaluate, status, and model switching. The model, torch and the ingest pipeline are imported when
an operation first needs them, so ``status``, ``--help`` and ``models`` answer at once without weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spyglass.indexer.stages import ItemStage
from spyglass.runtime import CollectionState, Models, switching
from spyglass.settings import Settings
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.filters import Filters
    from spyglass.generator import Answer, Generator, PromptOptions
    from spyglass.generator.conversation import Conversation
    from spyglass.images import ImageSource
    from spyglass.indexer import IndexReport
    from spyglass.indexer.reembed import ReembedReport
    from spyglass.retriever import Query, RankingOptions, Retriever, SearchResponse
    from spyglass.retriever.evaluation import EvalReport
    from spyglass.runtime.collections import ModelPool
    from spyglass.training.tune import TuneOptions, TuneReport

FOLLOW_INTERVAL_S = 0.5  # how often a search looks whether another process switched the model


class Engine:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        encoder: Encoder | None = None,
        pool: ModelPool | None = None,
    ) -> None:  # pool: models shared with other collections (``runtime.collections``)
        self.settings = settings or Settings()
        self._pinned = encoder is not None  # a given encoder is used whatever the data directory records
        self._followed = 0.0  # monotonic time of the last look for a model switch by another process
        self._retired: list[Store] = []  # stores of models switched away from, closed with the engine
        spec = self.model_spec()
        models = pool.models(self.settings, spec) if pool else Models(self.settings, spec, encoder=encoder)
        self._state = CollectionState(self.settings, models)

    # --- the parts, made when first used ---------------------------------------------------
    @property
    def state(self) -> CollectionState:
        """The collection's run-time state; replaced whole when the model switches."""
        return self._state

    @property
    def ready(self) -> bool:
        """Whether a search answers without loading anything (``/readyz``)."""
        return self._state.ready

    @property
    def encoder(self) -> Encoder:
        return self._state.models.encoder.get()

    @property
    def store(self) -> Store:
        return self._state.store.get()

    @property
    def text_store(self) -> Store:
        return self._state.text_store.get()

    @property
    def stages(self) -> list[ItemStage]:
        return self._state.stages.get()

    @property
    def retriever(self) -> Retriever:
        return self._state.retriever.get()

    @property
    def generator(self) -> Generator:
        return self._state.generator.get()

    def model_spec(self) -> str:
        """The CLIP model this data directory searches with (see ``spyglass.versions``)."""
        from spyglass.versions import active_spec

        return active_spec(Store.recorded_models(self.settings.data_dir), self.settings.encoder.model)

    def label(self, labels: Sequence[str], path: str | Path | None = None) -> int:
        """Give every picture (at or under ``path``, else all) its likeliest ``labels`` as automatic
        tags; returns how many were labelled now (``CollectionState.label``)."""
        return self._state.label(labels, None if path is None else str(Path(path).expanduser().absolute()))

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
        from spyglass.indexer.ray_executor import executor_for

        self._follow_active_model()
        options = LoadOptions.from_settings(self.settings.ingest)
        encoder = self.encoder  # first: the store then takes its space from it (``CollectionState``)
        indexer = Indexer(
            self.store,
            encoder,
            options=options,
            stages=self.stages,
            executor=executor_for(
                executor or self.settings.ingest.executor, self.settings, self.model_spec()
            ),
        )
        report = indexer.index(
            Path(path), include=include, exclude=exclude, kinds=kinds, progress=progress, confine=confine
        )
        self._state.models.export_after_ingest(progress)
        return report

    def catch_up(self, only: Sequence[str] | None = None) -> IndexReport:
        """Run the item stages (``only`` those named) on what they have not processed yet."""
        self._follow_active_model()
        return self._state.catch_up(only)

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

    def ask(
        self,
        question: str,
        *,
        images: Sequence[ImageSource] = (),
        filters: Filters | None = None,
        options: PromptOptions | None = None,
        look: bool = False,
        conversation: Conversation | None = None,
    ) -> Answer:
        """Answer with citations; ``look``: about ``images`` alone; in a ``conversation``, recorded as its turn."""
        request = self._request(
            question, images=images, filters=filters, options=options, look=look, conversation=conversation
        )
        answer = self.generator.answer(request, retrieval=not look)
        return conversation.record(question, answer) if conversation else answer

    def ask_stream(self, question: str, **ask: Any) -> Iterator[str | Answer]:
        """Like :meth:`ask` (the same arguments), streamed: text pieces, then the checked :class:`Answer`."""
        events = self.generator.stream(self._request(question, **ask), retrieval=not ask.get("look"))
        conversation = ask.get("conversation")
        return conversation.recorded(question, events) if conversation else events

    def _request(self, question, images=(), filters=None, options=None, look=False, conversation=None):
        self._follow_active_model()
        if look:
            return self.generator.look(question, list(images), options)
        history = conversation.turns() if conversation else ()
        return self.generator.prepare(question, list(images), filters, options=options, history=history)

    def conversation(self, conversation_id: str | None, owner: str) -> Conversation:
        """``owner``'s conversation (a key's fingerprint; "local": this machine's user); None starts one."""
        from spyglass.generator.conversation import Conversation

        if conversation_id is None:
            return Conversation.start(self.store, owner, self.settings.generator.conversation_days)
        return Conversation(self.store, conversation_id, owner)

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
        """An item as the API and MCP show it (``results.item_view``)."""
        from spyglass.retriever.results import item_view

        return item_view(self.store, item_id)

    def tag(self, path: str | Path, tags: Sequence[str]) -> int:
        """Tag the documents at ``path`` (a file, or every file under a folder); returns how many."""
        return self.store.tag(str(Path(path).expanduser().absolute()), tags)

    def status(self) -> dict:
        """Counts, model, index type, re-index needs, stage backlogs and the latest errors
        (``CollectionState.status``: no model is loaded for it)."""
        return self._state.status()

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
        from spyglass.training.pairs import training_data
        from spyglass.training.tune import tune_model

        return tune_model(
            self.settings,
            self.model_spec(),
            training_data(dataset, self.store.described_images),
            options,
            output=output,
            on_epoch=on_epoch,
            progress=progress,
        )

    # --- model versions ---------------------------------------------------------------------
    def use_model(
        self, spec: str, *, progress: bool = False, on_group: Callable[[], None] | None = None
    ) -> ReembedReport:
        """Switch the collection to another CLIP model without a pause in searching (``switching.use``);
        interrupted, it resumes when called again."""
        report, switched = switching.use(
            self._state, spec, self.model_spec(), progress=progress, on_group=on_group
        )
        if switched is not None:
            self._adopt(switched)
            switched.models.export_after_ingest(progress)
        return report

    def rollback_model(self, *, progress: bool = False) -> ReembedReport:
        """Return to the previous model at once (its vectors were kept); items indexed since the
        switch are then embedded by it too. Returns the :class:`ReembedReport` of those."""
        switched = switching.rollback(self._state)
        self._adopt(switched)
        return switching.reembed(switched, progress, None)

    def prune_models(self) -> dict[str, int]:
        """Drop the vectors of every CLIP model but the active one; see ``switching.prune``."""
        return switching.prune(self.store)

    def _adopt(self, state: CollectionState) -> None:
        """Work with ``state`` from now on. One assignment: a search in another thread holds either
        the old state or the new one, whole; the old store stays open for it until the engine closes."""
        old, self._state = self._state, state
        if (store := old.store.peek()) is not None:
            self._retired.append(store)

    def _follow_active_model(self) -> None:
        """Pick up a switch or rollback made by another process: the next search uses that model."""
        now = time.monotonic()
        store = self._state.store.peek()
        if self._pinned or store is None or now - self._followed < FOLLOW_INTERVAL_S:
            return
        self._followed = now
        if (followed := switching.followed(self._state, self.model_spec())) is not None:
            self._adopt(followed)

    def close(self) -> None:
        for store in self._retired:
            store.close()
        self._state.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
