"""Spyglass as an MCP server: the collection as tools for AI assistants and agents.

Built with the official ``mcp`` SDK on the same :class:`~spyglass.Engine` the CLI and the
HTTP API use. Two doors:

- ``spyglass mcp`` speaks stdio, for an assistant on the user's own machine (Claude
  Desktop, Cursor, an agent); it runs as the user, so paths are the user's own;
- ``spyglass serve`` mounts streamable HTTP at ``/mcp`` behind the same API keys as
  ``/v1``: read keys search and ask, only admin keys index, and paths (a query image
  or a folder to index) must lie inside the allowed roots.

Tool descriptions are written for a model: what each tool is for, what it returns, and
which tool to call next (an item id from ``search`` feeds ``get_item`` and
``find_similar``; an answer's citations name the items it used).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
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

from spyglass.api.auth import role
from spyglass.api.schemas import MAX_ID, FilterBody, GenerationBody
from spyglass.generator.backends import GenerationParamsError
from spyglass.generator.prompt import PromptOptions
from spyglass.indexer.walk import confined
from spyglass.retriever import Query, RankingOptions

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
FILTERS = Annotated[
    FilterBody | None,
    Field(description="Optional filters: kinds, path_prefix, types, tags, date_from/date_to (epoch s)."),
]


def build_server(engine: Engine, *, confine: Sequence[Path] | None = None) -> MCPServer:
    """The tools over ``engine``; ``confine``: roots that paths must lie in (None: any path, for stdio)."""
    server = MCPServer("spyglass", instructions=INSTRUCTIONS)

    def allowed(raw: str) -> Path:
        try:
            return confined(raw, confine)
        except (PermissionError, FileNotFoundError) as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=READ_ONLY)
    def search(
        text: Annotated[
            str, Field(description="Words or a description, e.g. 'receipt from Cafe Rossi'.")
        ] = "",
        image_path: Annotated[str | None, Field(description="A picture file to search by.")] = None,
        image_base64: Annotated[str | None, Field(description="A picture (JPEG/PNG bytes, base64).")] = None,
        filters: FILTERS = None,
        k: K = 10,
    ) -> dict:
        """Find photos, pages, figures, passages and video frames by text, by a picture, or both.

        Returns ``results`` best first: ``item_id``, ``kind``, ``path``, ``page``, ``score``, a
        ``snippet`` for text, and ``ocr`` lines when the words were read in the picture; when
        nothing matches well, ``no_match`` is true and ``message`` says why.
        """
        images: list = []
        if image_path:
            images.append(allowed(image_path))
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
    def find_similar(item_id: ITEM, filters: FILTERS = None, k: K = 10) -> dict:
        """Items that look or read like an indexed item ("more like this"); same result shape as search."""
        if engine.store.item(item_id) is None:
            raise ToolError(f"no item {item_id}")
        return _search(engine, Query(item_id=item_id), filters, k, RankingOptions(relevance_floor=False))

    @server.tool(annotations=READ_ONLY)
    def ask(
        question: Annotated[str, Field(min_length=1, max_length=2000)],
        filters: FILTERS = None,
        generation: GenerationBody | None = None,
    ) -> dict:
        """Answer a question from the collection, grounded in retrieved pictures and passages.

        Returns ``answer`` with numbered markers [1], [2], ``supported`` (false: the collection
        did not hold an answer) and ``citations``: for each number the item it cites
        (``item_id``, ``path``, ``page``, a ``label`` such as "page 4 of paper.pdf", and the
        quoted ``text``). Tell the user which items support the answer. ``generation`` sets
        max_tokens, temperature, top_p, n (candidate answers, returned as ``candidates``), stop
        and seed for this question.
        """
        options = PromptOptions(generation=(generation or GenerationBody()).controls())
        try:
            return engine.ask(
                question, filters=(filters or FilterBody()).to_filters(), options=options
            ).public()
        except GenerationParamsError as exc:  # the agent can fix its call: say what is wrong
            raise ToolError(str(exc)) from None

    @server.tool(annotations=READ_ONLY)
    def get_item(item_id: ITEM, picture: bool = True) -> list:
        """One item in full: path, kind, page, its text, its document's metadata and tags, the lines
        of text read in it with their boxes, and (``picture``) its thumbnail as an image."""
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
    ) -> dict:
        """Add a folder to the collection (new and changed files; unchanged ones are skipped).

        Returns counts of files added, updated, unchanged and removed, and the errors met.
        """
        request = ctx.request_context.request
        if isinstance(request, Request) and request.state.role != "admin":
            raise ToolError("this API key may only read; indexing needs an admin key")
        report = engine.index(allowed(path), progress=False, confine=confine)
        return asdict(report) | {"summary": report.summary()}

    return server


def _search(
    engine: Engine, query: Query, filters: FilterBody | None, k: int, options: RankingOptions
) -> dict:
    response = engine.search(query, (filters or FilterBody()).to_filters(), k=k, options=options)
    return response.to_dict()


class KeyGuard:
    """The ``/v1`` API keys in front of the MCP endpoint; the caller's role goes to ``request.state``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                request.state.role = role(request)
            except HTTPException as exc:
                response = JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
