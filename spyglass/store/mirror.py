"""The in-memory vector index as a mirror of the catalog: replayed from the vector log, rebuilt
from the vectors when in doubt, saved atomically with the log position it holds.

See ``store.py``'s docstring for the one mechanism; this is its index half. ``Store`` inherits
it and sets the attributes it reads (the catalog, the model, the locks and positions).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select, text

from spyglass.store.catalog import Catalog, Records, VectorRecords
from spyglass.store.index import VectorIndex, backend, create_index, resolve_kind
from spyglass.store.rwlock import RWLock
from spyglass.store.schema import vector_log, vectors

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 0.5  # how often a search checks for other processes' writes
GROWTH_REBUILD_FACTOR = 4  # an IVF trained for n vectors is rebuilt once it holds 4n


class IndexMirror:
    """One model's index over the catalog's vectors, kept in step with the vector log."""

    _catalog: Catalog
    model_id: str
    dim: int
    index_kind: str
    index_options: dict
    read_only: bool
    _lock: RWLock
    _writer: threading.Lock
    _index: VectorIndex
    _seq: int  # last vector_log position applied to the index
    _built_for: int  # vectors the index was sized/trained for
    _unsaved: int
    _checked: float  # monotonic time of the last look for other processes' writes
    _index_dir: Path
    _manifest_path: Path
    _slug: str

    def refresh(self) -> None:
        """Catch up with vectors written by other processes (`spyglass index` beside `spyglass serve`).

        Cheap and throttled: two indexed lookups at most every REFRESH_INTERVAL_S.
        """
        now = time.monotonic()
        if now - self._checked < REFRESH_INTERVAL_S:
            return
        self._checked = now
        if not self._writer.acquire(blocking=False):
            return  # a write of this process is under way and syncs the index itself; never make a search wait
        try:
            self._catch_up()
        finally:
            self._writer.release()

    def _catch_up(self) -> None:
        """Apply what other processes committed; if one also saved the index (trimming the log), load it.

        Runs under the writer lock. Saving calls it first, so a store never saves an index
        older than one another process already saved.
        """
        with self._catalog.engine.connect() as conn:
            saved = int(Records(conn).get_meta(f"index_seq:{self.model_id}") or 0)
            latest = (
                conn.execute(
                    select(func.max(vector_log.c.seq)).where(vector_log.c.model_id == self.model_id)
                ).scalar()
                or 0
            )
        if max(saved, latest) <= self._seq:
            return
        if saved > self._seq and not self._load_saved():
            self._rebuild()
        self._sync()

    def _sync(self) -> None:
        """Apply logged vector changes after ``self._seq`` to the in-memory index."""
        with self._catalog.engine.connect() as conn:  # one snapshot for the log and the vectors
            rows = conn.execute(
                select(vector_log.c.seq, vector_log.c.item_id, vector_log.c.op)
                .where(vector_log.c.model_id == self.model_id, vector_log.c.seq > self._seq)
                .order_by(vector_log.c.seq)
            ).all()
            if not rows:
                return
            first, last = {}, {}
            for _, item, op in rows:
                first.setdefault(item, op)
                last[item] = op
            # Ops on one id alternate add/delete: it was indexed iff its first op here is a
            # delete, and must end up indexed iff its last op is an add.
            removed = np.fromiter((i for i, op in first.items() if op == "d"), np.int64)
            ids, matrix = VectorRecords(conn).vectors_for(
                self.model_id, [i for i, op in last.items() if op == "a"]
            )
        if not self._index.trained or self._grown_out():
            self._rebuild()
            return
        try:
            with self._lock.write():
                if len(removed):
                    self._index.remove(removed)
                if len(ids):
                    self._index.add(ids, matrix)
                self._seq = rows[-1][0]
        except ValueError as exc:  # e.g. HNSW asked to re-add a tombstoned id
            log.info("index cannot apply changes incrementally (%s); rebuilding", exc)
            self._rebuild()
            return
        self._unsaved += len(rows)
        if self._index.needs_rebuild or self._grown_out():
            self._rebuild()

    def _grown_out(self) -> bool:
        """True when the collection outgrew the index: auto-kind should change, or IVF cells are overfull."""
        count = self._index.ntotal
        wanted = resolve_kind(self.index_kind, count)
        return wanted != self._index.kind or (
            self._index.kind == "ivf" and count > GROWTH_REBUILD_FACTOR * max(self._built_for, 1)
        )

    def _rebuild(self) -> None:
        """Build a fresh index from the vectors in SQLite, then swap it in (readers keep the old one meanwhile)."""
        with self._catalog.engine.connect() as conn:  # a consistent snapshot of vectors and log position
            seq = conn.execute(
                text("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'), 0)")
            ).scalar_one()
            count = conn.execute(
                select(func.count()).select_from(vectors).where(vectors.c.model_id == self.model_id)
            ).scalar_one()
            ids = np.empty(count, np.int64)
            matrix = np.empty((count, self.dim), np.float32)
            filled = 0
            for batch_ids, batch in VectorRecords(conn).iter_vectors(self.model_id):
                ids[filled : filled + len(batch_ids)] = batch_ids
                matrix[filled : filled + len(batch_ids)] = batch
                filled += len(batch_ids)
        options = {**self.index_options, "home": str(self._index_dir)}  # where a backend may keep files
        index = create_index(self.index_kind, self.dim, count, options)
        if count:
            if not index.trained:
                index.train(matrix)
            index.add(ids, matrix)
        log.info("built %s index over %d vectors for %s", index.kind, count, self.model_id)
        with self._lock.write():
            replaced = self._index
            self._index, self._seq, self._built_for = index, seq, count
        replaced.discard()
        self._unsaved += count or 1  # a rebuilt index is worth saving

    # --- persistence ----------------------------------------------------------------------
    def flush(self) -> None:
        """Save the index atomically now (it is also saved every ``autosave_changes`` and on close)."""
        if self.read_only:
            return
        with self._writer:
            self._save()

    def _save_if_possible(self) -> None:
        """Save the index, but never fail a write or a close over it: the index is derived from the
        catalog, so an unsaved one only costs a replay or rebuild at the next open (e.g. on a full disk)."""
        try:
            self._save()
        except (OSError, RuntimeError) as exc:  # faiss reports write errors as RuntimeError
            log.info("could not save the vector index (%s); it is rebuilt from the catalog when needed", exc)

    def _save(self) -> None:
        self._catch_up()
        self._index_dir.mkdir(parents=True, exist_ok=True)
        with self._lock.read():  # the index cannot change while it is written
            seq, index = self._seq, self._index
            target = self._index_dir / f"{self._slug}-{seq}{index.file_suffix}"
            atomic_write(target, index.save)
        manifest = {
            "store_id": self._catalog.store_id(),
            "model_id": self.model_id,
            "dim": self.dim,
            "kind": index.kind,
            "seq": seq,
            "file": target.name,
            "built_for": self._built_for,
            "count": index.ntotal,
            "settings": index.settings(),
        }
        atomic_write(self._manifest_path, lambda path: path.write_text(json.dumps(manifest)))
        with self._catalog.engine.begin() as conn:
            Records(conn).set_meta(f"index_seq:{self.model_id}", str(seq))
            conn.execute(
                delete(vector_log).where(vector_log.c.model_id == self.model_id, vector_log.c.seq <= seq)
            )
        for old in self._index_dir.glob(f"{self._slug}-*"):
            if old != target:
                old.unlink(missing_ok=True)
        self._unsaved = 0

    def _load_saved(self) -> bool:
        """Load the saved index if the catalog vouches for it; False means rebuild."""
        try:
            manifest = json.loads(self._manifest_path.read_text())
        except (OSError, ValueError):
            return False
        with self._catalog.engine.connect() as conn:
            vouched = Records(conn).get_meta(f"index_seq:{self.model_id}")
        file = self._index_dir / str(manifest.get("file", ""))
        wanted = manifest.get("kind") == resolve_kind(self.index_kind, int(manifest.get("count", 0)))
        if not (
            manifest.get("store_id") == self._catalog.store_id()
            and manifest.get("model_id") == self.model_id
            and manifest.get("dim") == self.dim
            and vouched is not None
            and int(vouched) == manifest.get("seq")
            and wanted
            and file.is_file()
        ):
            log.info("saved index at %s is not usable for this catalog; rebuilding", self._manifest_path)
            return False
        try:
            index = backend(manifest["kind"]).load(file, self.dim, manifest.get("settings", {}))
        except (RuntimeError, ValueError, KeyError) as exc:  # faiss raises RuntimeError on a corrupt file
            log.warning("saved index %s cannot be read (%s); rebuilding", file, exc)
            return False
        self._index, self._seq, self._built_for = (
            index,
            int(manifest["seq"]),
            int(manifest.get("built_for", 0)),
        )
        return True


def slug_of(model_id: str) -> str:
    """File-name-safe key of a model's index files."""
    return hashlib.sha256(model_id.encode()).hexdigest()[:16]


def atomic_write(path: Path, write) -> None:
    """Write to a temp file, fsync, rename over ``path``, fsync the directory."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk must leave no half-written file behind
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
