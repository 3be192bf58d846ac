"""``Engine``: the one facade the CLI, the API and library users share.

It owns the settings, loads the encoder once, opens the store for that encoder's
model, and exposes the operations (index, status, and later search and ask).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from spyglass.encoders import Encoder, load_encoder
from spyglass.indexer import IndexReport, Indexer
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
        indexer = Indexer(self.store, self.encoder, max_image_pixels=self.settings.max_image_pixels,
                          workers=self.settings.threads or None)
        return indexer.index(Path(path), include=include, exclude=exclude, kinds=kinds, progress=progress)

    def status(self) -> dict:
        """Counts, model, index type, re-index needs and the latest errors."""
        return {**self.store.status(), "data_dir": str(self.settings.data_dir), "errors_list": self.store.catalog.errors()}

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
