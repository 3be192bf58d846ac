"""The MCP doors, driven by the official SDK's client: ``spyglass mcp`` over stdio, ``/mcp`` over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio
import httpx2
import pytest
from conftest import write_shapes
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from support.live_server import LiveServer
from support.serve_process import EXE, env_for, spyglass

from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.settings import Settings

TOOLS = {"search", "find_similar", "ask", "get_item", "index_folder"}
NOTE = "Lighthouse keeper notes: the lamp of the north tower was cleaned on Tuesday."


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, Path]:
    """A data directory indexed by the CLI (shapes and a note), and the folder it indexed."""
    root = tmp_path_factory.mktemp("mcp")
    folder = write_shapes(root / "files", 12, seed=5, note=NOTE)
    spyglass(root / "data", "index", str(folder))
    return root / "data", folder


def structured(result) -> dict:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


def run(session) -> None:
    anyio.run(session, backend="asyncio")


def test_stdio_lists_tools_searches_asks_and_shows_an_item(collection):
    data, folder = collection

    async def session():
        params = StdioServerParameters(command=str(EXE), args=["mcp"], env=env_for(data))
        async with Client(params) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == TOOLS
            assert all(len(tool.description) > 40 for tool in tools.values())  # written for a model
            assert "text" in tools["search"].input_schema["properties"]

            found = structured(await client.call_tool("search", {"text": "a red circle", "k": 5}))
            top = found["results"][0]
            assert Path(top["path"]).name.startswith("red-circle"), found["results"]

            note = structured(await client.call_tool("search", {"text": "lighthouse keeper", "k": 3}))
            assert Path(note["results"][0]["path"]).name == "notes.md"

            picture = (folder / Path(top["path"]).name).read_bytes()
            by_image = structured(
                await client.call_tool("search", {"image_base64": base64.b64encode(picture).decode(), "k": 3})
            )
            assert by_image["results"][0]["item_id"] == top["item_id"]
            by_path = structured(await client.call_tool("search", {"image_path": top["path"], "k": 3}))
            assert by_path["results"][0]["item_id"] == top["item_id"]

            similar = structured(await client.call_tool("find_similar", {"item_id": top["item_id"], "k": 4}))
            assert similar["results"] and all(r["item_id"] != 0 for r in similar["results"])

            answer = structured(await client.call_tool("ask", {"question": "When was the lamp cleaned?"}))
            assert "Tuesday" in answer["answer"] and answer["supported"]
            assert any(Path(c["path"]).name == "notes.md" for c in answer["citations"])
            brief = structured(
                await client.call_tool(
                    "ask", {"question": "When was the lamp cleaned?", "generation": {"max_tokens": 3}}
                )
            )
            assert brief["answer"] != answer["answer"]  # cut at 3 words: the control reached the backend
            several = await client.call_tool(
                "ask", {"question": "When was it cleaned?", "generation": {"n": 2}}
            )
            assert several.is_error and "invalid n" in several.content[0].text  # extractive: one answer

            item = await client.call_tool("get_item", {"item_id": top["item_id"]})
            described = json.loads(item.content[0].text)
            assert described["path"] == top["path"] and described["kind"] == "image"
            image = item.content[1]
            assert image.type == "image" and image.mime_type == "image/jpeg"
            assert base64.b64decode(image.data)[:2] == b"\xff\xd8"  # a JPEG thumbnail

            missing = await client.call_tool("get_item", {"item_id": 999_999})
            assert missing.is_error and "no item 999999" in missing.content[0].text
            empty = await client.call_tool("search", {"text": "  "})
            assert empty.is_error

    run(session)


def test_http_endpoint_is_behind_the_api_keys_and_roots(tmp_path, shapes_encoder):
    root = tmp_path / "allowed"
    write_shapes(root / "more", 4, seed=9)
    outside = write_shapes(tmp_path / "outside", 2, seed=3)
    settings = Settings(
        data_dir=tmp_path / "data",
        api={"api_keys": ["reader-key"], "admin_keys": ["admin-key"], "allowed_roots": [root]},
    )
    engine = Engine(settings, encoder=shapes_encoder)
    with LiveServer(create_app(engine)) as live:
        url = f"{live.url}/mcp"
        refused = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401

        async def call(key: str, tool: str, arguments: dict):
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
                    return await client.call_tool(tool, arguments)

        async def session():
            read_only = await call("reader-key", "index_folder", {"path": str(root / "more")})
            assert read_only.is_error and "may only read" in read_only.content[0].text
            beyond = await call("admin-key", "index_folder", {"path": str(outside)})
            assert beyond.is_error and "outside the allowed roots" in beyond.content[0].text
            peek = await call("reader-key", "search", {"image_path": str(next(outside.glob("*.png")))})
            assert peek.is_error and "outside the allowed roots" in peek.content[0].text
            indexed = structured(await call("admin-key", "index_folder", {"path": str(root / "more")}))
            assert indexed["added"] == 4 and not indexed["errors"]
            found = structured(
                await call("reader-key", "search", {"text": "more", "k": 10})
            )  # the folder name
            assert len(found["results"]) == 4 and {Path(r["path"]).parent for r in found["results"]} == {
                root / "more"
            }

        run(session)
