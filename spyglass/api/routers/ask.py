"""POST …/ask: an answer with citations, or with ?stream=true server-sent events; conversations,
each visible to the key that started it only (its fingerprint owns it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Query as Param
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from spyglass.api.auth import Grant, grant
from spyglass.api.errors import documented, not_found
from spyglass.api.hosting import Served, named_readable, open_many, open_readable, readable
from spyglass.api.schemas import AskBody
from spyglass.generator import Answer, PromptOptions
from spyglass.generator.across import prepare_across
from spyglass.generator.conversation import Conversation
from spyglass.runtime.collections import DEFAULT

router = APIRouter(tags=["ask"], responses=documented(400, 401, 409, 422, 502))


@router.post(
    "/ask",
    summary="Answer a question from the collection, or several, citing images, pages and passages",
    description="With `collections`, each of them is searched as it would be alone (404 for one the "
    "key cannot read), the evidence is merged by score within one answer's budgets, and every "
    "citation names its `collection`; not with a `conversation_id` (422).",
    responses={200: {"content": {"text/event-stream": {}}}, **documented(404)},
    dependencies=[Depends(named_readable)],
)
async def ask(
    body: AskBody,
    request: Request,
    who: Grant = Depends(grant),
    stream: bool = Param(False, description="Server-sent events"),
):
    options = PromptOptions(
        step_by_step=body.step_by_step, few_shot=body.few_shot, generation=body.controls()
    )
    if body.collections is not None:
        return await _ask_across(body, open_many(request, who, body.collections), options, stream)
    served = open_readable(request, who, request.path_params.get("collection", DEFAULT))
    engine = served.engine
    asked = {"filters": body.filters.to_filters(), "options": options}
    if body.conversation_id is not None:
        asked["conversation"] = await run_in_threadpool(_conversation, served, who, body.conversation_id)
    if not stream:
        answer = await run_in_threadpool(lambda: engine.ask(body.question, **asked))
        return served.relink(answer.public())
    events = await run_in_threadpool(lambda: engine.ask_stream(body.question, **asked))
    return _streamed(events, served.relink)


async def _ask_across(body: AskBody, many: list[Served], options: PromptOptions, stream: bool):
    """One answer from several collections (``generator.across``), each citation linked into its own."""
    if body.conversation_id is not None:
        raise HTTPException(422, "a conversation lives in one collection: ask it without `collections`")
    if not many:
        raise HTTPException(422, "`collections` names no collection this key may read")
    by_name = {served.name: served for served in many}

    def relink(public: dict) -> dict:
        for group in ("citations", "uncited"):
            public[group] = [by_name[piece["collection"]].relink(piece) for piece in public[group]]
        public["candidates"] = [relink(candidate) for candidate in public.get("candidates", [])]
        public["collections"] = list(by_name)
        return public

    engines = [(served.name, served.engine) for served in many]
    prepared = await run_in_threadpool(
        prepare_across, engines, body.question, body.filters.to_filters(), options
    )
    generator = many[0].engine.generator
    if not stream:
        return relink((await run_in_threadpool(generator.answer, prepared)).public())
    return _streamed(generator.stream(prepared), relink)


def _streamed(events: Iterator[str | Answer], relink: Callable[[dict], dict]) -> StreamingResponse:
    return StreamingResponse(
        _sse(events, relink),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _conversation(served: Served, who: Grant, conversation_id: str) -> Conversation:
    """The key's own conversation, or 404 (another key's is not found either)."""
    conversation = served.engine.conversation(conversation_id, who.owner)
    conversation.turns()  # ConversationNotFound: 404
    return conversation


@router.post("/conversations", status_code=201, summary="Start a conversation: follow-up questions")
async def start_conversation(served: Served = Depends(readable), who: Grant = Depends(grant)) -> dict:
    conversation = await run_in_threadpool(served.engine.conversation, None, who.owner)
    return {"conversation_id": conversation.id, "url": f"{served.prefix}/conversations/{conversation.id}"}


@router.get("/conversations", summary="This key's conversations, latest first")
async def list_conversations(served: Served = Depends(readable), who: Grant = Depends(grant)) -> list[dict]:
    return await run_in_threadpool(served.engine.store.conversations, who.owner)


@router.get("/conversations/{conversation_id}", summary="A conversation's turns", responses=documented(404))
async def read_conversation(
    conversation_id: str, served: Served = Depends(readable), who: Grant = Depends(grant)
) -> dict:
    found = await run_in_threadpool(served.engine.store.conversation, conversation_id, who.owner)
    if found is None:
        raise not_found(f"conversation {conversation_id}")
    return served.relink(found)


@router.delete("/conversations/{conversation_id}", summary="Delete a conversation", responses=documented(404))
async def delete_conversation(
    conversation_id: str, served: Served = Depends(readable), who: Grant = Depends(grant)
) -> dict:
    if not await run_in_threadpool(served.engine.store.delete_conversation, conversation_id, who.owner):
        raise not_found(f"conversation {conversation_id}")
    return {"deleted": conversation_id}


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
