"""The catalog: typed reads and writes over the SQLite tables.

Write methods take the caller's connection, so a whole batch (a document, its
items, metadata and vectors) commits or rolls back as one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from spyglass.kinds import TEXT_SPACE_PREFIX
from spyglass.store.schema import (
    documents,
    item_metadata,
    items,
    jobs,
    meta,
    sources,
    stage_runs,
    tags,
    vector_log,
    vectors,
)
from spyglass.words import NEAR_MIN_LENGTH, content_words, document_names, fold, near_any, query_terms

VECTOR_DTYPES = {"float16": np.float16, "float32": np.float32}
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
NEAR_CANDIDATES = 200  # items sharing the most trigrams with a misspelt word, checked one by one


class Catalog:
    """Reads open their own short connections; writes use the connection they are given."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- sources and documents ----------------------------------------------------------
    def ensure_source(self, conn: Connection, kind: str, uri: str) -> int:
        found = conn.execute(select(sources.c.id).where(sources.c.uri == uri)).scalar()
        if found is not None:
            return int(found)
        return int(
            conn.execute(
                insert(sources).values(kind=kind, uri=uri, created_at=time.time())
            ).inserted_primary_key[0]
        )

    def upsert_document(self, conn: Connection, source_id: int, path: str, **fields: Any) -> int:
        """Insert or update a document row by (source, path); returns its id."""
        found = self.document_id(conn, source_id, path)
        fields.setdefault("status", "pending")
        if found is not None:
            conn.execute(update(documents).where(documents.c.id == found).values(**fields))
            return int(found)
        return int(
            conn.execute(
                insert(documents).values(source_id=source_id, path=path, **fields)
            ).inserted_primary_key[0]
        )

    def update_document(self, conn: Connection, document_id: int, **fields: Any) -> None:
        conn.execute(update(documents).where(documents.c.id == document_id).values(**fields))
        if "path" in fields:  # a renamed file is found by its new name, and no longer by its old one
            self.name_document(conn, document_id)

    def name_document(self, conn: Connection, document_id: int) -> None:
        """Put the document's path words and descriptive metadata on its lead (first) item's ``names``."""
        path = conn.execute(select(documents.c.path).where(documents.c.id == document_id)).scalar()
        lead = conn.execute(select(func.min(items.c.id)).where(items.c.document_id == document_id)).scalar()
        if path is None or lead is None:
            return
        metadata = dict(
            conn.execute(
                select(item_metadata.c.key, item_metadata.c.value).where(
                    item_metadata.c.document_id == document_id
                )
            ).all()
        )
        conn.execute(update(items).where(items.c.id == lead).values(names=document_names(path, metadata)))

    def set_ocr(self, conn: Connection, texts: Mapping[int, str | None]) -> None:
        """The text read in each item's pixels (None: none found); BM25 follows through triggers."""
        if texts:
            conn.execute(
                text("UPDATE items SET ocr = :t WHERE id = :i"),
                [{"i": int(i), "t": t} for i, t in texts.items()],
            )

    def document_id(self, conn: Connection, source_id: int, path: str) -> int | None:
        return conn.execute(
            select(documents.c.id).where(documents.c.source_id == source_id, documents.c.path == path)
        ).scalar()

    def document_row(self, conn: Connection, document_id: int) -> dict | None:
        row = conn.execute(select(documents).where(documents.c.id == document_id)).mappings().first()
        return dict(row) if row else None

    def delete_document(self, conn: Connection, document_id: int) -> None:
        """Delete a document; items, metadata, tags and vectors go with it (cascades, logged for the index)."""
        conn.execute(delete(documents).where(documents.c.id == document_id))

    def document(self, document_id: int) -> dict | None:
        with self.engine.connect() as conn:
            return self.document_row(conn, document_id)

    # --- items, metadata, tags --------------------------------------------------------------
    def add_items(self, conn: Connection, document_id: int, rows: Sequence[Mapping[str, Any]]) -> list[int]:
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
                    conn.execute(
                        insert(items).values(document_id=document_id, **values)
                    ).inserted_primary_key[0]
                )
            )
        return ids

    def clear_document(self, conn: Connection, document_id: int) -> None:
        """Remove a document's items (and so their vectors), extracted metadata and automatic tags;
        a person's tags stay."""
        conn.execute(delete(items).where(items.c.document_id == document_id))
        conn.execute(delete(item_metadata).where(item_metadata.c.document_id == document_id))
        conn.execute(delete(tags).where(tags.c.document_id == document_id, tags.c.origin != PERSON))

    def copy_items(self, conn: Connection, from_document: int, to_document: int) -> int:
        """Copy items, metadata and vectors of identical content to another document (no re-encoding)."""
        old = (
            conn.execute(select(items).where(items.c.document_id == from_document).order_by(items.c.id))
            .mappings()
            .all()
        )
        mapping: dict[int, int] = {}
        for row in old:
            values = {key: row[key] for key in ITEM_FIELDS}
            values["parent_id"] = mapping.get(row["parent_id"]) if row["parent_id"] is not None else None
            mapping[row["id"]] = int(
                conn.execute(insert(items).values(document_id=to_document, **values)).inserted_primary_key[0]
            )
        # Every space's vectors, and what later stages made of identical content, hold for the copy too.
        if mapping:
            pairs = [{"new": new_id, "old": old_id} for old_id, new_id in mapping.items()]
            conn.execute(
                text(
                    "INSERT INTO vectors (item_id, model_id, dtype, data) "
                    "SELECT :new, model_id, dtype, data FROM vectors WHERE item_id = :old"
                ),
                pairs,
            )
            conn.execute(
                text(
                    "INSERT OR REPLACE INTO stage_runs (item_id, stage, version, output, ran_at) "
                    "SELECT :new, stage, version, output, ran_at FROM stage_runs WHERE item_id = :old"
                ),
                pairs,
            )
        conn.execute(
            text(
                "INSERT OR REPLACE INTO metadata (document_id, key, value, number) "
                "SELECT :to, key, value, number FROM metadata WHERE document_id = :from"
            ),
            {"to": to_document, "from": from_document},
        )
        conn.execute(  # the labels its items earned, as their stage runs were copied
            text(
                "INSERT OR IGNORE INTO tags (document_id, tag, origin, probability) "
                "SELECT :to, tag, origin, probability FROM tags WHERE document_id = :from AND origin != :person"
            ),
            {"to": to_document, "from": from_document, "person": PERSON},
        )
        return len(mapping)

    def documents_of(self, conn: Connection, source_id: int) -> dict[str, dict]:
        """A source's documents keyed by path."""
        rows = conn.execute(select(documents).where(documents.c.source_id == source_id)).mappings()
        return {row["path"]: dict(row) for row in rows}

    def document_items(self, conn: Connection, document_id: int) -> list[dict]:
        columns = [c for c in items.c if c.name != "thumbnail"]
        rows = conn.execute(select(*columns).where(items.c.document_id == document_id).order_by(items.c.id))
        return [dict(row) for row in rows.mappings()]

    def documents_by_hash(self, conn: Connection, content_hash: str, status: str = "indexed") -> list[dict]:
        rows = conn.execute(
            select(documents).where(documents.c.content_hash == content_hash, documents.c.status == status)
        ).mappings()
        return [dict(row) for row in rows]

    def stale_documents(self, conn: Connection, model_id: str) -> set[int]:
        """Documents with items embedded by another model but not by ``model_id`` (need re-embedding)."""
        rows = conn.execute(
            text(
                "SELECT DISTINCT i.document_id FROM items i JOIN vectors v ON v.item_id = i.id "
                "WHERE v.model_id != :m AND v.model_id NOT LIKE :text_space AND NOT EXISTS (SELECT 1 FROM vectors w WHERE w.item_id = i.id AND w.model_id = :m)"
            ),
            {"m": model_id, "text_space": TEXT_SPACE_PREFIX + "%"},
        )
        return {int(r[0]) for r in rows}

    def delete_items(self, conn: Connection, item_ids: Iterable[int]) -> None:
        conn.execute(delete(items).where(items.c.id.in_(list(item_ids))))

    def set_metadata(self, conn: Connection, document_id: int, values: Mapping[str, Any]) -> None:
        """Store metadata; numbers (and dates as epoch seconds) also go to ``number`` for range filters."""
        for key, value in values.items():
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            conn.execute(
                text(
                    "INSERT INTO metadata (document_id, key, value, number) VALUES (:d, :k, :v, :n) "
                    "ON CONFLICT (document_id, key) DO UPDATE SET value = excluded.value, number = excluded.number"
                ),
                {"d": document_id, "k": key, "v": None if value is None else str(value), "n": number},
            )

    def documents_under(self, conn: Connection, path: str) -> list[int]:
        """Ids of documents at ``path`` or inside it (a folder), any source."""
        rows = conn.execute(select(documents.c.id).where(_at_or_inside(path)))
        return [int(r[0]) for r in rows]

    def add_tags(self, conn: Connection, document_id: int, names: Iterable[str]) -> None:
        """A person's tags; one a labeller had set becomes the person's (and is kept from then on)."""
        for name in names:
            conn.execute(
                text(
                    "INSERT INTO tags (document_id, tag, origin) VALUES (:d, :t, :person) "
                    "ON CONFLICT (document_id, tag) DO UPDATE SET origin = :person, probability = NULL"
                ),
                {"d": document_id, "t": name, "person": PERSON},
            )

    def set_labels(self, conn: Connection, origin: str, labels: Mapping[int, Mapping[str, float]]) -> None:
        """Automatic tags from the labeller ``origin`` for each document, with their probabilities.

        Tags of any other labeller on these documents go (the vocabulary or the model changed);
        this labeller's accumulate, keeping a label's highest probability over the document's items;
        a person's tag of the same name wins over a label.
        """
        for document_id, scores in labels.items():
            conn.execute(
                delete(tags).where(tags.c.document_id == document_id, tags.c.origin.not_in([PERSON, origin]))
            )
            if scores:
                conn.execute(
                    text(
                        "INSERT INTO tags (document_id, tag, origin, probability) VALUES (:d, :t, :o, :p) "
                        "ON CONFLICT (document_id, tag) DO UPDATE SET probability = max(probability, excluded.probability) "
                        "WHERE origin = excluded.origin"
                    ),
                    [{"d": document_id, "t": tag, "o": origin, "p": float(p)} for tag, p in scores.items()],
                )

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

    # --- vectors --------------------------------------------------------------------------
    def add_vectors(
        self,
        conn: Connection,
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
            conn.execute(
                delete(vectors).where(
                    vectors.c.model_id == model_id, vectors.c.item_id.in_([int(i) for i in item_ids])
                )
            )
        blobs = np.ascontiguousarray(matrix, dtype=VECTOR_DTYPES[dtype])
        conn.execute(
            insert(vectors),
            [
                {"item_id": int(i), "model_id": model_id, "dtype": dtype, "data": row.tobytes()}
                for i, row in zip(item_ids, blobs)
            ],
        )

    def vectors_for(
        self, conn: Connection, model_id: str, item_ids: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 matrix) for those of ``item_ids`` that have a vector of ``model_id``."""
        query = select(vectors.c.item_id, vectors.c.dtype, vectors.c.data).where(
            vectors.c.model_id == model_id,
            vectors.c.item_id.in_(
                select(text("value")).select_from(func.json_each(json.dumps(list(map(int, item_ids)))))
            ),
        )
        return _stack(conn.execute(query).all())

    def iter_vectors(
        self, conn: Connection, model_id: str, batch: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All vectors of ``model_id`` in id order, in batches, within the caller's transaction."""
        result = conn.execute(
            select(vectors.c.item_id, vectors.c.dtype, vectors.c.data)
            .where(vectors.c.model_id == model_id)
            .order_by(vectors.c.item_id)
        )
        while rows := result.fetchmany(batch):
            yield _stack(rows)

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

    # --- text search ------------------------------------------------------------------------
    def bm25(
        self,
        query: str,
        k: int = 10,
        *,
        kinds: Sequence[str] | None = None,
        allow: Sequence[int] | None = None,
    ) -> list[tuple[int, float]]:
        """Best ``k`` items for a full-text query as (item id, score), higher is better.

        Three tiers over an item's body text, names and OCR text, each filling only what
        the one before left, and each scored below every hit of the one before:

        1. whole words, stemmed, case- and accent-insensitive, quoted phrases in order (BM25);
        2. substrings of three or more characters (``RE16`` inside ``ARE160``; a trigram index);
        3. for a word found nowhere, near spellings of it (OCR reads ``Revenue`` as ``Revenne``).

        ``kinds`` and ``allow`` restrict the items.
        """
        words, phrases = query_terms(query)
        words = content_words(words)
        terms = [*words, *phrases]
        if not terms:
            return []
        where, params = _restriction(kinds, allow)
        with self.engine.connect() as conn:
            hits = _match(conn, "items_fts", terms, where, params, k)
            if len(hits) < k and (long := [t for t in terms if len(t) >= 3]):
                hits = _below(hits, _match(conn, "items_grams", long, where, params, k), k)
            if len(hits) < k:
                unknown = [
                    w
                    for w in words
                    if len(w) >= NEAR_MIN_LENGTH and not _match(conn, "items_grams", [w], "", {}, 1)
                ]
                if unknown:
                    hits = _below(hits, _near(conn, unknown, where, params, k), k)
        return hits

    # --- ingest stages ----------------------------------------------------------------------
    def stage_todo(
        self,
        conn: Connection,
        stage: str,
        version: int,
        kinds: Sequence[str],
        limit: int,
        under: str | None = None,
    ) -> list[dict]:
        """Items of ``kinds`` with no run of ``stage`` at ``version``, in id order, with their document
        path; ``under`` keeps those of documents at that path or inside it."""
        query = (
            select(
                *[c for c in items.c if c.name != "thumbnail"],
                documents.c.path,
                documents.c.raw_path,
                documents.c.mime,
            )
            .join(documents, documents.c.id == items.c.document_id)
            .where(_waiting_for(stage, version, kinds))
            .order_by(items.c.id)
            .limit(limit)
        )
        if under is not None:
            query = query.where(_at_or_inside(under))
        return [dict(row) for row in conn.execute(query).mappings()]

    def stage_pending(self, stage: str, version: int, kinds: Sequence[str]) -> int:
        """How many items of ``kinds`` still wait for ``stage`` at ``version``."""
        query = select(func.count()).select_from(items).where(_waiting_for(stage, version, kinds))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def rerun_stages(self, conn: Connection, item_ids: Sequence[int], keep: str) -> None:
        """Forget every stage run on these items but ``keep``'s: their input changed, those stages run again."""
        if item_ids:
            conn.execute(
                stage_runs.delete().where(
                    stage_runs.c.item_id.in_([int(i) for i in item_ids]), stage_runs.c.stage != keep
                )
            )

    def record_stage(self, conn: Connection, stage: str, version: int, results: Mapping[int, Any]) -> None:
        """Mark items as processed (items deleted meanwhile are skipped)."""
        if not results:
            return
        now = time.time()
        conn.execute(
            text(
                "INSERT OR REPLACE INTO stage_runs (item_id, stage, version, output, ran_at) "
                "SELECT :i, :s, :v, :o, :t WHERE EXISTS (SELECT 1 FROM items WHERE id = :i)"
            ),
            [
                {
                    "i": int(i),
                    "s": stage,
                    "v": version,
                    "o": None if out is None else json.dumps(out),
                    "t": now,
                }
                for i, out in results.items()
            ],
        )

    def text_chars(self, document_id: int, page: int | None) -> int:
        query = select(func.coalesce(func.sum(func.length(items.c.text)), 0)).where(
            items.c.document_id == document_id, items.c.page == page, items.c.kind == "chunk"
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def page_items(self, document_ids: Sequence[int]) -> dict[tuple[int, int], tuple[int, list[float]]]:
        """(document id, page) -> (item id, page box in points) of that page's render, for these documents."""
        query = select(items.c.document_id, items.c.page, items.c.id, items.c.bbox).where(
            items.c.document_id.in_([int(d) for d in document_ids]), items.c.kind == "page"
        )
        with self.engine.connect() as conn:
            return {(int(d), int(p)): (int(i), json.loads(box)) for d, p, i, box in conn.execute(query)}

    def stage_outputs(self, stage: str, item_ids: Sequence[int]) -> dict[int, Any]:
        """What ``stage`` produced for each of ``item_ids`` (its latest run), decoded."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(stage_runs.c.item_id, stage_runs.c.output).where(
                    stage_runs.c.stage == stage, stage_runs.c.item_id.in_([int(i) for i in item_ids])
                )
            )
            return {int(i): None if out is None else json.loads(out) for i, out in rows}

    # --- ingest jobs ----------------------------------------------------------------------
    def save_job(self, conn: Connection, job: Mapping[str, Any]) -> None:
        """Insert or replace a job; ``options`` and ``report`` are stored as JSON."""
        row = {**job, **{key: _json(job.get(key)) for key in ("options", "report")}}
        conn.execute(jobs.delete().where(jobs.c.id == row["id"]))
        conn.execute(jobs.insert().values(**{c.name: row.get(c.name) for c in jobs.columns}))

    def jobs(self, *, job_id: str | None = None, states: Sequence[str] = ()) -> list[dict]:
        """Jobs by id or by state, oldest first, with ``options`` and ``report`` decoded."""
        query = select(jobs).order_by(jobs.c.created)
        if job_id is not None:
            query = query.where(jobs.c.id == job_id)
        if states:
            query = query.where(jobs.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                **row,
                **{key: None if row[key] is None else json.loads(row[key]) for key in ("options", "report")},
            }
            for row in rows
        ]

    # --- bookkeeping ----------------------------------------------------------------------
    def store_id(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == "store_id")).scalar_one()

    def get_meta(self, conn: Connection, key: str) -> str | None:
        return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value})

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

    # --- model versions ---------------------------------------------------------------------
    def model_versions(self) -> dict[str, dict]:
        """The recorded ``active``, ``previous`` and ``switch`` (in progress) CLIP models, where set."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(meta.c.key, meta.c.value).where(meta.c.key.like("model:%"))).all()
        return {key.removeprefix("model:"): json.loads(value) for key, value in rows}

    def set_model_versions(self, conn: Connection, records: Mapping[str, Mapping | None]) -> None:
        """Set (or, with None, clear) version records by role: ``active``, ``previous``, ``switch``."""
        for role, record in records.items():
            if record is None:
                conn.execute(delete(meta).where(meta.c.key == f"model:{role}"))
            else:
                self.set_meta(conn, f"model:{role}", json.dumps(dict(record)))

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

    def delete_vectors(self, conn: Connection, model_id: str) -> int:
        """Forget one model: its vectors, its log and its index's saved position; returns how many vectors."""
        count = conn.execute(delete(vectors).where(vectors.c.model_id == model_id)).rowcount
        conn.execute(delete(vector_log).where(vector_log.c.model_id == model_id))
        conn.execute(delete(meta).where(meta.c.key == f"index_seq:{model_id}"))
        return count

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


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _at_or_inside(path: str):
    """Documents at ``path`` (a file) or inside it (a folder)."""
    prefix = path.rstrip("/")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (documents.c.path == prefix) | documents.c.path.like(f"{escaped}/%", escape="\\")


def _waiting_for(stage: str, version: int, kinds: Sequence[str]):
    """Items of ``kinds`` that ``stage`` has not processed at ``version``."""
    done = select(stage_runs.c.item_id).where(
        stage_runs.c.stage == stage, stage_runs.c.version == version, stage_runs.c.item_id == items.c.id
    )
    return items.c.kind.in_(list(kinds)) & ~done.exists()


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


def _restriction(kinds: Sequence[str] | None, allow: Sequence[int] | None) -> tuple[str, dict[str, Any]]:
    where, params = "", {}
    if kinds is not None:
        where += " AND i.kind IN (SELECT value FROM json_each(:kinds))"
        params["kinds"] = json.dumps([str(kind) for kind in kinds])
    if allow is not None:
        where += " AND i.id IN (SELECT value FROM json_each(:allow))"
        params["allow"] = json.dumps([int(i) for i in allow])
    return where, params


def _match(
    conn: Connection, table: str, terms: Sequence[str], where: str, params: dict[str, Any], k: int
) -> list[tuple[int, float]]:
    """(item id, BM25 score) for any of ``terms`` (each quoted: a word or an ordered phrase)."""
    sql = (
        f"SELECT i.id, -bm25({table}) AS score FROM {table} f JOIN items i ON i.id = f.rowid "
        f"WHERE {table} MATCH :q{where} ORDER BY score DESC LIMIT :k"
    )
    match = " OR ".join(f'"{term}"' for term in terms)
    return [(int(r[0]), float(r[1])) for r in conn.execute(text(sql), {**params, "q": match, "k": k})]


def _near(
    conn: Connection, words: Sequence[str], where: str, params: dict[str, Any], k: int
) -> list[tuple[int, float]]:
    """Items holding a near spelling of any of ``words``: candidates share trigrams, difflib decides."""
    grams = {word.lower()[i : i + 3] for word in words for i in range(len(word) - 2)}
    sql = (
        "SELECT i.id, coalesce(i.text, '') || ' ' || coalesce(i.names, '') || ' ' || coalesce(i.ocr, '') "
        f"FROM items_grams f JOIN items i ON i.id = f.rowid WHERE items_grams MATCH :q{where} "
        "ORDER BY bm25(items_grams) LIMIT :k"
    )
    match = " OR ".join(f'"{gram}"' for gram in sorted(grams))
    wanted = [fold(word) for word in words]
    scored = []
    for item_id, body in conn.execute(text(sql), {**params, "q": match, "k": NEAR_CANDIDATES}):
        found = set(query_terms(fold(body))[0])
        close = sum(near_any(word, found) for word in wanted)
        if close:
            scored.append((int(item_id), float(close)))
    return sorted(scored, key=lambda hit: -hit[1])[:k]


def _below(
    better: list[tuple[int, float]], worse: list[tuple[int, float]], k: int
) -> list[tuple[int, float]]:
    """``better`` then ``worse``'s new items, rescaled to score under the lowest of ``better``."""
    seen = {item for item, _ in better}
    extra = [(item, score) for item, score in worse if item not in seen]
    if better and extra:
        floor, top = min(s for _, s in better), max(s for _, s in extra)
        extra = [(item, 0.9 * floor * score / top) for item, score in extra] if top > 0 else extra
    return (better + extra)[:k]
