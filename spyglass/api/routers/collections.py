"""GET, POST and DELETE /v1/collections: which collections a key sees, making and removing them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi import Query as Param
from fastapi.concurrency import run_in_threadpool

from spyglass.api.auth import Grant, admin, grant
from spyglass.api.errors import documented, not_found
from spyglass.api.schemas import CollectionBody
from spyglass.errors import SpyglassError
from spyglass.runtime.collections import DEFAULT, NAME, CollectionConfig, CollectionNotFound

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=documented(401, 422))


@router.get("", summary="The collections this key may read")
async def list_collections(request: Request, who: Grant = Depends(grant)) -> list[dict]:
    hosted = request.app.state.hosted

    def describe() -> list[dict]:
        rows = []
        for name in hosted.collections.names():
            if who.reads(name):
                served = hosted.get(name)
                status = served.engine.status()
                rows.append(
                    {
                        "name": name,
                        "items": status["items"],
                        "model": served.engine.model_spec(),
                        "writable": who.writes(name),
                        "prefix": served.prefix,
                    }
                )
        return rows

    return await run_in_threadpool(describe)


@router.post(
    "",
    status_code=201,
    summary="Create a named collection (admin keys)",
    description="It may set its own model spec, text model, OCR, label vocabulary and allowed roots; "
    "the rest follows the server's settings.",
    responses=documented(400, 403, 409),
)
async def create_collection(body: CollectionBody, request: Request, _: Grant = Depends(admin)) -> dict:
    hosted = request.app.state.hosted
    own = CollectionConfig.model_validate(body.model_dump(exclude={"name"}))
    try:
        await run_in_threadpool(hosted.collections.create, body.name, own)
    except SpyglassError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"name": body.name, "prefix": f"/v1/collections/{body.name}"}


@router.delete(
    "/{name}",
    summary="Delete a named collection: its catalog, indexes and uploads (admin keys)",
    description="Refused with 409 while a job of the collection is queued or running, unless `force`: "
    "queued jobs are then cancelled and a running one stops at its next write.",
    responses=documented(403, 404, 409),
)
async def delete_collection(
    name: Annotated[str, PathParam(pattern=f"^{NAME.pattern}$", max_length=63)],
    request: Request,
    force: Annotated[bool, Param(description="Cancel the collection's jobs first.")] = False,
    _: Grant = Depends(admin),
) -> dict:
    if name == DEFAULT:
        raise HTTPException(409, "the default collection cannot be deleted")
    try:
        await run_in_threadpool(request.app.state.hosted.delete, name, force=force)
    except CollectionNotFound:
        raise not_found(f"collection {name}") from None
    except RuntimeError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"deleted": name}
