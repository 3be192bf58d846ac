"""``Engine``: the one facade the CLI, the API and library users share.

It owns the settings, loads the encoder once, opens the store for that encoder's
model, and exposes the operations: index, tag, search, ask, evaluate, status.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

from spyglass.encoders import Encoder, load_encoder
from spyglass.generator import Answer, Generator, PromptOptions
from spyglass.images import ImageSource
from spyglass.indexer import Indexer, IndexReport
from spyglass.retriever import Filters, Query, QueryError, RankingOptions, Retriever, SearchResponse
from spyglass.retriever.evaluation import EvalReport, evaluate
from spyglass.settings import Settings
from spyglass.store import Store


class Engine:
    def __init__(self, settings: Settings | None = None, *, encoder: Encoder | None = None) -> None:
        self.settings = settings or Settings()
        if encoder is not None:
            self.__dict__["encoder"] = encoder

    @cached_property
    def encoder(self) -> Encoder:
        return load_encoder(settings=self.settings)

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.data_dir, self.encoder.model_id, self.encoder.dim,
                     index=self.settings.index, index_options=self.settings.index_options)

    def index(self, path: str | Path, *, include: Sequence[str] = (), exclude: Sequence[str] = (),
              kinds: Sequence[str] | None = None, progress: bool = True) -> IndexReport:
        """Index a folder or file incrementally; see :class:`spyglass.indexer.Indexer`."""
        indexer = Indexer(self.store, self.encoder, max_image_pixels=self.settings.max_image_pixels)
        return indexer.index(Path(path), include=include, exclude=exclude, kinds=kinds, progress=progress)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.encoder, ensemble=self.settings.prompt_ensemble,
                         max_pixels=self.settings.max_image_pixels)

    def search(self, query: Query | str, filters: Filters | None = None, *, k: int = 10, offset: int = 0,
               options: RankingOptions | None = None) -> SearchResponse:
        """Search with text, images, an item id, or a combination; see :class:`spyglass.retriever.Retriever`."""
        query = Query(text=query) if isinstance(query, str) else query
        return self.retriever.search(query, filters, k=k, offset=offset, options=options)

    @cached_property
    def generator(self) -> Generator:
        from spyglass.generator.backends import GenerationParams, make_backend

        settings = self.settings
        params = GenerationParams(max_tokens=settings.max_answer_tokens, temperature=settings.temperature)
        return Generator(self.retriever, make_backend(settings), max_images=settings.ask_max_images,
                         max_chars=settings.ask_max_chars, image_side=settings.ask_image_side, params=params)

    def ask(self, question: str, *, images: Sequence[ImageSource] = (), filters: Filters | None = None,
            options: PromptOptions | None = None, look: bool = False) -> Answer:
        """Answer from the collection with citations; ``look`` asks about ``images`` alone, without retrieval."""
        request = self._request(question, images, filters, options, look)
        return self.generator.answer(request, retrieval=not look)

    def ask_stream(self, question: str, *, images: Sequence[ImageSource] = (), filters: Filters | None = None,
                   options: PromptOptions | None = None, look: bool = False) -> Iterator[str | Answer]:
        """Like :meth:`ask`, streamed: text pieces, then the checked :class:`Answer`."""
        request = self._request(question, images, filters, options, look)
        return self.generator.stream(request, retrieval=not look)

    def _request(self, question, images, filters, options, look):
        if look:
            if not images:
                raise QueryError("look mode needs at least one image")
            return self.generator.look(question, list(images), options)
        return self.generator.prepare(question, list(images), filters, options=options)

    def evaluate(self, dataset: str | Path) -> EvalReport:
        """Recall@k and MRR of the configured model on a captioned image set."""
        return evaluate(self.encoder, Path(dataset), ensemble=self.settings.prompt_ensemble)

    def tag(self, path: str | Path, tags: Sequence[str]) -> int:
        """Tag the documents at ``path`` (a file, or every file under a folder); returns how many."""
        return self.store.tag(str(Path(path).expanduser().absolute()), tags)

    def status(self) -> dict:
        """Counts, model, index type, re-index needs and the latest errors."""
        return {**self.store.status(), "data_dir": str(self.settings.data_dir), "errors_list": self.store.errors()}

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
