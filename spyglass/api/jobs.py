"""Background jobs (ingest, model switches): one worker thread, so there is one writer; searches go on meanwhile.

A job is data (kind, target, options), not a closure, so it can outlive the process:
upload and folder jobs are recorded in the catalog when accepted and at every change of
state. At start-up ``resume`` runs again whatever was accepted but not finished when the
last process died (indexing is incremental, so a half-done job just completes), and a
finished job's status stays readable after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.errors import WritesRefused
from spyglass.indexer import IndexReport
from spyglass.store import STOP

if TYPE_CHECKING:
    from spyglass.engine import Engine
    from spyglass.indexer.reembed import ReembedReport

log = logging.getLogger(__name__)
INGEST_KINDS = ("upload", "source", "stages")  # jobs whose reports count in the ingest metrics


@dataclass
class Job:
    id: str
    # upload (a folder under uploads/), source (a server folder), stages (catch-up, not recorded),
    # model (a switch to the model spec ``target``), rollback (to the previous model)
    kind: str
    target: str
    options: dict = field(default_factory=dict)  # source: include / exclude patterns
    state: str = "queued"  # queued, running, cancelling (asked to stop), done, failed, cancelled
    created: float = field(default_factory=time.time)
    finished: float | None = None
    report: dict | None = None
    error: str | None = None

    def public(self) -> dict:
        return asdict(self)


class Jobs:
    def __init__(self, engine: Engine, on_report: Callable[[IndexReport], None] | None = None) -> None:
        self.engine = engine
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future] = {}
        self._stops: dict[str, threading.Event] = {}  # each job's stop signal (``store.STOP``)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spyglass-ingest")
        self._on_report = on_report

    def submit(self, kind: str, target: str, options: dict | None = None) -> Job:
        """Queue a job; an upload or source job is in the catalog before this returns."""
        job = Job(uuid.uuid4().hex[:12], kind, target, options or {})
        self._save(job)
        self._start(job)
        return job

    def resume(self) -> list[Job]:
        """Queue again the recorded jobs that a previous process accepted but did not finish."""
        resumed = [Job(**{**row, "state": "queued"}) for row in self.engine.store.unfinished_jobs()]
        for job in resumed:
            log.info("resuming %s job %s (%s)", job.kind, job.id, job.target)
            self._start(job)
        return resumed

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None and (row := self.engine.store.job(job_id)) is not None:
            job = Job(**row)  # finished (or accepted) by an earlier process
        return job

    def active(self) -> int:
        with self._lock:
            return sum(job.state in ("queued", "running", "cancelling") for job in self._jobs.values())

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def cancel(self, job: Job) -> bool:
        """Cancel a job: a queued one never starts; a running one stops at its next write, between
        two committed batches (``cancelling`` until then). False when it has ended."""
        with self._lock:
            future = self._futures.get(job.id)
        if future is None:
            return False
        if future.cancel():
            job.state, job.finished = "cancelled", time.time()
        elif job.state == "running":
            self._stops[job.id].set()
            job.state = "cancelling"
        else:
            return False
        self._save(job)
        return True

    def cancel_all(self, reason: str) -> None:
        """Cancel every queued job and stop the running one at its next write (the collection is
        going away): its catalog then refuses writes; returns once no write is in progress."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.state == "queued":
                self.cancel(job)
        for slot in (self.engine.state.store, self.engine.state.text_store):
            if (store := slot.peek()) is not None:
                store.refuse_writes(reason)

    def _start(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._stops[job.id] = threading.Event()
            self._futures[job.id] = self._pool.submit(self._run, job)

    def _run(self, job: Job) -> None:
        stopping = STOP.set(self._stops[job.id])
        try:
            job.state = "running"
            self._save(job)
            report = self._work(job)
            job.report = asdict(report)
            job.state = "done"
            if self._on_report and job.kind in INGEST_KINDS:
                self._on_report(report)
        except WritesRefused as exc:
            log.info("job %s stopped: %s", job.id, exc)
            job.error, job.state = str(exc), "cancelled"
        except Exception as exc:
            log.exception("job %s failed", job.id)
            job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            STOP.reset(stopping)
            job.finished = time.time()
            try:
                self._save(job)
            except WritesRefused:
                pass  # the collection is being deleted, and its record of this job with it
            except Exception:  # e.g. a read-only catalog: the outcome is still in memory and logged
                log.exception("could not record the outcome of job %s", job.id)

    def _work(self, job: Job) -> IndexReport | ReembedReport:
        """What each kind of job runs: the one place that turns a recorded job back into work.

        One worker runs them in order, so a model switch never races an ingest in this process.
        """
        engine = self.engine
        if job.kind == "stages":
            return engine.catch_up()
        if job.kind == "model":
            return engine.use_model(job.target)
        if job.kind == "rollback":
            return engine.rollback_model()
        if job.kind == "upload":
            return engine.index(Path(job.target), progress=False)
        if job.kind == "source":
            return engine.index(
                Path(job.target),
                include=job.options.get("include", ()),
                exclude=job.options.get("exclude", ()),
                progress=False,
                confine=engine.settings.api.allowed_roots,
            )
        raise ValueError(f"unknown job kind {job.kind!r}")

    def _save(self, job: Job) -> None:
        if job.kind != "stages":  # catching up is started at every start anyway
            self.engine.store.save_job(job.public())
