"""POST …/search (JSON) and POST …/search/image (multipart), in a collection (``api.hosting``)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from spyglass.api.auth import Grant, grant
from spyglass.api.errors import documented
from spyglass.api.hosting import Served, named_readable, open_many, open_readable, readable
from spyglass.api.schemas import FilterBody, SearchBody
from spyglass.api.uploads import read_upload
from spyglass.retriever import Query, RankingOptions
from spyglass.runtime.collections import DEFAULT

router = APIRouter(tags=["search"], responses=documented(400, 401, 409, 422))


SCORES = (
    "Each result's `score` is in [0, 1]: 1 is the best candidate of its kind on every signal that ranked "
    "it (CLIP, BM25 over words, the text space), and results are ordered by it. It is relative to the "
    "query; `dense`, `bm25` and `semantic` are each signal's raw score. Text results are chunks, each "
    "scored by its document's fused evidence (documents are the unit ranked; `k` and `offset` count "
    "results, so several chunks of one document can follow each other). Changed in 0.2: `score` was "
    "a cosine, a cosine plus a BM25 share, or a reciprocal-rank value, depending on the query."
)

ACROSS = (
    "With `collections`, the search runs in each of them (404 for one the key cannot read) and the "
    "results merge by score, each naming its `collection`; `floors` is then empty. An `item_id` "
    "query needs a single collection."
)


@router.post(
    "/search",
    summary="Search by text, an indexed item, or both; in one collection or several",
    description=SCORES + " " + ACROSS,
    responses=documented(404),
    dependencies=[Depends(named_readable)],
)
async def search(body: SearchBody, request: Request, who: Grant = Depends(grant)) -> dict:
    query = Query(
        text=body.text,
        item_id=body.item_id,
        negative=body.negative,
        text_weight=body.text_weight,
        image_weight=body.image_weight,
    )
    if body.collections is None:
        served = open_readable(request, who, request.path_params.get("collection", DEFAULT))
        response = await run_in_threadpool(
            served.engine.search,
            query,
            body.filters.to_filters(),
            k=body.k,
            offset=body.offset,
            options=body.options(),
        )
        return served.relink(response.to_dict())
    many = open_many(request, who, body.collections)
    if query.item_id is not None and len(many) > 1:
        raise HTTPException(422, "an item_id query searches the one collection the id belongs to")
    return await run_in_threadpool(_across, many, query, body)


def _across(many: list[Served], query: Query, body: SearchBody) -> dict:
    """Each collection's best ``offset + k``, merged by score: each score is relative to the query
    within its collection (1: its best candidate), so the collections' best lead together."""
    pages = []
    for served in many:
        response = served.engine.search(
            query, body.filters.to_filters(), k=body.offset + body.k, options=body.options()
        )
        page = served.relink(response.to_dict())
        for hit in page["results"]:
            hit["collection"] = served.name
        pages.append(page)
    hits = sorted((hit for page in pages for hit in page["results"]), key=lambda hit: -hit["score"])
    empty = all(page["no_match"] for page in pages)
    return {
        "results": hits[body.offset : body.offset + body.k],
        "no_match": empty,
        "message": next((page["message"] for page in pages if page["message"]), None) if empty else None,
        "floors": {},
        "offset": body.offset,
        "k": body.k,
        "hidden": sum(page["hidden"] for page in pages),
        "collections": [served.name for served in many],
    }


@router.post(
    "/search/image",
    summary="Search by an uploaded image, optionally with text",
    description=SCORES,
    responses=documented(413, 415),
)
async def search_image(
    served: Served = Depends(readable),
    image: UploadFile = File(..., description="The query image"),
    text: str | None = Form(None, max_length=2000),
    k: int = Form(10, ge=1, le=200),
    offset: int = Form(0, ge=0),
    filters: str = Form("{}", description="FilterBody as JSON"),
    image_weight: float = Form(1.0, ge=0, le=10),
    text_weight: float = Form(1.0, ge=0, le=10),
) -> dict:
    engine = served.engine
    data = await read_upload(image, engine.settings.api, images_only=True)
    try:
        parsed = FilterBody.model_validate(json.loads(filters))
    except ValueError as exc:
        raise ValueError(
            f"filters must be a JSON object of filter fields: {str(exc).splitlines()[0][:200]}"
        ) from None
    query = Query(text=text, images=[data], image_weight=image_weight, text_weight=text_weight)
    response = await run_in_threadpool(
        engine.search,
        query,
        parsed.to_filters(),
        k=k,
        offset=offset,
        options=RankingOptions(relevance_floor=False),
    )
    return served.relink(response.to_dict())
