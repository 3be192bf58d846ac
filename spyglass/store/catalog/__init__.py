"""The catalog: typed reads and writes over the SQLite tables, one module per table group.

Each module has two kinds of class. ``Records`` subclasses (``DocumentReads``, ``DocumentWrites``,
``StageWrites``, ``VectorRecords``, ...) are bound to one connection, so a whole batch (a document,
its items, metadata and vectors) commits or rolls back as one transaction; the store's sessions are
made of them. ``Catalog`` gathers the reads that open their own short connections.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from spyglass.store.catalog.base import Records
from spyglass.store.catalog.conversations import Conversations, ConversationWrites
from spyglass.store.catalog.documents import ITEM_FIELDS, PERSON, DocumentReads, Documents, DocumentWrites
from spyglass.store.catalog.fulltext import CHECKPOINT, FullText
from spyglass.store.catalog.stages import StageReads, Stages, StageWrites
from spyglass.store.catalog.vectors import VECTOR_DTYPES, ModelVersionWrites, VectorRecords, Vectors
from spyglass.store.schema import documents, items, sources, tags

__all__ = [
    "ITEM_FIELDS",
    "PERSON",
    "VECTOR_DTYPES",
    "Catalog",
    "ConversationWrites",
    "DocumentReads",
    "DocumentWrites",
    "ModelVersionWrites",
    "Records",
    "StageReads",
    "StageWrites",
    "VectorRecords",
]


class Catalog(Documents, Vectors, FullText, Stages, Conversations):
    """Every table group's reads and writes over one database."""

    def compact(self) -> None:
        """A full clean-up: deleted words merged out, the file rewritten without free pages, the
        WAL emptied (``spyglass compact``)."""
        self.forget_deleted_words(always=True)
        self.run_alone("VACUUM")
        self.run_alone(CHECKPOINT)

    def described_images(self) -> list[dict]:
        """Indexed image files with their ``title`` and ``description`` metadata (None where absent)."""
        query = text(
            "SELECT d.path, d.raw_path, "
            "(SELECT value FROM metadata WHERE document_id = d.id AND key = 'title') AS title, "
            "(SELECT value FROM metadata WHERE document_id = d.id AND key = 'description') AS description "
            "FROM documents d WHERE d.status = 'indexed' AND EXISTS "
            "(SELECT 1 FROM items i WHERE i.document_id = d.id AND i.kind = 'image') ORDER BY d.id"
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def errors(self, limit: int = 100) -> list[dict]:
        """Documents that could not be indexed, with the reason, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(documents.c.id, documents.c.path, documents.c.error)
                .where(documents.c.status == "error")
                .order_by(documents.c.id.desc())
                .limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "sources": conn.execute(select(func.count()).select_from(sources)).scalar_one(),
                "documents": conn.execute(select(func.count()).select_from(documents)).scalar_one(),
                "errors": conn.execute(
                    select(func.count()).select_from(documents).where(documents.c.status == "error")
                ).scalar_one(),
                "items": conn.execute(select(func.count()).select_from(items)).scalar_one(),
                "tags": conn.execute(select(func.count()).select_from(tags)).scalar_one(),
            }
