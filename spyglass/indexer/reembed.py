"""Re-embed a collection with another model, beside the vectors searches use now.

Switching models must not blank the collection while it happens (Immich and rclip make
users wait through exactly that), so nothing here touches an item: each document is loaded
again from its file — photos, page renders and figure crops at full quality, not the stored
thumbnails — through the same loaders and pipeline as ingest, and its items get a second
vector under the new model's id. Searches keep using the old vectors until the switch is
recorded (``spyglass.versions``). Each pipeline group commits on its own, so an interrupted
re-embedding resumes with the documents still missing the new model's vectors.

A file that changed since it was indexed no longer matches its items; it is left for
``spyglass index`` (which re-reads it with the active model) and reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from spyglass.indexer.loaders import LoadedDocument, LoadOptions, load
from spyglass.indexer.pipeline import Digest, Outcome, run_pipeline
from spyglass.indexer.progress import IndexProgress
from spyglass.paths import real_path
from spyglass.store import Store, Transaction

if TYPE_CHECKING:
    from spyglass.encoders import Encoder

BATCH_DOCUMENTS = 256  # documents planned per round: a round's list is small, and rounds resume


@dataclass
class ReembedReport:
    documents: int = 0
    items: int = 0
    failed: dict[int, dict] = field(default_factory=dict)  # document id -> {"path", "reason"} it was not
    seconds: float = 0.0

    def add(self, other: ReembedReport) -> None:
        """Count another round of the same re-embedding in."""
        self.documents += other.documents
        self.items += other.items
        self.failed.update(other.failed)
        self.seconds += other.seconds


def reembed(
    store: Store,
    encoder: Encoder,
    options: LoadOptions,
    *,
    progress: bool = False,
    on_group: Callable[[], None] | None = None,
) -> ReembedReport:
    """Give every embedded item a vector of ``encoder`` (whose model ``store`` is open for).

    ``on_group`` is called after each committed group (the API uses it to report progress).
    """
    started = time.monotonic()
    report = ReembedReport()
    options = replace(options, min_side=encoder.image_size)
    workers = max(2, min(8, os.cpu_count() or 2))
    with store.snapshot() as snapshot:
        total = len(snapshot.stale_documents())
    meter = IndexProgress(total, enabled=progress)

    def load_job(document: dict, digest: Digest) -> LoadedDocument:
        return load(real_path(document["path"], document["raw_path"]), replace(options, digest=digest))

    def write(group: list[Outcome[dict]]) -> None:
        with store.write() as tx:
            for outcome in group:
                _write(tx, encoder, outcome, report)
        meter.advance(len(group), sum(len(o.document.items) for o in group if o.document))
        if on_group is not None:
            on_group()

    try:
        while True:
            with store.snapshot() as snapshot:
                stale = sorted(snapshot.stale_documents() - report.failed.keys())[:BATCH_DOCUMENTS]
                todo = [row for i in stale if (row := snapshot.document(i)) is not None]
            if not todo:
                break
            run_pipeline(todo, load_job, encoder, write, workers=workers)
    finally:
        meter.close()
    report.seconds = time.monotonic() - started
    return report


def _write(tx: Transaction, encoder: Encoder, outcome: Outcome[dict], report: ReembedReport) -> None:
    """The new vectors of one document, matched to its stored items by position and kind."""
    document_id = outcome.job["id"]
    if outcome.document is None:
        report.failed[document_id] = {"path": outcome.job["path"], "reason": outcome.error}
        return
    stored = tx.document_items(document_id)
    drafts = outcome.document.items
    if [_key(row) for row in stored] != [_key(draft.row()) for draft in drafts]:
        reason = "changed since it was indexed; `spyglass index` re-reads it"
        report.failed[document_id] = {"path": outcome.job["path"], "reason": reason}
        return
    ids = [stored[i]["id"] for i in outcome.embedded]
    tx.add_vectors(ids, outcome.vectors, encoder.model_id, replace=True)
    report.documents += 1
    report.items += len(ids)


def _key(row: dict) -> tuple:
    """What must agree between a stored item and the draft made again from the same file."""
    return (str(row["kind"]), row["page"], row["char_start"], row["char_end"], row["timestamp"])
