"""Ingest stages that run on stored items after the primary path has made them searchable.

Ingest is sniff -> load -> embed -> write (``indexer.py`` and ``pipeline.py``): at its
end an item is stored with its first embedding and can be found. Everything slower
or optional — reading text in images, a second embedding space, labels — is an
``ItemStage``: a small class with a ``name`` and a ``version`` that processes stored
items in batches. The catalog records, per item, which version of each stage ran
(and what it produced), so:

- a new stage, or a new version of one, catches up on items indexed before it existed,
  and nothing else is redone (no re-embedding);
- each batch commits on its own, so a killed run resumes where it stopped;
- ``spyglass status`` shows how much each stage has left (``Store.stage_backlog``).

Stages register by name (``register_stage``); the settings choose which ones run.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from spyglass.errors import WeightsUnavailableError
from spyglass.kinds import ItemKind
from spyglass.store import Store

log = logging.getLogger(__name__)


class ItemStage(ABC):
    """One versioned step over stored items; bump ``version`` when its output would change."""

    name: str  # a class attribute, unless an instance names itself (e.g. after its model)
    version: ClassVar[int] = 1
    kinds: ClassVar[tuple[ItemKind, ...]]  # the item kinds it processes
    batch_size: ClassVar[int] = 32  # items per call and per commit

    @abstractmethod
    def run(self, items: list[dict]) -> dict[int, Any]:
        """Process catalog item rows (with ``path`` and ``mime``); returns item id -> JSON-able output.

        Items missing from the result are recorded with no output; raise only for a
        failure of the stage itself: each item is then recorded with the error, so one
        bad item cannot block the backlog (a new ``version`` retries everything). Raise
        :class:`WeightsUnavailableError` when the stage cannot run on this machine at all:
        nothing is recorded and the backlog waits for a run that can.
        """

    def split(self, items: list[dict]) -> tuple[dict[int, Any], list[dict]]:
        """(outputs decided here from the catalog alone, the rows ``run`` must really process).

        A stage whose work can run elsewhere (``worker``) decides its skips here, where the store is.
        """
        return {}, items

    def worker(self) -> tuple[type, dict] | None:
        """A picklable ``(class, kwargs)`` whose instance, called with rows from ``split``, returns
        their outputs as ``run`` would, built where the stage's model is loaded once: an actor of a
        Ray pool (``ray_executor``). None: the stage runs in this process only."""
        return None

    def record(self, store: Store, batch: list[dict], outputs: dict[int, Any]) -> None:
        """Commit one batch's outputs in one transaction; a stage that writes more (vectors) extends it."""
        with store.write() as tx:
            tx.record_stage(self.name, self.version, {row["id"]: outputs.get(row["id"]) for row in batch})


_STAGES: dict[str, type[ItemStage]] = {}


def register_stage(stage: type[ItemStage]) -> type[ItemStage]:
    """Make a stage selectable by name; usable as a class decorator."""
    _STAGES[stage.name] = stage
    return stage


def stage_class(name: str) -> type[ItemStage]:
    try:
        return _STAGES[name]
    except KeyError:
        known = ", ".join(sorted(_STAGES)) or "none registered"
        raise ValueError(f"unknown ingest stage {name!r}; known stages: {known}") from None


@dataclass
class StageReport:
    name: str
    version: int
    processed: int = 0
    skipped: str | None = None  # why the stage could not run here; its backlog waits


class StageRunner(Protocol):
    """Runs a stage's ``worker`` elsewhere (see ``ray_executor``); batches still commit here."""

    def run_stage(self, store: Store, stage: ItemStage, report: StageReport) -> None: ...


def run_stages(
    store: Store, stages: Sequence[ItemStage], under: str | None = None, runner: StageRunner | None = None
) -> list[StageReport]:
    """Bring every stage up to date on every item (of the documents at or inside the path ``under``,
    when given); each batch commits on its own. With a ``runner``, stages that offer a ``worker``
    run their work through it (on a cluster) on the whole collection."""
    reports = []
    for stage in stages:
        report = StageReport(stage.name, stage.version)
        if runner is not None and under is None and stage.worker() is not None:
            runner.run_stage(store, stage, report)
            reports.append(report)
            continue
        while True:
            with store.snapshot() as snapshot:
                batch = snapshot.stage_todo(stage.name, stage.version, stage.kinds, stage.batch_size, under)
            if not batch:
                break
            try:
                outputs = _run_batch(stage, batch)
            except WeightsUnavailableError as exc:
                log.warning("stage %s skipped: %s", stage.name, exc)
                report.skipped = str(exc)
                break
            stage.record(store, batch, outputs)
            report.processed += len(batch)
        reports.append(report)
    return reports


def _run_batch(stage: ItemStage, batch: list[dict]) -> dict[int, Any]:
    try:
        return stage.run(batch)
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing stage is recorded per item, ingest goes on
        log.warning("stage %s failed on %d items: %s", stage.name, len(batch), exc)
        return {row["id"]: {"error": f"{type(exc).__name__}: {exc}"} for row in batch}
