"""Named collections: many private collections in one data directory, served by one process.

A collection is what a data directory always was: its own catalog, vector indexes, stages,
model versions, uploads and jobs. The default collection is the data directory itself, so a
single user sees nothing new; a named one lives in ``DATA_DIR/collections/NAME/`` with a
``collection.json`` that records what it sets for itself (``CollectionConfig``). Everything else
(the index kind, the server, the caches) stays global.

``Collections`` opens each collection's ``Engine`` when first asked for, over one ``ModelPool``:
collections that use the same model and settings share one copy of the weights in memory.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from spyglass.errors import SpyglassError
from spyglass.runtime.models import Models
from spyglass.settings import Settings

if TYPE_CHECKING:
    from spyglass.engine import Engine

DEFAULT = "default"
CONFIG = "collection.json"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class CollectionNotFound(SpyglassError):
    """A collection name that does not exist (or, over HTTP, that the key may not read)."""


class CollectionConfig(BaseModel):
    """What a named collection sets for itself; None keeps the global setting."""

    model: str | None = Field(
        None, description="CLIP model spec of a new collection (its recorded model wins)."
    )
    text_model: str | None = Field(
        None, description="Sentence-embedding model; empty turns the text space off."
    )
    ocr: bool | None = Field(None, description="Read text in pictures and scans.")
    labels: list[str] | None = Field(None, description="Zero-shot label vocabulary.")
    allowed_roots: list[Path] = Field(
        default_factory=list, description="Server folders this collection may index over HTTP and MCP."
    )


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise SpyglassError(
            f"{name!r} is not a collection name: use 1-63 lower-case letters, digits, '-' or '_'."
        )
    return name


def folder(settings: Settings, name: str) -> Path:
    """Where collection ``name`` lives: the data directory itself for the default one."""
    return settings.data_dir if name == DEFAULT else settings.data_dir / "collections" / check_name(name)


def names(settings: Settings) -> list[str]:
    """The default collection, then the named ones in order."""
    root = settings.data_dir / "collections"
    found = sorted(p.parent.name for p in root.glob(f"*/{CONFIG}")) if root.is_dir() else []
    return [DEFAULT, *found]


def config(settings: Settings, name: str) -> CollectionConfig:
    """A named collection's own settings (the default collection has none of its own)."""
    if name == DEFAULT:
        return CollectionConfig(allowed_roots=settings.api.allowed_roots)
    path = folder(settings, name) / CONFIG
    if not path.is_file():
        raise CollectionNotFound(
            f"there is no collection named {name!r} (`spyglass collections create {name}`)"
        )
    return CollectionConfig.model_validate_json(path.read_text(encoding="utf-8"))


def settings_for(settings: Settings, name: str) -> Settings:
    """The settings a collection's engine runs with: the global ones, its own folder and choices."""
    if name == DEFAULT:
        return settings
    own = config(settings, name)
    encoder, text, ocr, labels = settings.encoder, settings.text, settings.ocr, settings.labels
    if own.model is not None:
        encoder = encoder.model_copy(update={"model": own.model})
    if own.text_model is not None:
        text = text.model_copy(update={"model": own.text_model})
    if own.ocr is not None:
        ocr = ocr.model_copy(update={"enabled": own.ocr})
    if own.labels is not None:
        labels = labels.model_copy(update={"vocabulary": own.labels})
    index = settings.index
    if index.kind == "milvus":  # one Milvus server may hold many collections' indexes
        index = index.model_copy(update={"options": {**index.options, "prefix": name}})
    api = settings.api.model_copy(update={"allowed_roots": own.allowed_roots})
    return settings.model_copy(
        update={
            "data_dir": folder(settings, name),
            "encoder": encoder,
            "text": text,
            "ocr": ocr,
            "labels": labels,
            "index": index,
            "api": api,
        }
    )


def create(settings: Settings, name: str, own: CollectionConfig | None = None) -> Path:
    """Make collection ``name``; refused when it exists."""
    if name == DEFAULT:
        raise SpyglassError("the default collection always exists")
    path = folder(settings, name)
    if (path / CONFIG).exists():
        raise SpyglassError(f"collection {name!r} already exists")
    path.mkdir(parents=True, exist_ok=True)
    text = (own or CollectionConfig()).model_dump_json(exclude_none=True, indent=2)
    (path / CONFIG).write_text(text + "\n", encoding="utf-8")
    return path


def delete(settings: Settings, name: str) -> None:
    """Remove a named collection: its catalog, indexes, uploads and model versions."""
    if name == DEFAULT:
        raise SpyglassError("the default collection cannot be deleted (it is the data directory)")
    path = folder(settings, name)
    if not (path / CONFIG).is_file():
        raise CollectionNotFound(f"there is no collection named {name!r}")
    (path / CONFIG).unlink()  # first: a delete cut short leaves no half collection that still lists
    shutil.rmtree(path)


class ModelPool:
    """One ``Models`` per model and model settings, shared by every collection that uses them.

    The key holds the CLIP spec, the settings a model is loaded with, and the precision the
    collection keeps (int8 and fp32 vectors of one model are different spaces).
    """

    def __init__(self) -> None:
        self._models: dict[str, Models] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(settings: Settings, spec: str, keep: str | None) -> str:
        parts = [
            spec,
            keep,
            *(getattr(settings, part).model_dump_json() for part in ("encoder", "text", "ocr", "generator")),
        ]
        return json.dumps(parts)

    def add(self, models: Models) -> None:
        """Share models that were made elsewhere (the default collection's engine)."""
        with self._lock:
            self._models.setdefault(self.key(models.settings, models.spec, models.kept_precision()), models)

    def models(self, settings: Settings, spec: str) -> Models:
        fresh = Models(settings, spec)
        with self._lock:
            return self._models.setdefault(self.key(settings, spec, fresh.kept_precision()), fresh)


class Collections:
    """The collections one process serves: each one's engine, opened when first asked for."""

    def __init__(self, settings: Settings, default: Engine | None = None) -> None:
        self.settings, self.pool = settings, ModelPool()
        self._engines: dict[str, Engine] = {}
        self._lock = threading.RLock()
        if default is not None:
            self._engines[DEFAULT] = default
            self.pool.add(default.state.models)

    def names(self) -> list[str]:
        return names(self.settings)

    def opened(self) -> dict[str, Engine]:
        with self._lock:
            return dict(self._engines)

    def engine(self, name: str = DEFAULT) -> Engine:
        """Collection ``name``'s engine (CollectionNotFound when there is none)."""
        with self._lock:
            if (engine := self._engines.get(name)) is not None:
                return engine
            from spyglass.engine import Engine

            engine = Engine(settings_for(self.settings, name), pool=self.pool)
            self._engines[name] = engine
            return engine

    def create(self, name: str, own: CollectionConfig | None = None) -> Engine:
        with self._lock:
            create(self.settings, name, own)
            return self.engine(name)

    def delete(self, name: str, before: Callable[[Engine], None] | None = None) -> None:
        """Close the collection's engine (``before`` runs on it first: stopping its jobs), then remove it."""
        with self._lock:
            config(self.settings, name)  # CollectionNotFound before anything is closed
            engine = self._engines.get(name)
            if engine is not None:
                if before is not None:
                    before(engine)  # may refuse: the collection then stays open as it was
                del self._engines[name]
                engine.close()
            delete(self.settings, name)

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()
