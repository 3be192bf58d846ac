"""The store: the SQLite catalog (source of truth) plus a FAISS index derived from it.

Consistency comes from one mechanism. Every vector insert or delete is logged by
SQLite triggers in the same transaction (``vector_log``). The in-memory index
remembers the last log position it applied; after each write transaction, and when
the store opens, it replays the log from there. A crash at any point therefore loses
nothing committed and shows nothing half-written: SQLite's transaction decides what
exists, and the index catches up. The index file is saved atomically with the log
position it contains; anything doubtful (missing file, foreign store, position the
catalog does not vouch for) means a rebuild from the vectors in SQLite.

Concurrency: one writer at a time (a lock, plus SQLite's), many readers. Readers
see SQLite through WAL snapshots and the index under a readers-writer lock that a
batch takes once to apply all its changes, so a search sees a batch entirely or not at all.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import text

from spyglass.errors import ModelMismatchError, ReindexRequiredError, SpyglassError, WritesRefused
from spyglass.filters import Filters
from spyglass.kinds import TEXT_SPACE_PREFIX, base_model_id, precision_of, space_id, space_of
from spyglass.store.catalog import Catalog, VectorRecords
from spyglass.store.db import open_engine, writable
from spyglass.store.filters import allowed_items
from spyglass.store.index import VectorIndex, backend, create_index, resolve_kind
from spyglass.store.index.base import as_vectors
from spyglass.store.mirror import IndexMirror, slug_of
from spyglass.store.rwlock import RWLock
from spyglass.store.session import Snapshot, Transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

# Below this many allowed ids, filtered search scores them exactly from SQLite: an
# ANN index probing a few cells or graph neighbours would miss most of a tiny allow-list.
EXACT_ALLOW_LIMIT = 20_000
AUTOSAVE_CHANGES = 50_000


StageKey = tuple[str, int, Sequence[str]]  # an item stage as the store sees it: name, version, item kinds


# A job's stop signal, set in the thread that runs it (``api.jobs``): once set, that thread's next
# write raises WritesRefused. Writes commit whole batches, so a cancelled ingest keeps what it wrote
# and a later run carries on from there; other threads (searches, deletes, tags) write on.
STOP: ContextVar[threading.Event | None] = ContextVar("spyglass_job_stop", default=None)


@dataclass(frozen=True)
class Hit:
    item_id: int
    score: float


class Store(IndexMirror):
    """Open with the model whose vectors you will add and search; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        model_id: str,
        dim: int,
        *,
        index: str = "auto",
        index_options: dict | None = None,
        vector_dtype: str = "float16",
        autosave_changes: int = AUTOSAVE_CHANGES,
    ) -> None:
        resolve_kind(index, 0)  # validate early
        self.data_dir = Path(data_dir)
        # A read-only data directory (a :ro volume, a snapshot) still searches; the index is built in memory.
        self.read_only = not writable(self.data_dir / "catalog.sqlite3")
        self._catalog = Catalog(open_engine(self.data_dir / "catalog.sqlite3", read_only=self.read_only))
        self.model_id, self.dim = model_id, dim
        self.index_kind, self.index_options = index, dict(index_options or {})
        self.vector_dtype = vector_dtype
        self.autosave_changes = autosave_changes
        self._refusal: str | None = None  # why writes are refused from now on (``refuse_writes``)
        self._lock = RWLock()
        self._writer = threading.Lock()
        self._index: VectorIndex = create_index("flat", dim, 0)
        self._seq = 0  # last vector_log position applied to the index
        self._built_for = 0  # vectors the index was sized/trained for
        self._unsaved = 0
        self._checked = 0.0  # monotonic time of the last look for other processes' writes
        slug = slug_of(model_id)
        self._index_dir = self.data_dir / "index"
        self._manifest_path = self._index_dir / f"{slug}.json"
        self._slug = slug
        with self._writer:
            if not self._load_saved():
                self._rebuild()
            self._sync()

    # --- writing --------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """One write transaction; on success the index catches up before this returns."""
        if self.read_only:
            raise SpyglassError(
                f"The data directory {self.data_dir} is read-only; searching works, changes do not."
            )
        with self._writer:
            if self._refusal is not None:
                raise WritesRefused(self._refusal)
            if (stop := STOP.get()) is not None and stop.is_set():
                raise WritesRefused("the job was cancelled")
            with self._catalog.engine.begin() as conn:
                yield Transaction(conn, self.model_id, self.check_vectors, self.vector_dtype)
            self._sync()
            if self._unsaved >= self.autosave_changes:
                self._save_if_possible()

    def refuse_writes(self, reason: str) -> None:
        """Make every later write raise ``WritesRefused(reason)``; returns once a write in progress
        has ended. A job writing into a collection that is being deleted stops at its next write."""
        self._refusal = reason
        with self._writer:
            pass

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """Consistent reads without holding the write lock (e.g. planning an index run)."""
        with self._catalog.engine.connect() as conn:
            yield Snapshot(conn, self.model_id)

    def check_vectors(self, matrix: np.ndarray, model_id: str) -> None:
        """Refuse another model's vectors, or vectors of the wrong dimension."""
        if model_id != self.model_id:
            raise ModelMismatchError(
                f"this store is open for {self.model_id}; refusing vectors from {model_id}"
            )
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ModelMismatchError(
                f"vectors of shape {matrix.shape} do not match the store's dimension {self.dim}"
            )

    def delete_document(self, document_id: int) -> None:
        """Delete a document and every trace of it in the catalog (``forget``)."""
        with self.write() as tx:
            tx.delete_document(document_id)
        self.forget()

    def forget(self) -> None:
        """Remove what deleted or rewritten items left behind in the live files: their words in the
        full-text indexes, their old pages in the WAL (``FullText.forget_deleted_words``)."""
        with self._writer:
            self._catalog.forget_deleted_words()

    def tag(self, path: str, tags: Sequence[str]) -> int:
        """Tag the documents at ``path`` (a file, or every file under a folder); returns how many."""
        with self.write() as tx:
            documents = tx.documents_under(path)
            for document in documents:
                tx.add_tags(document, tags)
        return len(documents)

    # --- reading --------------------------------------------------------------------------
    def items(self, item_ids: Sequence[int]) -> dict[int, dict]:
        """Item rows (no thumbnails) with their document's path, mime and hash, keyed by id; missing ids absent."""
        return self._catalog.items(item_ids)

    def item(self, item_id: int) -> dict | None:
        return self._catalog.items([item_id]).get(item_id)

    def chunks_of(self, section_ids: Sequence[int]) -> dict[int, list[int]]:
        """Each section's chunk ids, in reading order (a document found by a section shows a chunk)."""
        return self._catalog.chunks_of(section_ids)

    def thumbnail(self, item_id: int) -> bytes | None:
        return self._catalog.thumbnail(item_id)

    def document(self, document_id: int) -> dict | None:
        return self._catalog.document(document_id)

    def metadata(self, document_id: int) -> dict[str, str | None]:
        return self._catalog.metadata_of(document_id)

    def tags(self, document_id: int) -> list[dict]:
        """The document's tags (``tag``, ``origin``: 'person' or the labeller, ``probability``)."""
        return self._catalog.tags_of(document_id)

    def vectors(self, item_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 matrix) of this model's vectors for those ``item_ids`` that have one."""
        with self._catalog.engine.connect() as conn:
            return VectorRecords(conn).vectors_for(self.model_id, item_ids)

    def allowed(self, filters: Filters) -> np.ndarray | None:
        """Sorted item ids that pass ``filters``, or None when nothing is filtered."""
        with self._catalog.engine.connect() as conn:
            return allowed_items(conn, filters)

    def bm25(
        self,
        query: str,
        k: int = 10,
        *,
        kinds: Sequence[str] | None = None,
        allow: Sequence[int] | None = None,
    ) -> list[tuple[int, float]]:
        """Best ``k`` (item id, score) for a full-text query, higher is better."""
        return self._catalog.bm25(query, k, kinds=kinds, allow=allow)

    def read_postings(self) -> None:
        """Hold BM25's postings in memory now, not from the second search on (see ``FullText``)."""
        self._catalog.read_postings()

    def counts(self) -> dict[str, int]:
        """Sources, documents, errors, items and tags in the catalog."""
        return self._catalog.counts()

    def errors(self, limit: int = 100) -> list[dict]:
        """Documents that could not be indexed, with the reason, newest first."""
        return self._catalog.errors(limit)

    def has_vectors(self, model_id: str) -> bool:
        """Whether the catalog holds any vector of ``model_id`` (cheap; e.g. is the text space filled?)."""
        return self._catalog.has_vectors(model_id)

    def stage_outputs(self, stage: str, item_ids: Sequence[int]) -> dict[int, object]:
        return self._catalog.stage_outputs(stage, item_ids)

    def page_items(self, document_ids: Sequence[int]) -> dict[tuple[int, int], tuple[int, list[float]]]:
        """(document id, page) -> (item id, box in points) of the page's render (PDF pages), for these documents."""
        return self._catalog.page_items(document_ids)

    def text_chars(self, document_id: int, page: int | None) -> int:
        """Characters of text-layer chunks a document has on ``page`` (a scanned page has none)."""
        return self._catalog.text_chars(document_id, page)

    def save_job(self, job: Mapping[str, Any]) -> None:
        """Record an ingest job's state (id, kind, target, options, state, created, finished, report, error)."""
        with self.write() as tx:
            tx.save_job(job)

    def job(self, job_id: str) -> dict | None:
        found = self._catalog.jobs(job_id=job_id)
        return found[0] if found else None

    def unfinished_jobs(self) -> list[dict]:
        """Jobs accepted but not finished when the last process ended, oldest first."""
        return self._catalog.jobs(states=("queued", "running"))

    # --- conversations (follow-up questions; every call names the owning key's fingerprint) --
    def start_conversation(self, owner: str) -> str:
        conversation_id = secrets.token_hex(8)
        with self.write() as tx:
            tx.start_conversation(conversation_id, owner, time.time())
        return conversation_id

    def add_turn(self, conversation_id: str, owner: str, turn: Mapping[str, Any]) -> int | None:
        """Append ``turn`` (question, standalone, answer); its position, None when the owner has no such conversation."""
        with self.write() as tx:
            return tx.add_turn(conversation_id, owner, dict(turn), time.time())

    def conversation(self, conversation_id: str, owner: str) -> dict | None:
        return self._catalog.conversation(conversation_id, owner)

    def conversations(self, owner: str) -> list[dict]:
        return self._catalog.conversations(owner)

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        with self.write() as tx:
            return tx.delete_conversation(conversation_id, owner)

    def expire_conversations(self, days: float) -> int:
        """Delete conversations not continued for ``days``; how many."""
        with self.write() as tx:
            return tx.expire_conversations(time.time() - days * 86400)

    # --- searching ------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int = 10, allow: Sequence[int] | np.ndarray | None = None
    ) -> list[list[Hit]]:
        """Nearest items for each query vector (cosine), best first, restricted to ``allow`` if given."""
        queries = np.atleast_2d(as_vectors(queries))
        self.refresh()
        if queries.shape[1] != self.dim:
            raise ModelMismatchError(
                f"query dimension {queries.shape[1]} does not match the store's {self.dim} ({self.model_id})"
            )
        if self._index.ntotal == 0:
            self._raise_if_other_models()
        if allow is not None:
            allow = np.unique(np.asarray(allow, dtype=np.int64))
            if len(allow) == 0:
                return [[] for _ in queries]
            if len(allow) <= EXACT_ALLOW_LIMIT:
                return self._exact(queries, k, allow)
        with self._lock.read():
            scores, ids = self._index.search(queries, k, allow)
        return [
            [Hit(int(i), float(s)) for s, i in zip(row_s, row_i) if i >= 0]
            for row_s, row_i in zip(scores, ids)
        ]

    def _exact(self, queries: np.ndarray, k: int, allow: np.ndarray) -> list[list[Hit]]:
        ids, matrix = self.vectors(allow.tolist())
        if not len(ids):
            return [[] for _ in queries]
        scores = queries @ matrix.T
        top = min(k, len(ids))
        results = []
        for row in scores:
            best = np.argpartition(-row, top - 1)[:top]
            best = best[np.argsort(-row[best], kind="stable")]
            results.append([Hit(int(ids[j]), float(row[j])) for j in best])
        return results

    def prune(self, model_id: str) -> int:
        """Drop another model's vectors and saved index (an old version nobody will roll back to)."""
        with self.write() as tx:
            count = tx.delete_vectors(model_id)
        slug = slug_of(model_id)
        try:  # an index kept outside the data directory (a Milvus collection) is dropped too
            manifest = json.loads((self._index_dir / f"{slug}.json").read_text())
            kind = backend(manifest["kind"])
            if kind.external:
                kind.load(self._index_dir / manifest["file"], manifest["dim"], {}).discard()
        except (OSError, ValueError, KeyError, RuntimeError, SpyglassError) as exc:
            log.info("no saved index of %s to discard (%s)", model_id, exc)
        for path in self._index_dir.glob(f"{slug}*"):
            path.unlink(missing_ok=True)
        return count

    def described_images(self) -> list[dict]:
        """Indexed image files (``path``, ``raw_path``) with their ``title`` and ``description``."""
        return self._catalog.described_images()

    # --- model versions ---------------------------------------------------------------------
    def model_versions(self) -> dict[str, dict]:
        """The recorded ``active``/``previous``/``switch`` CLIP models (see ``spyglass.versions``)."""
        return self._catalog.model_versions()

    @staticmethod
    def recorded_models(data_dir: Path) -> dict[str, dict]:
        """``model_versions()`` without opening a store (no model needed); {} for a new data directory."""
        return _read_catalog(data_dir, lambda catalog: catalog.model_versions(), {})

    @staticmethod
    def recorded_precision(data_dir: Path, model_id: str) -> str | None:
        """The precision ``model_id``'s vectors here were made in (``spec.space_id``): the active
        version's when it is this model, else the one that has vectors; None when none has."""

        def read(catalog: Catalog) -> str | None:
            active = (catalog.model_versions().get("active") or {}).get("model_id", "")
            if base_model_id(active) == model_id:
                return precision_of(active)
            return next((p for p in ("int8", "fp32") if catalog.has_vectors(space_id(model_id, p))), None)

        return _read_catalog(data_dir, read, None)

    # --- state ----------------------------------------------------------------------------
    @property
    def index(self) -> VectorIndex:
        return self._index

    def status(self) -> dict:
        """Counts, index state, and whether other models' vectors need a re-index."""
        return {
            **_catalog_status(self._catalog, self.model_id),
            "dim": self.dim,
            "index": self._index.kind,
            "indexed_vectors": self._index.ntotal,
        }

    def stage_backlog(self, stages: Sequence[StageKey]) -> dict[str, dict]:
        """Per item stage (name, version, kinds): its version and how many items still wait for it."""
        return _stage_backlog(self._catalog, stages)

    @staticmethod
    def compact(data_dir: Path) -> tuple[int, int]:
        """``Catalog.compact`` on a data directory's catalog (no model needed); its bytes before and after."""
        path = Path(data_dir) / "catalog.sqlite3"
        if not path.is_file() or not writable(path):
            raise SpyglassError(f"There is no writable catalog at {path} to compact.")
        before = path.stat().st_size
        catalog = Catalog(open_engine(path))
        try:
            catalog.compact()
        finally:
            catalog.engine.dispose()
        return before, path.stat().st_size

    @staticmethod
    def inspect(data_dir: Path, model_id: str | None, stages: Sequence[StageKey] = ()) -> dict:
        """``status()`` from the catalog and the saved index manifest alone: no model, no index load.

        What ``spyglass status`` shows, so it answers at once and works where no weights are.
        """
        path = Path(data_dir) / "catalog.sqlite3"
        catalog = Catalog(open_engine(path, read_only=not writable(path)))
        try:
            info = _catalog_status(catalog, model_id)
            manifest = {}
            if model_id is not None:
                path = Path(data_dir) / "index" / f"{slug_of(model_id)}.json"
                try:
                    manifest = json.loads(path.read_text())
                except (OSError, ValueError):
                    pass
            return {
                **info,
                "dim": manifest.get("dim"),
                "index": manifest.get("kind", "not built yet"),
                "indexed_vectors": manifest.get("count", 0),
                "errors_list": catalog.errors(),
                "stages": _stage_backlog(catalog, stages),
            }
        finally:
            catalog.engine.dispose()

    def _raise_if_other_models(self) -> None:
        space = space_of(self.model_id)

        def same_space(model_id: str) -> bool:
            return space_of(model_id) == space

        others = {
            m: n for m, n in self._catalog.vector_counts().items() if m != self.model_id and same_space(m)
        }
        if others:
            listed = ", ".join(f"{m} ({n} items)" for m, n in others.items())
            raise ReindexRequiredError(
                f"The catalog's vectors were made by {listed}, not by the configured model {self.model_id}; "
                "re-index to search with this model, or configure the model that made them."
            )

    # --- index maintenance ------------------------------------------------------------------
    def close(self) -> None:
        with self._writer:
            if self._unsaved and not self.read_only:
                self._save_if_possible()
            self._index.close()
        self._catalog.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stage_backlog(catalog: Catalog, stages: Sequence[StageKey]) -> dict[str, dict]:
    return {
        name: {"version": version, "pending": catalog.stage_pending(name, version, kinds)}
        for name, version, kinds in stages
    }


