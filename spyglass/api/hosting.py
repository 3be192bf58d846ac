"""The collections a server holds, and the dependencies that hand a route its collection.

Every collection route exists twice: under ``/v1/…`` for the default collection and under
``/v1/collections/{collection}/…``. A route asks for ``readable`` or ``writable`` and gets the
collection's ``Served`` (its engine and its job queue); a collection the key may not read is
answered exactly like one that does not exist (404), so a key learns nothing about the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request

from spyglass.api.auth import Grant, grant
from spyglass.api.jobs import Jobs
from spyglass.engine import Engine
from spyglass.errors import SpyglassError
from spyglass.indexer import IndexReport
from spyglass.runtime.collections import DEFAULT, NAME, CollectionNotFound, Collections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One collection as routes see it."""

    name: str
    engine: Engine
    jobs: Jobs

    @property
    def prefix(self) -> str:
        """Where this collection's routes are, for the links responses carry."""
        return "/v1" if self.name == DEFAULT else f"/v1/collections/{self.name}"

    def relink(self, body: Any) -> Any:
        """``body`` with its item links (``…_url``: ``/v1/items/…``, as results and citations write
        them) pointing into this collection's routes."""
        if self.name == DEFAULT:
            return body
        if isinstance(body, list):
            return [self.relink(value) for value in body]
        if not isinstance(body, dict):
            return body
        return {
            key: self.prefix + value[3:]
            if key.endswith("_url") and isinstance(value, str) and value.startswith("/v1/items/")
            else self.relink(value)
            for key, value in body.items()
        }


class Hosted:
    """Each collection's engine and job queue (one writer per collection), opened when first asked for."""

    def __init__(self, collections: Collections, on_report: Callable[[IndexReport], None]) -> None:
        self.collections, self.settings = collections, collections.settings
        self._on_report = on_report
        self._jobs: dict[str, Jobs] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Served:
        """CollectionNotFound when there is no such collection."""
        with self._lock:
            engine = self.collections.engine(name)
            jobs = self._jobs.get(name)
            if jobs is None or jobs.engine is not engine:
                jobs = self._jobs[name] = Jobs(engine, on_report=self._on_report)
                try:
                    self._start(jobs)
                except SpyglassError as exc:  # its model is missing, say: its routes will say so
                    log.warning("collection %s: its jobs wait until it can open: %s", name, exc)
            return Served(name, engine, jobs)

    def served(self) -> list[Served]:
        """The collections opened so far."""
        return [self.get(name) for name in self.collections.opened()]

    def open_all(self) -> None:
        """Open every collection: their accepted jobs resume and their stages catch up."""
        for name in self.collections.names():
            self.get(name)

    def index_size(self) -> int:
        """Vectors in the indexes opened so far (what ``/metrics`` reports; nothing is opened for it)."""
        stores = (served.engine.state.store.peek() for served in self.served())
        return sum(store.index.ntotal for store in stores if store is not None)

    @staticmethod
    def _start(jobs: Jobs) -> None:
        jobs.resume()  # uploads and folders accepted before a crash or restart
        if jobs.engine.stages:  # item stages catch up in the background while search serves
            jobs.submit("stages", "catalog")

    def delete(self, name: str, *, force: bool) -> None:
        """Delete a named collection; refused (RuntimeError) while a job of it is queued or running,
        unless ``force``, which cancels them first."""

        def stop(engine: Engine) -> None:
            jobs = self._jobs.pop(name, None)
            if jobs is None:
                return
            if jobs.active() and not force:
                self._jobs[name] = jobs
                raise RuntimeError(
                    f"collection {name!r} has a job queued or running; delete with force to cancel it"
                )
            jobs.cancel_all(f"collection {name!r} is being deleted")
            jobs.shutdown()

        with self._lock:
            self.collections.delete(name, before=stop)

    def close(self) -> None:
        with self._lock:
            for jobs in self._jobs.values():
                jobs.shutdown()
            self.collections.close()


def collection_path(
    collection: Annotated[
        str, Path(pattern=f"^{NAME.pattern}$", max_length=63, description="A collection the key may read.")
    ],
) -> str:
    """Declares the ``{collection}`` of the prefixed routes (in the OpenAPI document too)."""
    return collection


def open_readable(request: Request, who: Grant, name: str) -> Served:
    """Collection ``name``, when the key may read it; else 404, as for one that does not exist."""
    missing = HTTPException(404, f"there is no collection named {name!r}")
    if not NAME.fullmatch(name) or not who.reads(name):
        raise missing
    try:
        return request.app.state.hosted.get(name)
    except CollectionNotFound:
        raise missing from None


def open_many(request: Request, who: Grant, names: list[str]) -> list[Served]:
    """The collections a request names (``*``: every one the key reads), each once; 404 as above."""
    if "*" in names:
        names = [name for name in request.app.state.hosted.collections.names() if who.reads(name)]
    return [open_readable(request, who, name) for name in dict.fromkeys(names)]


def named_readable(request: Request, who: Grant = Depends(grant)) -> None:
    """404 before the body is read, for a route under a collection the key may not read; the
    unprefixed search and ask check theirs themselves (``collections`` may name others)."""
    if (name := request.path_params.get("collection")) is not None:
        open_readable(request, who, name)


def readable(request: Request, who: Grant = Depends(grant)) -> Served:
    """The route's collection, when the key may read it (``open_readable``)."""
    return open_readable(request, who, request.path_params.get("collection", DEFAULT))


def writable(served: Served = Depends(readable), who: Grant = Depends(grant)) -> Served:
    """The route's collection, when the key may also write to it (else 403: it may read it)."""
    if not who.writes(served.name):
        raise HTTPException(403, "this API key may only read")
    return served


def administered(served: Served = Depends(readable), who: Grant = Depends(grant)) -> Served:
    """The route's collection, for admin keys only (what writes onto the server's own disk)."""
    if not who.admin:
        raise HTTPException(403, "this needs an admin API key")
    return served
