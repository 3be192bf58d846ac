"""POST …/ask: an answer with citations, or with ?stream=true server-sent events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from fastapi import APIRouter, Depends
from fastapi import Query as Param
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from spyglass.api.errors import documented
from spyglass.api.hosting import Served, readable
from spyglass.api.schemas import AskBody
from spyglass.generator import Answer, PromptOptions

router = APIRouter(tags=["ask"], responses=documented(400, 401, 409, 422, 502))


@router.post(
    "/ask",
    summary="Answer a question from the collection, citing images, pages and passages",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ask(
    body: AskBody,
    served: Served = Depends(readable),
    stream: bool = Param(False, description="Server-sent events"),
):
    engine = served.engine
    options = PromptOptions(
        step_by_step=body.step_by_step, few_shot=body.few_shot, generation=body.controls()
    )
    filters = body.filters.to_filters()
    if not stream:
        answer = await run_in_threadpool(engine.ask, body.question, filters=filters, options=options)
        return served.relink(answer.public())
    events = await run_in_threadpool(engine.ask_stream, body.question, filters=filters, options=options)
    return StreamingResponse(
        _sse(events, served.relink),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(events: Iterator[str | Answer], relink: Callable[[dict], dict]) -> Iterator[str]:
    """``token`` events with text pieces, then one ``answer`` event with the checked answer and citations."""
    try:
        for event in events:
            if isinstance(event, Answer):
                yield f"event: answer\ndata: {json.dumps(relink(event.public()))}\n\n"
            else:
                yield f"event: token\ndata: {json.dumps({'text': event})}\n\n"
    except Exception as exc:  # noqa: BLE001 - the stream has started; report in-band
        yield f"event: error\ndata: {json.dumps({'message': str(exc)})}\n\n"
