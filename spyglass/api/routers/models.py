"""Model versions: which model the collection searches with, switching (in the background) and rolling back."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from spyglass.api.errors import documented
from spyglass.api.hosting import Served, readable, writable
from spyglass.api.schemas import ModelBody
from spyglass.encoders.spec import parse_spec

router = APIRouter(prefix="/models", tags=["models"], responses=documented(400, 401, 422))


@router.get("", summary="The active, previous and switching-to model versions")
async def versions(served: Served = Depends(readable)) -> dict:
    return (await run_in_threadpool(served.engine.status))["models"]


@router.post(
    "",
    status_code=202,
    summary="Switch the collection to another model",
    description="Every item is re-embedded from its file in the background while searches keep using the "
    "current model; the switch happens at once when the new vectors are complete. Progress: `GET /v1/models` "
    "(`switch.embedded` of `switch.items`) and the job.",
    responses=documented(403),
)
async def use(body: ModelBody, served: Served = Depends(writable)) -> dict:
    parse_spec(body.spec)  # a malformed spec or a missing path is a 422 now, not a failed job later
    job = await run_in_threadpool(served.jobs.submit, "model", body.spec)
    return {"job_id": job.id, "spec": body.spec, "status_url": f"{served.prefix}/jobs/{job.id}"}


@router.post(
    "/rollback",
    status_code=202,
    summary="Return to the previous model version",
    responses=documented(403),
)
async def rollback(served: Served = Depends(writable)) -> dict:
    job = await run_in_threadpool(served.jobs.submit, "rollback", "previous")
    return {"job_id": job.id, "status_url": f"{served.prefix}/jobs/{job.id}"}
