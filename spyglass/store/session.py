"""What callers of the store hold inside a read snapshot or a write transaction.

The store hands these out instead of SQL connections, so the rest of Spyglass speaks
in documents, items, metadata and vectors, and every statement stays in
``spyglass/store/``. A ``Transaction`` commits or rolls back as one unit: a whole
document with its items, metadata and vectors, or none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection

from spyglass.store.catalog import Catalog


class Snapshot:
    """Consistent reads (one SQLite snapshot) for planning work against the catalog."""

    def __init__(self, conn: Connection, catalog: Catalog, model_id: str) -> None:
        self._conn, self._catalog, self.model_id = conn, catalog, model_id

    def documents_of(self, source_id: int) -> dict[str, dict]:
        """A source's documents keyed by path."""
        return self._catalog.documents_of(self._conn, source_id)

    def stale_documents(self) -> set[int]:
        """Documents whose items carry another model's vectors but not this store's."""
        return self._catalog.stale_documents(self._conn, self.model_id)

    def document_items(self, document_id: int) -> list[dict]:
        """A document's items (no thumbnails) in the order they were stored."""
        return self._catalog.document_items(self._conn, document_id)

    def documents_by_hash(self, content_hash: str, status: str = "indexed") -> list[dict]:
        return self._catalog.documents_by_hash(self._conn, content_hash, status)

    def document(self, document_id: int) -> dict | None:
        return self._catalog.document_row(self._conn, document_id)

    def document_id(self, source_id: int, path: str) -> int | None:
        return self._catalog.document_id(self._conn, source_id, path)

    def documents_under(self, path: str) -> list[int]:
        """Ids of documents at ``path`` or inside it (a folder), any source."""
        return self._catalog.documents_under(self._conn, path)

    def stage_todo(
        self, stage: str, version: int, kinds: Sequence[str], limit: int, under: str | None = None
    ) -> list[dict]:
        """Up to ``limit`` items of ``kinds`` that ``stage`` has not processed at ``version``, oldest
        first (of documents at or inside the path ``under``, when given)."""
        return self._catalog.stage_todo(self._conn, stage, version, kinds, limit, under)


class Transaction(Snapshot):
    """Writes of one transaction; the vector index catches up when it commits."""

    def __init__(
        self,
        conn: Connection,
        catalog: Catalog,
        model_id: str,
        check_vectors: Callable[[np.ndarray, str], None],
        vector_dtype: str,
    ) -> None:
        """``check_vectors`` refuses a matrix that does not fit the store (the store's own check)."""
        super().__init__(conn, catalog, model_id)
        self._check_vectors, self._vector_dtype = check_vectors, vector_dtype

    def ensure_source(self, kind: str, uri: str) -> int:
        return self._catalog.ensure_source(self._conn, kind, uri)

    def upsert_document(self, source_id: int, path: str, **fields: Any) -> int:
        """Insert or update a document by (source, path); returns its id."""
        return self._catalog.upsert_document(self._conn, source_id, path, **fields)

    def update_document(self, document_id: int, **fields: Any) -> None:
        self._catalog.update_document(self._conn, document_id, **fields)

    def delete_document(self, document_id: int) -> None:
        """A document goes with its items, metadata, tags and vectors."""
        self._catalog.delete_document(self._conn, document_id)

    def clear_document(self, document_id: int) -> None:
        """Remove a document's items and extracted metadata before it is re-loaded; user tags stay."""
        self._catalog.clear_document(self._conn, document_id)

    def add_items(self, document_id: int, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        return self._catalog.add_items(self._conn, document_id, rows)

    def name_document(self, document_id: int) -> None:
        """Make the document findable by its path words and descriptive metadata (after both are written)."""
        self._catalog.name_document(self._conn, document_id)

    def set_ocr(self, texts: Mapping[int, str | None]) -> None:
        """Text read in items' pixels joins their searchable words."""
        self._catalog.set_ocr(self._conn, texts)

    def delete_items(self, item_ids: Iterable[int]) -> None:
        self._catalog.delete_items(self._conn, item_ids)

    def copy_items(self, from_document: int, to_document: int) -> int:
        """Identical content: items, metadata and every space's vectors copied, nothing re-encoded."""
        return self._catalog.copy_items(self._conn, from_document, to_document)

    def set_metadata(self, document_id: int, values: Mapping[str, Any]) -> None:
        self._catalog.set_metadata(self._conn, document_id, values)

    def add_tags(self, document_id: int, names: Iterable[str]) -> None:
        self._catalog.add_tags(self._conn, document_id, names)

    def set_labels(self, origin: str, labels: Mapping[int, Mapping[str, float]]) -> None:
        """Automatic tags per document from one labeller (see ``Catalog.set_labels``)."""
        self._catalog.set_labels(self._conn, origin, labels)

    def add_vectors(
        self, item_ids: Sequence[int], matrix: np.ndarray, model_id: str, *, replace: bool = False
    ) -> None:
        """Vectors for items; refused unless ``model_id`` is the store's (vectors of models never mix)."""
        self._check_vectors(matrix, model_id)
        self._catalog.add_vectors(self._conn, model_id, item_ids, matrix, self._vector_dtype, replace=replace)

    def set_model_versions(self, records: Mapping[str, Mapping | None]) -> None:
        """Record which CLIP model is ``active``, ``previous`` or being switched to (None clears a role)."""
        self._catalog.set_model_versions(self._conn, records)

    def delete_vectors(self, model_id: str) -> int:
        """Drop every vector of another model (pruning); returns how many."""
        if model_id == self.model_id:
            raise ValueError("a store does not drop the vectors it searches")
        return self._catalog.delete_vectors(self._conn, model_id)

    def save_job(self, job: Mapping[str, Any]) -> None:
        self._catalog.save_job(self._conn, job)

    def rerun_stages(self, item_ids: Sequence[int], keep: str) -> None:
        """Other stages run again on these items (``keep``, the one that changed their input, does not)."""
        self._catalog.rerun_stages(self._conn, item_ids, keep)

    def record_stage(self, stage: str, version: int, results: Mapping[int, Any]) -> None:
        """Mark items as processed by ``stage`` at ``version``, with each one's output (JSON-able, or None)."""
        self._catalog.record_stage(self._conn, stage, version, results)
