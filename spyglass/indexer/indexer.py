"""Index a folder, a file or a list of files into the store, incrementally.

Flow: walk the source, plan against the catalog (``plan.py``), apply the cheap
decisions (touch, rename, copy, delete, record problems) in one transaction, then
run the pipeline for files that need loading. Each pipeline group commits on its
own, so an interrupted run keeps what it finished and the next run does the rest.
An edited file's old items are replaced in the same transaction as its new ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.indexer.loaders import LoadOptions, load
from spyglass.indexer.pipeline import Digest, Outcome, run_pipeline
from spyglass.indexer.plan import Plan, make_plan
from spyglass.indexer.progress import IndexProgress
from spyglass.indexer.stages import ItemStage, StageReport, run_stages
from spyglass.indexer.walk import FileEntry, walk
from spyglass.kinds import FileKind
from spyglass.paths import path_text
from spyglass.store import Store, Transaction

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.indexer.ray_executor import RayExecutor


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    touched: int = 0
    renamed: int = 0
    copied: int = 0
    deleted: int = 0
    items: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    partial: list[tuple[str, str]] = field(default_factory=list)  # files a limit cut short, and how
    stages: dict[str, int] = field(default_factory=dict)  # items each item stage processed in this run
    waiting: dict[str, str] = field(default_factory=dict)  # stages that could not run here, and why

    def add_stages(self, reports: Sequence[StageReport]) -> None:
        self.stages = {r.name: r.processed for r in reports}
        self.waiting = {r.name: r.skipped for r in reports if r.skipped}

    seconds: float = 0.0

    def summary(self) -> str:
        parts = [
            f"{self.added} added",
            f"{self.updated} updated",
            f"{self.unchanged + self.touched} unchanged",
            f"{self.renamed} renamed",
            f"{self.copied} copied",
            f"{self.deleted} removed",
            f"{len(self.errors)} errors",
            *([f"{len(self.partial)} partly indexed"] if self.partial else []),
            f"{self.items} items in {self.seconds:.1f} s",
        ]
        parts += [f"stage {name}: {count} items" for name, count in self.stages.items() if count]
        return ", ".join(parts)


class Indexer:
    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        *,
        options: LoadOptions | None = None,
        workers: int | None = None,
        stages: Sequence[ItemStage] = (),
        executor: RayExecutor | None = None,
    ) -> None:
        """``executor`` runs loading and embedding elsewhere (a Ray cluster); None: threads here."""
        if encoder.model_id != store.model_id:
            raise ValueError(f"encoder {encoder.model_id} does not match the store's model {store.model_id}")
        self.store, self.encoder = store, encoder
        self.options = replace(options or LoadOptions(), min_side=encoder.image_size)
        self.workers = workers or max(2, min(8, os.cpu_count() or 2))
        self.stages = list(stages)
        self.executor = executor

    def index(
        self,
        path: Path,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        kinds: Sequence[str] | None = None,
        progress: bool = True,
        confine: Sequence[Path] | None = None,
    ) -> IndexReport:
        """Bring the catalog in line with ``path`` (a folder or a single file).

        ``confine``: only files whose real path lies inside these folders are read (a server's
        allowed roots: a symlink inside them must not expose a file elsewhere).
        """
        started = time.monotonic()
        root = Path(path).expanduser().absolute()
        if not root.exists() and not root.is_symlink():
            raise FileNotFoundError(f"{root} does not exist")
        entries, problems = walk(root, include, exclude, confine=confine)
        allowed = frozenset(FileKind(kind) for kind in kinds) if kinds else None
        with self.store.write() as tx:
            source_id = tx.ensure_source("folder" if root.is_dir() else "file", path_text(root))
        # Planning hashes new files, which can take minutes: do it on a read snapshot, not holding the write lock.
        with self.store.snapshot() as snapshot:
            plan = make_plan(snapshot, source_id, entries, problems)
        with self.store.write() as tx:
            report = self._apply(tx, source_id, plan)
        meter = IndexProgress(len(plan.to_load), enabled=progress)

        def load_job(job: tuple[FileEntry, str | None], digest: Digest):
            return load(job[0].path, replace(self.options, digest=digest), kinds=allowed)

        def write(group: list[Outcome]) -> None:
            with self.store.write() as tx:
                for outcome in group:
                    self._write_outcome(tx, source_id, outcome, report)
            meter.advance(len(group), sum(len(o.document.items) for o in group if o.document))

        try:
            if self.executor is None:
                run_pipeline(plan.to_load, load_job, self.encoder, write, workers=self.workers)
            else:
                self.executor.run(plan.to_load, self.options, allowed, self.encoder, write)
        finally:
            meter.close()
        if plan.later_copies:
            with self.store.write() as tx:
                self._copy_twins(tx, source_id, plan.later_copies, report)
        # Everything above is searchable now; the slower item stages catch up on it (and on older items).
        report.add_stages(run_stages(self.store, self.stages, runner=self.executor))
        self.store.forget()  # files deleted or changed since the last run leave no words behind
        report.seconds = time.monotonic() - started
        return report

    def _apply(self, tx: Transaction, source_id: int, plan: Plan) -> IndexReport:
        report = IndexReport(
            unchanged=plan.unchanged,
            touched=len(plan.touched),
            renamed=len(plan.renamed),
            copied=len(plan.copies),
            deleted=len(plan.deleted),
        )
        for document_id in plan.deleted:
            tx.delete_document(document_id)
        for document_id, entry in plan.touched + plan.renamed:
            tx.update_document(
                document_id, path=entry.key, raw_path=entry.raw, size=entry.size, mtime=entry.mtime
            )
        for twin, entry, digest in plan.copies:
            self._copy(tx, source_id, twin, entry, digest, report)
        for problem in plan.problems:
            tx.upsert_document(source_id, problem.key, status="error", error=problem.reason)
            report.errors.append((problem.key, problem.reason))
        return report

    def _copy(
        self, tx: Transaction, source_id: int, twin: int, entry: FileEntry, digest: str, report: IndexReport
    ) -> None:
        """Record ``entry`` as identical content to the indexed document ``twin``: its items and vectors copied."""
        document_id = tx.upsert_document(
            source_id,
            entry.key,
            raw_path=entry.raw,
            content_hash=digest,
            size=entry.size,
            mtime=entry.mtime,
            mime=tx.document(twin)["mime"],
            status="indexed",
            error=None,
            indexed_at=time.time(),
        )
        tx.clear_document(document_id)
        report.items += tx.copy_items(twin, document_id)
        tx.name_document(document_id)  # a copy is found by its own name, not its twin's

    def _copy_twins(
        self, tx: Transaction, source_id: int, pending: list[tuple[FileEntry, str]], report: IndexReport
    ) -> None:
        """Copies of files loaded in this run; if the original failed, the copy fails the same way."""
        for entry, digest in pending:
            twin = next(iter(tx.documents_by_hash(digest)), None)
            if twin is not None:
                self._copy(tx, source_id, twin["id"], entry, digest, report)
                report.copied += 1
                continue
            failed = tx.documents_by_hash(digest, status="error")
            reason = failed[0]["error"] if failed else "its identical twin could not be indexed"
            tx.upsert_document(
                source_id,
                entry.key,
                content_hash=digest,
                size=entry.size,
                mtime=entry.mtime,
                status="error",
                error=reason,
            )
            report.errors.append((entry.key, reason))

    def _write_outcome(self, tx: Transaction, source_id: int, outcome: Outcome, report: IndexReport) -> None:
        entry, digest = outcome.job
        fields = {
            "content_hash": digest,
            "size": entry.size,
            "mtime": entry.mtime,
            "indexed_at": time.time(),
            "raw_path": entry.raw,
        }
        existed = tx.document_id(source_id, entry.key) is not None
        if outcome.document is None:
            document_id = tx.upsert_document(
                source_id, entry.key, status="error", error=outcome.error, **fields
            )
            tx.clear_document(document_id)  # a file that turned bad loses its stale items
            report.errors.append((entry.key, outcome.error))
            return
        document = outcome.document
        document_id = tx.upsert_document(
            source_id, entry.key, status="indexed", error=None, mime=document.mime, **fields
        )
        tx.clear_document(document_id)
        ids = tx.add_items(document_id, [item.row() for item in document.items])
        limits = {"limits": "; ".join(document.notes)} if document.notes else {}
        tx.set_metadata(document_id, {"kind": document.kind, **document.metadata, **limits})
        tx.name_document(document_id)
        report.partial += [(entry.key, note) for note in document.notes]
        tx.add_vectors([ids[i] for i in outcome.embedded], outcome.vectors, self.encoder.model_id)
        report.items += len(ids)
        if existed:
            report.updated += 1
        else:
            report.added += 1
