"""Vectors of every space, and the records of which CLIP model is active."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select, text

from spyglass.kinds import TEXT_SPACE_PREFIX
from spyglass.store.catalog.base import CatalogBase, Records
from spyglass.store.schema import (
    meta,
    vector_log,
    vectors,
)

VECTOR_DTYPES = {"float16": np.float16, "float32": np.float32}


class VectorRecords(Records):
    """Vectors read and written inside the caller's snapshot or transaction."""

    def add_vectors(
        self,
        model_id: str,
        item_ids: Sequence[int],
        matrix: np.ndarray,
        dtype: str = "float16",
        *,
        replace: bool = False,
    ) -> None:
        """Store one vector per item for ``model_id`` (compactly, as ``dtype`` blobs); ``replace`` overwrites."""
        if len(item_ids) != len(matrix):
            raise ValueError(f"{len(item_ids)} item ids for {len(matrix)} vectors")
        if replace:  # a delete and an insert, so the log tells the index about both
            self._conn.execute(
                delete(vectors).where(
                    vectors.c.model_id == model_id, vectors.c.item_id.in_([int(i) for i in item_ids])
                )
            )
        blobs = np.ascontiguousarray(matrix, dtype=VECTOR_DTYPES[dtype])
        self._conn.execute(
            insert(vectors),
            [
                {"item_id": int(i), "model_id": model_id, "dtype": dtype, "data": row.tobytes()}
                for i, row in zip(item_ids, blobs)
            ],
        )

    def vectors_for(self, model_id: str, item_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 matrix) for those of ``item_ids`` that have a vector of ``model_id``."""
        query = select(vectors.c.item_id, vectors.c.dtype, vectors.c.data).where(
            vectors.c.model_id == model_id,
            vectors.c.item_id.in_(
                select(text("value")).select_from(func.json_each(json.dumps(list(map(int, item_ids)))))
            ),
        )
        return _stack(self._conn.execute(query).all())

    def iter_vectors(self, model_id: str, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All vectors of ``model_id`` in id order, in batches, within the caller's transaction."""
        result = self._conn.execute(
            select(vectors.c.item_id, vectors.c.dtype, vectors.c.data)
            .where(vectors.c.model_id == model_id)
            .order_by(vectors.c.item_id)
        )
        while rows := result.fetchmany(batch):
            yield _stack(rows)

    def delete_vectors(self, model_id: str) -> int:
        """Forget one model: its vectors, its log and its index's saved position; returns how many vectors."""
        count = self._conn.execute(delete(vectors).where(vectors.c.model_id == model_id)).rowcount
        self._conn.execute(delete(vector_log).where(vector_log.c.model_id == model_id))
        self._conn.execute(delete(meta).where(meta.c.key == f"index_seq:{model_id}"))
        return count


class ModelVersionWrites(Records):
    """Which CLIP model is active, previous or being switched to, set inside a transaction."""

    def set_model_versions(self, records: Mapping[str, Mapping | None]) -> None:
        """Set (or, with None, clear) version records by role: ``active``, ``previous``, ``switch``."""
        for role, record in records.items():
            if record is None:
                self._conn.execute(delete(meta).where(meta.c.key == f"model:{role}"))
            else:
                self.set_meta(f"model:{role}", json.dumps(dict(record)))


class Vectors(CatalogBase):
    """Counts of vectors and the model records, each read on its own connection."""

    def has_vectors(self, model_id: str) -> bool:
        """Whether any vector of ``model_id`` exists (one indexed lookup)."""
        with self.engine.connect() as conn:
            found = conn.execute(select(vectors.c.item_id).where(vectors.c.model_id == model_id).limit(1))
            return found.first() is not None

    def vector_counts(self) -> dict[str, int]:
        """Number of vectors per model id."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(select(vectors.c.model_id, func.count()).group_by(vectors.c.model_id)).all()
            )

    def model_versions(self) -> dict[str, dict]:
        """The recorded ``active``, ``previous`` and ``switch`` (in progress) CLIP models, where set."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(meta.c.key, meta.c.value).where(meta.c.key.like("model:%"))).all()
        return {key.removeprefix("model:"): json.loads(value) for key, value in rows}

    def embedded_items(self, model_id: str) -> tuple[int, int]:
        """(items with a CLIP-space vector of any model, those with one of ``model_id``): a switch's progress."""
        with self.engine.connect() as conn:
            total = conn.execute(
                text("SELECT count(DISTINCT item_id) FROM vectors WHERE model_id NOT LIKE :text_space"),
                {"text_space": TEXT_SPACE_PREFIX + "%"},
            ).scalar_one()
            done = conn.execute(
                select(func.count()).select_from(vectors).where(vectors.c.model_id == model_id)
            ).scalar_one()
        return int(total), int(done)


def _stack(rows: Sequence) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
    kinds = {row[1] for row in rows}
    if len(kinds) == 1:  # the usual case: one buffer, one conversion
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype=VECTOR_DTYPES[kinds.pop()])
        return ids, matrix.reshape(len(rows), -1).astype(np.float32)
    return ids, np.stack(
        [np.frombuffer(row[2], dtype=VECTOR_DTYPES[row[1]]).astype(np.float32) for row in rows]
    )
