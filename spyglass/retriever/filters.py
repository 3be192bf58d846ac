"""Metadata filters, compiled to one SQL query that yields the allowed item ids.

The ids become the vector search's allow-list, so a selective filter (1 match in
10,000) still finds its match instead of being applied to a short top-k afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, and_, exists, func, or_, select

from spyglass.store.schema import documents, item_metadata, items, tags

IMAGE_KINDS = ("image", "page", "figure", "keyframe")
TEXT_KINDS = ("chunk",)
KIND_ALIASES = {"photo": "image", "photos": "image", "images": "image", "pages": "page", "figures": "figure",
                "chunks": "chunk", "text": "chunk", "keyframes": "keyframe"}


@dataclass(frozen=True)
class Filters:
    """Every field narrows the result; an empty ``Filters`` allows everything."""

    modality: str | None = None  # "image" or "text"
    kinds: tuple[str, ...] = ()  # image, page, figure, chunk, keyframe (or photo)
    path_prefix: str | None = None  # a folder (or source) prefix
    types: tuple[str, ...] = ()  # file extensions ("jpg", ".pdf") or MIME prefixes ("image/")
    date_from: float | None = None  # epoch seconds; EXIF capture time, else file mtime
    date_to: float | None = None
    tags: tuple[str, ...] = ()  # all of these
    metadata: tuple[tuple[str, str], ...] = field(default=())  # key == value pairs

    @property
    def empty(self) -> bool:
        return self == Filters()

    def item_kinds(self) -> tuple[str, ...]:
        wanted = {KIND_ALIASES.get(k, k) for k in self.kinds}
        if self.modality == "image":
            wanted = wanted & set(IMAGE_KINDS) if wanted else set(IMAGE_KINDS)
        elif self.modality == "text":
            wanted = wanted & set(TEXT_KINDS) if wanted else set(TEXT_KINDS)
        elif self.modality is not None:
            raise ValueError(f"modality must be 'image' or 'text', not {self.modality!r}")
        return tuple(sorted(wanted))


def allowed_items(conn: Connection, filters: Filters) -> np.ndarray | None:
    """Sorted allowed item ids, or None when nothing is filtered (search everything)."""
    if filters.empty:
        return None
    conditions = []
    kinds = filters.item_kinds()
    if kinds or filters.kinds or filters.modality:
        conditions.append(items.c.kind.in_(kinds))
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
        conditions.append(exists().where(item_metadata.c.document_id == documents.c.id, item_metadata.c.key == key,
                                         item_metadata.c.value == str(value)))
    query = select(items.c.id).join(documents, documents.c.id == items.c.document_id).where(and_(*conditions))
    return np.fromiter((row[0] for row in conn.execute(query.order_by(items.c.id))), np.int64)


def _type_condition(kind: str):
    if "/" in kind:
        return documents.c.mime.like(f"{kind}%")
    suffix = "." + kind.lstrip(".").lower()
    return func.lower(documents.c.path).like(f"%{suffix}")


def parse_filter_args(values: Sequence[str]) -> Filters:
    """CLI form: ``kind=photo``, ``type=pdf``, ``path=/photos``, ``tag=trip``, ``after=2023-01-01``, ``key=value``."""
    from datetime import datetime, timezone

    fields: dict = {"kinds": [], "types": [], "tags": [], "metadata": []}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep:
            raise ValueError(f"filter {value!r} is not key=value")
        if key == "kind":
            fields["kinds"].append(raw)
        elif key == "type":
            fields["types"].append(raw)
        elif key == "tag":
            fields["tags"].append(raw)
        elif key in ("path", "folder"):
            fields["path_prefix"] = raw
        elif key == "modality":
            fields["modality"] = raw
        elif key in ("after", "before"):
            stamp = datetime.fromisoformat(raw).replace(tzinfo=timezone.utc).timestamp()
            fields["date_from" if key == "after" else "date_to"] = stamp
        else:
            fields["metadata"].append((key, raw))
    return Filters(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
