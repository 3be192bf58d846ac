"""Ingest on a Ray cluster: loading on CPU tasks, embedding on actor pools, one writer.

Ray Data runs what ``pipeline.run_pipeline`` runs on threads, spread over a cluster:

- the driver (``spyglass index``) walks and plans exactly as locally (incremental: content
  hashes, renames, deletes), so only files that need loading are sent out;
- each file is loaded (decoded, PDF pages rendered, text chunked) by a CPU task on some node;
- actors, each holding the model once, run its preprocessing and embed a batch of documents,
  with the CPUs and GPUs per actor and the number of actors set in ``[ray]``;
- results stream back to the driver, which writes them to the catalog in transactions as a
  local ingest does: the catalog keeps one writer, so a killed driver loses nothing committed,
  and the next run plans what is left (nothing is written twice: documents are keyed by path);
- item stages that offer a ``worker`` (OCR) run it on an actor pool the same way: the driver
  picks their backlog and decides skips from the catalog, actors read, the driver records.

Workers read each file by its path: the folder must be visible at the same path on every node
(a shared filesystem); the model must load there by the same spec (a hub cache or a shared
folder), and each actor checks it loaded the driver's exact ``model_id``.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spyglass.errors import SpyglassError
from spyglass.indexer.loaders import LoadedDocument, LoadOptions, load
from spyglass.indexer.pipeline import Outcome, embed, failure, preprocess
from spyglass.indexer.stages import ItemStage, StageReport
from spyglass.settings import EncoderSettings, RaySettings, Settings
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder

log = logging.getLogger(__name__)
WRITE_GROUP = 16  # documents per catalog transaction on the driver
STAGE_ROWS = 2_000  # an item stage's items sent out per round (each batch of them still commits alone)


class RayExecutor:
    """Runs the load and embed steps of an ingest on Ray; see the module docstring."""

    def __init__(self, settings: RaySettings, spec: str, encoder_settings: EncoderSettings) -> None:
        self.settings, self.spec, self.encoder_settings = settings, spec, encoder_settings

    def run(
        self,
        jobs: Sequence[Any],
        options: LoadOptions,
        kinds: frozenset | None,
        encoder: Encoder,
        write: Callable[[list[Outcome]], None],
    ) -> None:
        """Load and embed ``jobs`` (``(FileEntry, digest)``) on the cluster; ``write`` groups on the driver."""
        if not jobs:
            return
        ray = self._connect()
        settings = self.settings
        rows = [{"job": n, "path": str(job[0].path)} for n, job in enumerate(jobs)]
        loaded = ray.data.from_items(rows, override_num_blocks=max(1, len(rows))).map_batches(
            _load_batch,
            fn_kwargs={"options": replace(options, digest=None), "kinds": kinds},
            batch_size=1,
            num_cpus=settings.cpus_per_load,
        )
        embedded = loaded.map_batches(
            _Embedder,
            fn_constructor_kwargs={
                "spec": self.spec,
                "settings": self.encoder_settings.model_dump(mode="json"),
                "model_id": encoder.model_id,
            },
            batch_size=settings.batch_size,
            compute=ray.data.ActorPoolStrategy(size=settings.actors),
            num_cpus=settings.cpus_per_actor,
            num_gpus=settings.gpus_per_actor,
        )
        group: list[Outcome] = []
        for row in embedded.iter_rows():
            group.append(_outcome(jobs[int(row["job"])], row))
            if len(group) >= WRITE_GROUP:
                write(group)
                group = []
        if group:
            write(group)

    def run_stage(self, store: Store, stage: ItemStage, report: StageReport) -> None:
        """An item stage's work on an actor pool (each actor builds the stage's ``worker`` once);
        its skips are decided here, and outputs are recorded here as they stream back, a batch per
        transaction (a killed driver loses at most the batches in flight)."""
        ray = self._connect()
        worker, kwargs = stage.worker()
        while True:
            with store.snapshot() as snapshot:
                pending = snapshot.stage_todo(stage.name, stage.version, stage.kinds, STAGE_ROWS)
            if not pending:
                return
            decided, todo = stage.split(pending)
            sent = {row["id"] for row in todo}
            _record(store, stage, [row for row in pending if row["id"] not in sent], decided, report)
            if todo:
                rows = ray.data.from_items([{"row": pickle.dumps(row)} for row in todo])
                done = rows.map_batches(
                    _StageActor,
                    fn_constructor_kwargs={"worker": worker, "kwargs": kwargs},
                    batch_size=stage.batch_size,
                    compute=ray.data.ActorPoolStrategy(size=self.settings.actors),
                    num_cpus=self.settings.cpus_per_actor,
                    num_gpus=self.settings.gpus_per_actor,
                )
                by_id = {row["id"]: row for row in todo}
                try:
                    for row in done.iter_rows():
                        outputs = pickle.loads(row["outputs"])
                        _record(store, stage, [by_id[i] for i in outputs], outputs, report)
                except Exception as exc:  # noqa: BLE001 - e.g. the model is not on the workers: the backlog waits
                    report.skipped = f"its workers failed: {str(exc).strip().splitlines()[-1][:300]}"
                    log.warning("stage %s skipped: %s", stage.name, report.skipped)
                    return

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False, include_dashboard=False)
        return ray

    @property
    def address(self) -> str:
        """The cluster asked for, else a local Ray of our own.

        Ray's own default (``None``) would attach to whatever its temp directory last recorded,
        a cluster that may have died long ago, and wait minutes for it; ``"local"`` never does.
        """
        return self.settings.address or os.environ.get("RAY_ADDRESS") or "local"


def executor_for(choice: str, settings: Settings, spec: str) -> RayExecutor | None:
    """The executor an ingest asked for: None for ``local``, Ray for ``ray`` or ``ray=ADDRESS``."""
    kind, _, address = choice.partition("=")
    if kind == "local":
        return None
    if kind != "ray":
        raise SpyglassError(f"unknown executor {choice!r}: local, ray or ray=ADDRESS")
    ray = settings.ray.model_copy(update={"address": address}) if address else settings.ray
    return RayExecutor(ray, spec, settings.encoder)


def _record(store: Store, stage: ItemStage, rows: list[dict], outputs: dict, report: StageReport) -> None:
    """Record rows with their outputs (None where a row has none), ``stage.batch_size`` per transaction."""
    for start in range(0, len(rows), stage.batch_size):
        batch = rows[start : start + stage.batch_size]
        stage.record(store, batch, {row["id"]: outputs.get(row["id"]) for row in batch})
        report.processed += len(batch)


class _StageActor:
    """Actor: one stage worker (e.g. the OCR models), called with batches of item rows."""

    def __init__(self, worker: type, kwargs: dict) -> None:
        self.worker = worker(**kwargs)

    def __call__(self, batch: dict) -> dict:
        rows = [pickle.loads(row) for row in batch["row"]]
        try:
            outputs = self.worker(rows)
        except Exception as exc:  # noqa: BLE001 - recorded per item, as a local stage failure is
            outputs = {row["id"]: {"error": f"{type(exc).__name__}: {exc}"} for row in rows}
        return {"outputs": [pickle.dumps(outputs)]}


def _load_batch(batch: dict, options: LoadOptions, kinds: frozenset | None) -> dict:
    """CPU task: load each file of the batch (a pickled document, or why it failed)."""
    documents, errors = [], []
    for path in batch["path"]:
        try:
            documents.append(pickle.dumps(load(Path(path), options, kinds=kinds)))
            errors.append(None)
        except Exception as exc:  # noqa: BLE001 - one bad file is reported, never fails the batch
            documents.append(None)
            errors.append(failure(exc, path))
    return {"job": list(batch["job"]), "document": documents, "error": errors}


class _Embedder:
    """Actor: the model, loaded once, preprocesses and embeds batches of loaded documents."""

    def __init__(self, spec: str, settings: dict, model_id: str) -> None:
        from spyglass.encoders import load_encoder
        from spyglass.kinds import precision_of

        keep = precision_of(model_id)  # the driver's space: its precision too
        self.encoder = load_encoder(spec, settings=EncoderSettings(**settings), frozen=True, keep=keep)
        if self.encoder.model_id != model_id:
            raise SpyglassError(
                f"a Ray worker loaded {spec} as {self.encoder.model_id}, not the driver's {model_id}: "
                "the workers need the same weights (a shared model folder or hub cache)"
            )

    def __call__(self, batch: dict) -> dict:
        outcomes = []
        for job, document, error in zip(batch["job"], batch["document"], batch["error"]):
            loaded: LoadedDocument | None = pickle.loads(document) if document is not None else None
            if loaded is not None:
                preprocess(loaded.items, self.encoder)
            outcomes.append(Outcome(int(job), loaded, error=error))
        embed(outcomes, self.encoder)
        return {
            "job": [o.job for o in outcomes],
            "document": [pickle.dumps(o.document) if o.document else None for o in outcomes],
            "vectors": [pickle.dumps(o.vectors) if o.document else None for o in outcomes],
            "embedded": [pickle.dumps(o.embedded) if o.document else None for o in outcomes],
            "error": [o.error for o in outcomes],
        }


def _outcome(job: Any, row: dict) -> Outcome:
    if row["document"] is None:
        return Outcome(job, error=row["error"] or "could not be loaded")
    vectors: np.ndarray = pickle.loads(row["vectors"])
    return Outcome(job, pickle.loads(row["document"]), vectors, pickle.loads(row["embedded"]))


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise SpyglassError("the ray executor needs Ray Data: pip install 'spyglass[scale]'") from None
    return ray
