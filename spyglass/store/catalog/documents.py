"""Sources, documents and their items, metadata and tags."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update

from spyglass.kinds import TEXT_SPACE_PREFIX
from spyglass.store.catalog.base import CatalogBase, Records
from spyglass.store.schema import (
    documents,
    item_metadata,
    items,
    sources,
    tags,
)
from spyglass.words import document_names

ITEM_FIELDS = (
    "kind",
    "page",
    "bbox",
    "char_start",
    "char_end",
    "timestamp",
    "text",
    "parent_id",
    "content_hash",
    "thumbnail",
    "names",
    "ocr",
)
PERSON = "person"  # the origin of a tag a person set (the others name the labeller that chose them)


class DocumentReads(Records):
    """Reads of documents and items inside one snapshot or transaction."""

    def documents_of(self, source_id: int) -> dict[str, dict]:
        """A source's documents keyed by path."""
        rows = self._conn.execute(select(documents).where(documents.c.source_id == source_id)).mappings()
        return {row["path"]: dict(row) for row in rows}

    def document_items(self, document_id: int) -> list[dict]:
        columns = [c for c in items.c if c.name != "thumbnail"]
        rows = self._conn.execute(
            select(*columns).where(items.c.document_id == document_id).order_by(items.c.id)
        )
        return [dict(row) for row in rows.mappings()]

    def documents_by_hash(self, content_hash: str, status: str = "indexed") -> list[dict]:
        rows = self._conn.execute(
            select(documents).where(documents.c.content_hash == content_hash, documents.c.status == status)
        ).mappings()
        return [dict(row) for row in rows]

    def document(self, document_id: int) -> dict | None:
        row = self._conn.execute(select(documents).where(documents.c.id == document_id)).mappings().first()
        return dict(row) if row else None

    def document_id(self, source_id: int, path: str) -> int | None:
        return self._conn.execute(
            select(documents.c.id).where(documents.c.source_id == source_id, documents.c.path == path)
        ).scalar()

    def documents_under(self, path: str) -> list[int]:
        """Ids of documents at ``path`` or inside it (a folder), any source."""
        rows = self._conn.execute(select(documents.c.id).where(at_or_inside(path)))
        return [int(r[0]) for r in rows]

    def lacking_vectors(self, model_id: str) -> set[int]:
        """Documents with items embedded by another model but not by ``model_id`` (need re-embedding)."""
        rows = self._conn.execute(
            text(
                "SELECT DISTINCT i.document_id FROM items i JOIN vectors v ON v.item_id = i.id "
                "WHERE v.model_id != :m AND v.model_id NOT LIKE :text_space AND NOT EXISTS (SELECT 1 FROM vectors w WHERE w.item_id = i.id AND w.model_id = :m)"
            ),
            {"m": model_id, "text_space": TEXT_SPACE_PREFIX + "%"},
        )
        return {int(r[0]) for r in rows}


