"""What callers of the store hold inside a read snapshot or a write transaction.

The store hands these out instead of SQL connections, so the rest of Spyglass speaks
in documents, items, metadata and vectors, and every statement stays in
``spyglass/store/``. A ``Transaction`` commits or rolls back as one unit: a whole
document with its items, metadata and vectors, or none of it.

Both are made of the catalog's connection-bound ``Records`` classes; what is written
here is only what a store adds: its model id, and the checks on vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import Connection

from spyglass.store.catalog import (
    ConversationWrites,
    DocumentReads,
    DocumentWrites,
    ModelVersionWrites,
    StageReads,
    StageWrites,
    VectorRecords,
)


class Snapshot(DocumentReads, StageReads):
    """Consistent reads (one SQLite snapshot) for planning work against the catalog."""

    def __init__(self, conn: Connection, model_id: str) -> None:
        super().__init__(conn)
        self.model_id = model_id

    def stale_documents(self) -> set[int]:
        """Documents whose items carry another model's vectors but not this store's."""
        return self.lacking_vectors(self.model_id)


class Transaction(DocumentWrites, StageWrites, ModelVersionWrites, ConversationWrites, Snapshot):
    """Writes of one transaction; the vector index catches up when it commits."""

    def __init__(
        self,
        conn: Connection,
        model_id: str,
        check_vectors: Callable[[np.ndarray, str], None],
        vector_dtype: str,
    ) -> None:
        """``check_vectors`` refuses a matrix that does not fit the store (the store's own check)."""
        super().__init__(conn, model_id)
        self._check_vectors, self._vector_dtype = check_vectors, vector_dtype

    def add_vectors(
        self, item_ids: Sequence[int], matrix: np.ndarray, model_id: str, *, replace: bool = False
    ) -> None:
        """Vectors for items; refused unless ``model_id`` is the store's (vectors of models never mix)."""
        self._check_vectors(matrix, model_id)
        VectorRecords(self._conn).add_vectors(model_id, item_ids, matrix, self._vector_dtype, replace=replace)

    def delete_vectors(self, model_id: str) -> int:
        """Drop every vector of another model (pruning); returns how many."""
        if model_id == self.model_id:
            raise ValueError("a store does not drop the vectors it searches")
        return VectorRecords(self._conn).delete_vectors(model_id)