def _catalog_status(catalog: Catalog, model_id: str | None) -> dict:
    by_model = catalog.vector_counts()
    missing = 0
    space = space_of(model_id or "")
    if {m for m in by_model if space_of(m) == space} - {
        model_id
    }:  # only then is the full-scan count worth it
        with catalog.engine.connect() as conn:
            missing = conn.execute(
                text(
                    "SELECT count(DISTINCT v.item_id) FROM vectors v WHERE v.model_id IS NOT :m "
                    "AND (v.model_id LIKE :text_space) = :text AND NOT EXISTS "
                    "(SELECT 1 FROM vectors w WHERE w.item_id = v.item_id AND w.model_id IS :m)"
                ),
                {"m": model_id, "text_space": TEXT_SPACE_PREFIX + "%", "text": space == "text"},
            ).scalar_one()
    versions = catalog.model_versions()
    switch = versions.get("switch")
    return {
        **catalog.counts(),
        "model_id": model_id,
        "vectors_by_model": by_model,
        "items_needing_reindex": int(missing),
        "reindex_needed": bool(missing),
        "model_versions": versions,
        # (items with a CLIP vector, those the model being switched to has embedded)
        "switch_progress": catalog.embedded_items(switch["model_id"]) if switch else None,
    }


def _read_catalog(data_dir: Path, read: Callable[[Catalog], T], default: T) -> T:
    """``read`` over a data directory's catalog without opening a store; ``default`` when it has none."""
    path = Path(data_dir) / "catalog.sqlite3"
    if not path.is_file():
        return default
    catalog = Catalog(open_engine(path, read_only=not writable(path)))
    try:
        return read(catalog)
    finally:
        catalog.engine.dispose()
