"""Filters compiled to one SQL query that yields the allowed item ids (the vector search's allow-list)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, and_, exists, func, or_, select

from spyglass.filters import Filters
from spyglass.kinds import SECTION_KINDS, ItemKind
from spyglass.store.schema import documents, item_metadata, items, tags


def allowed_items(conn: Connection, filters: Filters) -> np.ndarray | None:
    """Sorted allowed item ids, or None when nothing is filtered (search everything)."""
    if filters.empty:
        return None
    conditions = []
    kinds = filters.item_kinds()
    if kinds or filters.kinds or filters.modality:
        # A chunk's section scores its document (BM25, the text space): allowed wherever chunks are.
        sections = SECTION_KINDS if ItemKind.CHUNK in kinds else ()
        conditions.append(items.c.kind.in_([*kinds, *sections]))
    if filters.path_prefix:
        prefix = filters.path_prefix.rstrip("/")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(or_(documents.c.path == prefix, documents.c.path.like(f"{escaped}/%", escape="\\")))
    if filters.types:
        conditions.append(or_(*[_type_condition(t) for t in filters.types]))
    if filters.date_from is not None or filters.date_to is not None:
        taken = (
            select(item_metadata.c.number)
            .where(item_metadata.c.document_id == documents.c.id, item_metadata.c.key == "taken_at")
            .scalar_subquery()
        )
        when = func.coalesce(taken, documents.c.mtime)
        if filters.date_from is not None:
            conditions.append(when >= filters.date_from)
        if filters.date_to is not None:
            conditions.append(when <= filters.date_to)
    for tag in filters.tags:
        conditions.append(exists().where(tags.c.document_id == documents.c.id, tags.c.tag == tag))
    for key, value in filters.metadata:
        conditions.append(
            exists().where(
                item_metadata.c.document_id == documents.c.id,
                item_metadata.c.key == key,
                item_metadata.c.value == str(value),
            )
        )
    query = select(items.c.id).join(documents, documents.c.id == items.c.document_id).where(and_(*conditions))
    return np.fromiter((row[0] for row in conn.execute(query.order_by(items.c.id))), np.int64)


def _type_condition(kind: str):
    if "/" in kind:
        return documents.c.mime.like(f"{kind}%")
    suffix = "." + kind.lstrip(".").lower()
    return func.lower(documents.c.path).like(f"%{suffix}")
