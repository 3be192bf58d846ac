"""Spyglass as an MCP server: the collection as tools for AI assistants and agents.

Built with the official ``mcp`` SDK on the same :class:`~spyglass.Engine` the CLI and the
HTTP API use. Two doors:

- ``spyglass mcp`` speaks stdio, for an assistant on the user's own machine (Claude
  Desktop, Cursor, an agent); it runs as the user, so paths are the user's own;
- ``spyglass serve`` mounts streamable HTTP at ``/mcp`` behind the same API keys as
  ``/v1``: a key reaches only the collections it may read (any other is "no collection
  named …", as for one that does not exist), only write keys index, and paths (a query
  image or a folder to index) must lie inside the collection's allowed roots.

Every tool takes an optional ``collection``; without it, the default collection (for
``spyglass mcp``, the one ``--collection`` names).

Tool descriptions are written for a model: what each tool is for, what it returns, and
which tool to call next (an item id from ``search`` feeds ``get_item`` and
``find_similar``; an answer's citations name the items it used).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import HTTPException
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from mcp_types import ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from spyglass.api.auth import EVERYTHING, Grant, grant
from spyglass.api.schemas import MAX_ID, FilterBody, GenerationBody
from spyglass.generator.backends import GenerationParamsError
from spyglass.generator.conversation import LOCAL, ConversationNotFound
from spyglass.generator.prompt import PromptOptions
from spyglass.indexer.walk import confined
from spyglass.retriever import Query, RankingOptions
from spyglass.runtime.collections import DEFAULT, NAME, CollectionNotFound, Collections

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from spyglass.engine import Engine

INSTRUCTIONS = (
    "Spyglass searches the user's own photos, scans, PDFs, notes and videos, by words, by meaning "
    "and by picture. Start with `search`; results carry an `item_id` to pass to `get_item` (to see "
    "the picture, its text and text read in it) or to `find_similar`. For a question about the "
    "collection, `ask` answers with numbered citations to the items it used; cite those to the user."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

K = Annotated[int, Field(ge=1, le=50, description="How many results to return.")]
ITEM = Annotated[int, Field(ge=1, le=MAX_ID, description="An item_id from search results.")]
COLLECTION = Annotated[
    str | None, Field(description="Which collection to use (default: the default collection).")
]
FILTERS = Annotated[
    FilterBody | None,
    Field(description="Optional filters: kinds, path_prefix, types, tags, date_from/date_to (epoch s)."),
]


def build_server(
    collections: Collections,
    *,
    default: str = DEFAULT,
    grants: Callable[[Context], Grant] | None = None,
) -> MCPServer:
    """The tools over ``collections``. ``grants``: the caller's grant, for HTTP, where paths must lie
    in the collection's allowed roots; None for stdio (the user's own process: everything, any path)."""
    server = MCPServer("spyglass", instructions=INSTRUCTIONS)

    def open_(ctx: Context, name: str | None, *, write: bool = False) -> Engine:
        name = name or default
        who = EVERYTHING if grants is None else grants(ctx)
        missing = ToolError(f"there is no collection named {name!r}")
        if not NAME.fullmatch(name) or not who.reads(name):
            raise missing
        if write and not who.writes(name):
            raise ToolError("this API key may only read this collection; indexing needs a write key")
        try:
            return collections.engine(name)
        except CollectionNotFound:
            raise missing from None

    def allowed(engine: Engine, raw: str) -> Path:
        try:
            return confined(raw, None if grants is None else engine.settings.api.allowed_roots)
        except (PermissionError, FileNotFoundError) as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=READ_ONLY)
    def search(
        ctx: Context,
        text: Annotated[
            str, Field(description="Words or a description, e.g. 'receipt from Cafe Rossi'.")
        ] = "",
        image_path: Annotated[str | None, Field(description="A picture file to search by.")] = None,
        image_base64: Annotated[str | None, Field(description="A picture (JPEG/PNG bytes, base64).")] = None,
        filters: FILTERS = None,
        k: K = 10,
        collection: COLLECTION = None,
    ) -> dict:
        """Find photos, pages, figures, passages and video frames by text, by a picture, or both.

        Returns ``results`` best first: ``item_id``, ``kind``, ``path``, ``page``, ``score``, a
        ``snippet`` for text, and ``ocr`` lines when the words were read in the picture; when
        nothing matches well, ``no_match`` is true and ``message`` says why.
        """
        engine = open_(ctx, collection)
        images: list = []
        if image_path:
            images.append(allowed(engine, image_path))
        if image_base64:
            try:
                images.append(base64.b64decode(image_base64, validate=True))
            except (binascii.Error, ValueError):
                raise ToolError("image_base64 is not valid base64") from None
        if not text.strip() and not images:
            raise ToolError("give text, image_path or image_base64")
        query = Query(text=text or None, images=images)
        options = RankingOptions(relevance_floor=not images)
        return _search(engine, query, filters, k, options)

    @server.tool(annotations=READ_ONLY)
    def find_similar(
        ctx: Context, item_id: ITEM, filters: FILTERS = None, k: K = 10, collection: COLLECTION = None
    ) -> dict:
        """Items that look or read like an indexed item ("more like this"); same result shape as search."""
        engine = open_(ctx, collection)
        if engine.store.item(item_id) is None:
            raise ToolError(f"no item {item_id}")
        return _search(engine, Query(item_id=item_id), filters, k, RankingOptions(relevance_floor=False))

    @server.tool(annotations=READ_ONLY)
    def ask(
        ctx: Context,
        question: Annotated[str, Field(min_length=1, max_length=2000)],
        filters: FILTERS = None,
        generation: GenerationBody | None = None,
        collection: COLLECTION = None,
        conversation_id: Annotated[
            str | None,
            Field(
                max_length=64,
                description="Continue this conversation (a conversation_id an earlier ask returned): the "
                "question is read with the earlier turns in view. Omit it to start a new conversation.",
            ),
        ] = None,
    ) -> dict:
        """Answer a question from the collection, grounded in retrieved pictures and passages.

        Returns ``answer`` with numbered markers [1], [2], ``supported`` (false: the collection
        did not hold an answer) and ``citations``: for each number the item it cites
        (``item_id``, ``path``, ``page``, a ``label`` such as "page 4 of paper.pdf", and the
        quoted ``text``). Tell the user which items support the answer. ``generation`` sets
        max_tokens, temperature, top_p, n (candidate answers, returned as ``candidates``), stop
        and seed for this question. Every answer carries a ``conversation_id``: pass it with a
        follow-up question ("and which page says so?").
        """
        engine = open_(ctx, collection)
        options = PromptOptions(generation=(generation or GenerationBody()).controls())
        owner = LOCAL if grants is None else grants(ctx).owner
        try:
            # a new conversation each time one is not named (a read-only catalog keeps none)
            keep = conversation_id is not None or not engine.store.read_only
            conversation = engine.conversation(conversation_id, owner) if keep else None
            return engine.ask(
                question,
                filters=(filters or FilterBody()).to_filters(),
                options=options,
                conversation=conversation,
            ).public()
        except (GenerationParamsError, ConversationNotFound) as exc:  # the agent can fix its call
            raise ToolError(str(exc)) from None

    @server.tool(annotations=READ_ONLY)
    def get_item(ctx: Context, item_id: ITEM, picture: bool = True, collection: COLLECTION = None) -> list:
        """One item in full: path, kind, page, its text, its document's metadata and tags, the lines
        of text read in it with their boxes, and (``picture``) its thumbnail as an image."""
        engine = open_(ctx, collection)
        described = engine.item(item_id)
        if described is None:
            raise ToolError(f"no item {item_id}")
        thumbnail = engine.store.thumbnail(item_id) if picture else None
        return [described] + ([Image(data=thumbnail, format="jpeg")] if thumbnail else [])

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    def index_folder(
        path: Annotated[
            str, Field(description="A folder (or file) to add; re-indexing only picks up changes.")
        ],
        ctx: Context,
        collection: COLLECTION = None,
    ) -> dict:
        """Add a folder to the collection (new and changed files; unchanged ones are skipped).

        Returns counts of files added, updated, unchanged and removed, and the errors met.
        """
        engine = open_(ctx, collection, write=True)
        confine = None if grants is None else engine.settings.api.allowed_roots
        report = engine.index(allowed(engine, path), progress=False, confine=confine)
        return asdict(report) | {"summary": report.summary()}

    return server


def _search(
    engine: Engine, query: Query, filters: FilterBody | None, k: int, options: RankingOptions
) -> dict:
    response = engine.search(query, (filters or FilterBody()).to_filters(), k=k, options=options)
    return response.to_dict()


def request_grant(ctx: Context) -> Grant:
    """The grant ``KeyGuard`` found for the HTTP request a tool call came in."""
    request = ctx.request_context.request
    if not isinstance(request, Request) or not hasattr(request.state, "grant"):
        raise ToolError("this call carries no API key")  # never assume a grant
    return request.state.grant


class KeyGuard:
    """The ``/v1`` API keys in front of the MCP endpoint; the caller's grant goes to ``request.state``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                request.state.grant = grant(request)
            except HTTPException as exc:
                response = JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
