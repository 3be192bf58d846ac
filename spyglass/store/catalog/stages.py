"""Item stages (what each has processed, at which version, with what output) and ingest jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, text

from spyglass.store.catalog.base import CatalogBase, Records
from spyglass.store.catalog.documents import at_or_inside
from spyglass.store.schema import (
    documents,
    items,
    jobs,
    stage_runs,
)


class StageReads(Records):
    """What item stages have left to do, inside one snapshot."""

    def stage_todo(
        self,
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
            query = query.where(at_or_inside(under))
        return [dict(row) for row in self._conn.execute(query).mappings()]


class StageWrites(StageReads):
    """Stage runs and jobs written inside one transaction."""

    def rerun_stages(self, item_ids: Sequence[int], keep: str) -> None:
        """Forget every stage run on these items but ``keep``'s: their input changed, those stages run again."""
        if item_ids:
            self._conn.execute(
                stage_runs.delete().where(
                    stage_runs.c.item_id.in_([int(i) for i in item_ids]), stage_runs.c.stage != keep
                )
            )

    def record_stage(self, stage: str, version: int, results: Mapping[int, Any]) -> None:
        """Mark items as processed (items deleted meanwhile are skipped)."""
        if not results:
            return
        now = time.time()
        self._conn.execute(
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

    def save_job(self, job: Mapping[str, Any]) -> None:
        """Insert or replace a job; ``options`` and ``report`` are stored as JSON."""
        row = {**job, **{key: _json(job.get(key)) for key in ("options", "report")}}
        self._conn.execute(jobs.delete().where(jobs.c.id == row["id"]))
        self._conn.execute(jobs.insert().values(**{c.name: row.get(c.name) for c in jobs.columns}))


class Stages(CatalogBase):
    """Stage progress, outputs and jobs, each read on its own connection."""

    def stage_pending(self, stage: str, version: int, kinds: Sequence[str]) -> int:
        """How many items of ``kinds`` still wait for ``stage`` at ``version``."""
        query = select(func.count()).select_from(items).where(_waiting_for(stage, version, kinds))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

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


def _waiting_for(stage: str, version: int, kinds: Sequence[str]):
    """Items of ``kinds`` that ``stage`` has not processed at ``version``."""
    done = select(stage_runs.c.item_id).where(
        stage_runs.c.stage == stage, stage_runs.c.version == version, stage_runs.c.item_id == items.c.id
    )
    return items.c.kind.in_(list(kinds)) & ~done.exists()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
