"""Health, readiness and Prometheus metrics (the process); stats and backups (a collection)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spyglass import __version__
from spyglass.api.auth import grant
from spyglass.api.errors import documented
from spyglass.api.hosting import Served, administered, readable
from spyglass.api.schemas import BackupBody

router = APIRouter(tags=["system"])  # the process: once, unprefixed
collection = APIRouter(tags=["system"])  # per collection


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The model is loaded and the default collection's index is open")
async def readyz(request: Request, response: Response) -> dict:
    ready = request.app.state.hosted.get("default").engine.ready
    response.status_code = 200 if ready else 503
    return {"ready": ready}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Behind any valid key when API keys are configured, unless `api.public_metrics` is set. "
    "Totals over every collection: nothing is labelled by collection.",
    response_class=Response,
    responses=documented(401),
)
async def metrics(request: Request) -> Response:
    hosted = request.app.state.hosted
    if not hosted.settings.api.public_metrics:
        grant(request)  # route and request counts reveal what a collection is used for
    app_metrics = request.app.state.metrics
    app_metrics.index_size.set(await run_in_threadpool(hosted.index_size))
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)


@collection.get("/stats", summary="Counts, model, index", responses=documented(401, 404))
async def stats(served: Served = Depends(readable)) -> dict:
    status = await run_in_threadpool(served.engine.status)
    status.pop("errors_list", None)
    return {**status, "collection": served.name, "jobs_active": served.jobs.active()}


@collection.post(
    "/backup",
    summary="Back the collection up into the configured backup root",
    description="A consistent copy taken while the server keeps serving (`spyglass backup`): the catalog, "
    "uploads and tuned-model folders. Admin keys only; 403 when `api.backup_root` is not set, 409 when "
    "the named folder exists.",
    responses=documented(400, 401, 403, 404, 409, 422),
)
async def backup(body: BackupBody, served: Served = Depends(administered)) -> dict:
    from spyglass.runtime.backup import backup as copy

    settings = served.engine.settings
    if settings.api.backup_root is None:
        raise HTTPException(403, "backups over HTTP are off: set api.backup_root")
    target = Path(settings.api.backup_root) / body.name
    if target.exists():
        raise HTTPException(409, f"{body.name} already exists in the backup root")
    manifest = await run_in_threadpool(copy, settings.data_dir, target)
    return {"name": body.name, **manifest}
