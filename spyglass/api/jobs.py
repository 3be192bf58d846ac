"""Background ingest jobs: one worker thread, so there is one writer; searches go on meanwhile."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from spyglass.indexer import IndexReport

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    kind: str
    target: str
    state: str = "queued"  # queued, running, done, failed
    created: float = field(default_factory=time.time)
    finished: float | None = None
    report: dict | None = None
    error: str | None = None

    def public(self) -> dict:
        return asdict(self)


class Jobs:
    def __init__(self, on_report: Callable[[IndexReport], None] | None = None) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spyglass-ingest")
        self._on_report = on_report

    def submit(self, kind: str, target: str, work: Callable[[], IndexReport]) -> Job:
        job = Job(uuid.uuid4().hex[:12], kind, target)
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def active(self) -> int:
        with self._lock:
            return sum(job.state in ("queued", "running") for job in self._jobs.values())

    def _run(self, job: Job, work: Callable[[], IndexReport]) -> None:
        job.state = "running"
        try:
            report = work()
            job.report = asdict(report)
            job.state = "done"
            if self._on_report:
                self._on_report(report)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job.finished = time.time()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
