"""Items by id: metadata, thumbnail, and content (the image, page render or figure crop)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from spyglass.api.errors import documented, not_found
from spyglass.api.hosting import Served, readable
from spyglass.api.schemas import ItemId
from spyglass.content import item_image, jpeg_bytes
from spyglass.kinds import ItemKind

router = APIRouter(prefix="/items", tags=["items"], responses=documented(401, 404, 422))


def _row(served: Served, item_id: int) -> dict:
    row = served.engine.store.item(item_id)
    if row is None:
        raise not_found(f"item {item_id}")
    return row


@router.get("/{item_id}", summary="An item's metadata")
async def item(item_id: ItemId, served: Served = Depends(readable)) -> dict:
    described = served.engine.item(item_id)
    if described is None:
        raise not_found(f"item {item_id}")
    visual = ItemKind(described["kind"]).visual
    return described | {
        "thumbnail_url": f"{served.prefix}/items/{item_id}/thumbnail" if visual else None,
        "content_url": f"{served.prefix}/items/{item_id}/content" if visual else None,
    }


@router.get(
    "/{item_id}/thumbnail",
    summary="A small JPEG of a visual item",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def thumbnail(item_id: ItemId, served: Served = Depends(readable)) -> Response:
    data = served.engine.store.thumbnail(item_id)
    if data is None:
        raise not_found(f"thumbnail of item {item_id}")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


@router.get(
    "/{item_id}/content",
    summary="The item's image: the photo, the page render or the figure crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def content(
    item_id: ItemId,
    served: Served = Depends(readable),
    max_side: Annotated[int, Query(ge=64, le=4096)] = 1600,
) -> Response:
    row = _row(served, item_id)
    if not ItemKind(row["kind"]).visual:
        raise not_found(f"visual content of item {item_id} (a {row['kind']})")
    if row["kind"] == ItemKind.KEYFRAME:
        return await thumbnail(item_id, served)
    image = await run_in_threadpool(item_image, row, max_side=max_side)
    return Response(jpeg_bytes(image, quality=90), media_type="image/jpeg")
