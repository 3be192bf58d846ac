"""POST /v1/search (JSON) and POST /v1/search/image (multipart)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from spyglass.api.auth import reader
from spyglass.api.errors import documented
from spyglass.api.schemas import FilterBody, SearchBody
from spyglass.api.uploads import read_upload
from spyglass.retriever import Query, RankingOptions

router = APIRouter(
    prefix="/v1", tags=["search"], dependencies=[Depends(reader)], responses=documented(400, 401, 409, 422)
)


SCORES = (
    "Each result's `score` is in [0, 1]: 1 is the best candidate of its kind on every signal that ranked "
    "it (CLIP, BM25 over words, the text space), and results are ordered by it. It is relative to the "
    "query; `dense`, `bm25` and `semantic` are each signal's raw score. Text results are chunks, each "
    "scored by its document's fused evidence (documents are the unit ranked; `k` and `offset` count "
    "results, so several chunks of one document can follow each other). Changed in 0.2: `score` was "
    "a cosine, a cosine plus a BM25 share, or a reciprocal-rank value, depending on the query."
)


@router.post("/search", summary="Search by text, an indexed item, or both", description=SCORES)
async def search(body: SearchBody, request: Request) -> dict:
    engine = request.app.state.engine
    query = Query(
        text=body.text,
        item_id=body.item_id,
        negative=body.negative,
        text_weight=body.text_weight,
        image_weight=body.image_weight,
    )
    response = await run_in_threadpool(
        engine.search, query, body.filters.to_filters(), k=body.k, offset=body.offset, options=body.options()
    )
    return response.to_dict()


@router.post(
    "/search/image",
    summary="Search by an uploaded image, optionally with text",
    description=SCORES,
    responses=documented(413, 415),
)
async def search_image(
    request: Request,
    image: UploadFile = File(..., description="The query image"),
    text: str | None = Form(None, max_length=2000),
    k: int = Form(10, ge=1, le=200),
    offset: int = Form(0, ge=0),
    filters: str = Form("{}", description="FilterBody as JSON"),
    image_weight: float = Form(1.0, ge=0, le=10),
    text_weight: float = Form(1.0, ge=0, le=10),
) -> dict:
    engine = request.app.state.engine
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
    return response.to_dict()