class DocumentWrites(DocumentReads):
    """Writes of sources, documents, items, metadata and tags inside one transaction."""

    def ensure_source(self, kind: str, uri: str) -> int:
        found = self._conn.execute(select(sources.c.id).where(sources.c.uri == uri)).scalar()
        if found is not None:
            return int(found)
        return int(
            self._conn.execute(
                insert(sources).values(kind=kind, uri=uri, created_at=time.time())
            ).inserted_primary_key[0]
        )

    def upsert_document(self, source_id: int, path: str, **fields: Any) -> int:
        """Insert or update a document row by (source, path); returns its id."""
        found = self.document_id(source_id, path)
        fields.setdefault("status", "pending")
        if found is not None:
            self._conn.execute(update(documents).where(documents.c.id == found).values(**fields))
            return int(found)
        return int(
            self._conn.execute(
                insert(documents).values(source_id=source_id, path=path, **fields)
            ).inserted_primary_key[0]
        )

    def update_document(self, document_id: int, **fields: Any) -> None:
        self._conn.execute(update(documents).where(documents.c.id == document_id).values(**fields))
        if "path" in fields:  # a renamed file is found by its new name, and no longer by its old one
            self.name_document(document_id)

    def name_document(self, document_id: int) -> None:
        """Put the document's path words and descriptive metadata on its lead (first) item's ``names``."""
        path = self._conn.execute(select(documents.c.path).where(documents.c.id == document_id)).scalar()
        lead = self._conn.execute(
            select(func.min(items.c.id)).where(items.c.document_id == document_id)
        ).scalar()
        if path is None or lead is None:
            return
        metadata = dict(
            self._conn.execute(
                select(item_metadata.c.key, item_metadata.c.value).where(
                    item_metadata.c.document_id == document_id
                )
            ).all()
        )
        self._conn.execute(
            update(items).where(items.c.id == lead).values(names=document_names(path, metadata))
        )

    def set_ocr(self, texts: Mapping[int, str | None]) -> None:
        """The text read in each item's pixels (None: none found); BM25 follows through triggers."""
        if texts:
            self._conn.execute(
                text("UPDATE items SET ocr = :t WHERE id = :i"),
                [{"i": int(i), "t": t} for i, t in texts.items()],
            )

    def delete_document(self, document_id: int) -> None:
        """Delete a document; items, metadata, tags and vectors go with it (cascades, logged for the index)."""
        self._conn.execute(delete(documents).where(documents.c.id == document_id))

    def add_items(self, document_id: int, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert items of one document; ``bbox`` may be a sequence (stored as JSON).

        A row's ``parent_index`` names an earlier row of the same call as its parent.
        """
        ids: list[int] = []
        for row in rows:
            values = {key: row[key] for key in ITEM_FIELDS if key in row}
            if row.get("parent_index") is not None:
                values["parent_id"] = ids[row["parent_index"]]
            if isinstance(values.get("bbox"), (list, tuple)):
                values["bbox"] = json.dumps([round(float(v), 2) for v in values["bbox"]])
            ids.append(
                int(
                    self._conn.execute(
                        insert(items).values(document_id=document_id, **values)
                    ).inserted_primary_key[0]
                )
            )
        return ids

    def clear_document(self, document_id: int) -> None:
        """Remove a document's items (and so their vectors), extracted metadata and automatic tags;
        a person's tags stay."""
        self._conn.execute(delete(items).where(items.c.document_id == document_id))
        self._conn.execute(delete(item_metadata).where(item_metadata.c.document_id == document_id))
        self._conn.execute(delete(tags).where(tags.c.document_id == document_id, tags.c.origin != PERSON))

    def copy_items(self, from_document: int, to_document: int) -> int:
        """Copy items, metadata and vectors of identical content to another document (no re-encoding)."""
        old = (
            self._conn.execute(select(items).where(items.c.document_id == from_document).order_by(items.c.id))
            .mappings()
            .all()
        )
        mapping: dict[int, int] = {}
        for row in old:
            values = {key: row[key] for key in ITEM_FIELDS}
            values["parent_id"] = mapping.get(row["parent_id"]) if row["parent_id"] is not None else None
            mapping[row["id"]] = int(
                self._conn.execute(
                    insert(items).values(document_id=to_document, **values)
                ).inserted_primary_key[0]
            )
        # Every space's vectors, and what later stages made of identical content, hold for the copy too.
        if mapping:
            pairs = [{"new": new_id, "old": old_id} for old_id, new_id in mapping.items()]
            self._conn.execute(
                text(
                    "INSERT INTO vectors (item_id, model_id, dtype, data) "
                    "SELECT :new, model_id, dtype, data FROM vectors WHERE item_id = :old"
                ),
                pairs,
            )
            self._conn.execute(
                text(
                    "INSERT OR REPLACE INTO stage_runs (item_id, stage, version, output, ran_at) "
                    "SELECT :new, stage, version, output, ran_at FROM stage_runs WHERE item_id = :old"
                ),
                pairs,
            )
        self._conn.execute(
            text(
                "INSERT OR REPLACE INTO metadata (document_id, key, value, number) "
                "SELECT :to, key, value, number FROM metadata WHERE document_id = :from"
            ),
            {"to": to_document, "from": from_document},
        )
        self._conn.execute(  # the labels its items earned, as their stage runs were copied
            text(
                "INSERT OR IGNORE INTO tags (document_id, tag, origin, probability) "
                "SELECT :to, tag, origin, probability FROM tags WHERE document_id = :from AND origin != :person"
            ),
            {"to": to_document, "from": from_document, "person": PERSON},
        )
        return len(mapping)

    def delete_items(self, item_ids: Iterable[int]) -> None:
        self._conn.execute(delete(items).where(items.c.id.in_(list(item_ids))))

    def set_metadata(self, document_id: int, values: Mapping[str, Any]) -> None:
        """Store metadata; numbers (and dates as epoch seconds) also go to ``number`` for range filters."""
        for key, value in values.items():
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            self._conn.execute(
                text(
                    "INSERT INTO metadata (document_id, key, value, number) VALUES (:d, :k, :v, :n) "
                    "ON CONFLICT (document_id, key) DO UPDATE SET value = excluded.value, number = excluded.number"
                ),
                {"d": document_id, "k": key, "v": None if value is None else str(value), "n": number},
            )

    def add_tags(self, document_id: int, names: Iterable[str]) -> None:
        """A person's tags; one a labeller had set becomes the person's (and is kept from then on)."""
        for name in names:
            self._conn.execute(
                text(
                    "INSERT INTO tags (document_id, tag, origin) VALUES (:d, :t, :person) "
                    "ON CONFLICT (document_id, tag) DO UPDATE SET origin = :person, probability = NULL"
                ),
                {"d": document_id, "t": name, "person": PERSON},
            )

    def set_labels(self, origin: str, labels: Mapping[int, Mapping[str, float]]) -> None:
        """Automatic tags from the labeller ``origin`` for each document, with their probabilities.

        Tags of any other labeller on these documents go (the vocabulary or the model changed);
        this labeller's accumulate, keeping a label's highest probability over the document's items;
        a person's tag of the same name wins over a label.
        """
        for document_id, scores in labels.items():
            self._conn.execute(
                delete(tags).where(tags.c.document_id == document_id, tags.c.origin.not_in([PERSON, origin]))
            )
            if scores:
                self._conn.execute(
                    text(
                        "INSERT INTO tags (document_id, tag, origin, probability) VALUES (:d, :t, :o, :p) "
                        "ON CONFLICT (document_id, tag) DO UPDATE SET probability = max(probability, excluded.probability) "
                        "WHERE origin = excluded.origin"
                    ),
                    [{"d": document_id, "t": tag, "o": origin, "p": float(p)} for tag, p in scores.items()],
                )


class Documents(CatalogBase):
    """Reads that open their own connection: what a search shows of its hits."""

    def document(self, document_id: int) -> dict | None:
        with self.engine.connect() as conn:
            return DocumentReads(conn).document(document_id)

    def chunks_of(self, section_ids: Sequence[int]) -> dict[int, list[int]]:
        """Each section's chunk ids (its children: a section has no others), in reading order."""
        wanted = select(text("value")).select_from(func.json_each(json.dumps(list(map(int, section_ids)))))
        query = (
            select(items.c.parent_id, items.c.id)
            .where(items.c.parent_id.in_(wanted))  # no kind test: SQLite then uses items_parent
            .order_by(items.c.id)
        )
        chunks: dict[int, list[int]] = {}
        with self.engine.connect() as conn:
            for parent, item in conn.execute(query):
                chunks.setdefault(parent, []).append(item)
        return chunks

    def items(self, item_ids: Sequence[int]) -> dict[int, dict]:
        """Item rows (without thumbnails) with their document's path, keyed by id; missing ids are absent."""
        columns = [c for c in items.c if c.name != "thumbnail"]
        query = (
            select(
                *columns,
                documents.c.path,
                documents.c.raw_path,
                documents.c.mime,
                documents.c.content_hash.label("document_hash"),
            )
            .join(documents, documents.c.id == items.c.document_id)
            .where(
                items.c.id.in_(
                    select(text("value")).select_from(func.json_each(json.dumps(list(map(int, item_ids)))))
                )
            )
        )
        with self.engine.connect() as conn:
            result = conn.execute(query)
            keys = list(result.keys())  # plain tuples zipped: a search reads a thousand rows, mappings cost
            return {row[0]: dict(zip(keys, row)) for row in result}

    def thumbnail(self, item_id: int) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(select(items.c.thumbnail).where(items.c.id == item_id)).scalar()

    def tags_of(self, document_id: int) -> list[dict]:
        """The document's tags: a person's first (by name), then labels by falling probability."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tags.c.tag, tags.c.origin, tags.c.probability)
                .where(tags.c.document_id == document_id)
                .order_by(tags.c.origin != PERSON, tags.c.probability.desc(), tags.c.tag)
            )
            return [dict(row) for row in rows.mappings()]

    def metadata_of(self, document_id: int) -> dict[str, str | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(item_metadata.c.key, item_metadata.c.value).where(
                    item_metadata.c.document_id == document_id
                )
            )
            return dict(rows.all())


def at_or_inside(path: str):
    """Documents at ``path`` (a file) or inside it (a folder)."""
    prefix = path.rstrip("/")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (documents.c.path == prefix) | documents.c.path.like(f"{escaped}/%", escape="\\")
