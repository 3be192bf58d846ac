"""Health, readiness, stats and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spyglass import __version__
from spyglass.api.auth import admin, reader, role
from spyglass.api.errors import documented
from spyglass.api.schemas import BackupBody

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The model is loaded and the index is open")
async def readyz(request: Request, response: Response) -> dict:
    engine = request.app.state.engine
    ready = engine.ready
    response.status_code = 200 if ready else 503
    return {"ready": ready}


@router.get(
    "/v1/stats", summary="Counts, model, index", dependencies=[Depends(reader)], responses=documented(401)
)
async def stats(request: Request) -> dict:
    status = request.app.state.engine.status()
    status.pop("errors_list", None)
    return {**status, "jobs_active": request.app.state.jobs.active()}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Behind the read key when API keys are configured, unless `api.public_metrics` is set.",
    response_class=Response,
    responses=documented(401),
)
async def metrics(request: Request) -> Response:
    if not request.app.state.engine.settings.api.public_metrics:
        role(request)  # route and request counts reveal what a collection is used for
    app_metrics = request.app.state.metrics
    app_metrics.index_size.set(request.app.state.engine.store.index.ntotal)
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/v1/backup",
    summary="Back the collection up into the configured backup root",
    description="A consistent copy taken while the server keeps serving (`spyglass backup`): the catalog, "
    "uploads and tuned-model folders. Admin keys only; 403 when `api.backup_root` is not set, 409 when "
    "the named folder exists.",
    dependencies=[Depends(admin)],
    responses=documented(400, 401, 403, 409, 422),
)
async def backup(body: BackupBody, request: Request) -> dict:
    from spyglass.runtime.backup import backup as copy

    engine = request.app.state.engine
    root = engine.settings.api.backup_root
    if root is None:
        raise HTTPException(403, "backups over HTTP are off: set api.backup_root")
    target = Path(root) / body.name
    if target.exists():
        raise HTTPException(409, f"{body.name} already exists in the backup root")
    manifest = await run_in_threadpool(copy, engine.settings.data_dir, target)
    return {"name": body.name, **manifest}
