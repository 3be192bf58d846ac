"""Collections over real HTTP (uvicorn on 127.0.0.1) and MCP: keys see only their own collections.

Two collections, ``family`` and ``work``, each with its own allowed root; keys scoped to
``family``. Every collection route of the OpenAPI document is called for ``work`` with the
family key and must answer 404, as for a collection that does not exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import httpx2
import pytest
from conftest import write_shapes
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support.live_server import LiveServer, wait

from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.settings import Settings

KEYS = [
    {"key": "family-reader", "role": "read", "collections": ["family"]},
    {"key": "family-writer", "role": "write", "collections": ["family"]},
    {"key": "root", "role": "admin"},
    {"key": "both", "role": "read", "collections": ["family", "work"]},
]


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, shapes_encoder):
    """A server with ``family`` and ``work`` made and indexed over HTTP; yields (client, roots)."""
    root = tmp_path_factory.mktemp("collections")
    roots = {
        "family": write_shapes(
            root / "family", 10, seed=1, note="Grandma's birthday was celebrated with the red cake in June."
        ),
        "work": write_shapes(
            root / "work", 12, seed=2, note="The quarterly contract was signed with Acme Corp in March."
        ),
    }
    settings = Settings(
        data_dir=root / "data", model="builtin:shapes", text={"model": ""}, api={"keys": KEYS}
    )
    engine = Engine(settings, encoder=shapes_encoder)
    with LiveServer(create_app(engine)) as live, httpx2.Client(base_url=live.url, timeout=60) as client:
        for name, folder in roots.items():
            made = client.post(
                "/v1/collections", json={"name": name, "allowed_roots": [str(folder)]}, headers=bearer("root")
            )
            assert made.status_code == 201, made.text
            job = client.post(
                f"/v1/collections/{name}/sources", json={"path": str(folder)}, headers=bearer("root")
            ).json()
            done = wait(client, job["job_id"], bearer("root"), prefix=f"/v1/collections/{name}")
            assert done["state"] == "done" and done["report"]["added"] == len(list(folder.iterdir()))
        yield live, client, roots


def filled(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "work" if m[1] == "collection" else "1", path)


def test_every_collection_route_answers_404_for_a_collection_the_key_cannot_read(server):
    _, client, _ = server
    spec = client.get("/openapi.json").json()
    routes = [
        (method, path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/collections/{collection}/")
        for method in operations
    ]
    assert len(routes) >= 15, routes  # search, ask, items, documents, jobs, models, stats, backup ...
    for key in ("family-reader", "family-writer"):
        for method, path in routes:
            answer = client.request(method.upper(), filled(path), headers=bearer(key))
            assert answer.status_code == 404, (key, method, path, answer.status_code, answer.text)
            assert answer.json()["error"]["message"] == "there is no collection named 'work'"
    # the same as a collection that does not exist, for the admin too
    assert (
        client.post("/v1/collections/nowhere/search", json={"text": "a"}, headers=bearer("root")).status_code
        == 404
    )
    # the unprefixed routes mean the default collection, which the family keys cannot read either
    assert client.post("/v1/search", json={"text": "a"}, headers=bearer("family-reader")).status_code == 404
    listed = client.get("/v1/collections", headers=bearer("family-reader")).json()
    assert [row["name"] for row in listed] == ["family"] and listed[0]["writable"] is False
    everything = client.get("/v1/collections", headers=bearer("root")).json()
    assert [row["name"] for row in everything] == ["default", "family", "work"]


def test_ids_filters_and_results_never_reach_another_collection(server):
    _, client, roots = server
    family, work = roots["family"], roots["work"]
    reader = bearer("family-reader")
    found = client.post(
        "/v1/collections/family/search", json={"text": "a red circle", "k": 50}, headers=reader
    ).json()["results"]
    assert found and {Path(hit["path"]).parent for hit in found} == {family}
    work_ids = {
        hit["item_id"]
        for hit in client.post(
            "/v1/collections/work/search", json={"text": "a red circle", "k": 50}, headers=bearer("root")
        ).json()["results"]
    }
    for item_id in sorted(work_ids):  # the same numbers, asked through family, are family's items or 404
        item = client.get(f"/v1/collections/family/items/{item_id}", headers=reader)
        assert item.status_code == 404 or Path(item.json()["path"]).parent == family, item.text
        if item.status_code == 200:
            assert item.json()["thumbnail_url"].startswith("/v1/collections/family/items/")
    nothing = client.post(
        "/v1/collections/family/search",
        json={"text": "a red circle", "filters": {"path_prefix": str(work)}},
        headers=reader,
    ).json()
    assert nothing["results"] == []
    metrics = client.get("/metrics", headers=reader).text
    assert "family" not in metrics and "work" not in metrics and "{collection}" in metrics


def test_a_key_that_reads_several_collections_searches_them_at_once(server):
    _, client, roots = server
    query = {"text": "a red circle", "k": 30, "relevance_floor": False}
    merged = client.post("/v1/search", json={**query, "collections": ["*"]}, headers=bearer("both")).json()
    assert merged["collections"] == ["family", "work"]
    by = {hit["collection"] for hit in merged["results"]}
    assert by == {"family", "work"}
    for hit in merged["results"]:
        assert Path(hit["path"]).parent == roots[hit["collection"]]
        if hit["thumbnail_url"]:
            assert hit["thumbnail_url"].startswith(f"/v1/collections/{hit['collection']}/items/")
    scores = [hit["score"] for hit in merged["results"]]
    assert scores == sorted(scores, reverse=True)
    own = client.post(
        "/v1/search", json={**query, "collections": ["*"]}, headers=bearer("family-reader")
    ).json()
    assert {hit["collection"] for hit in own["results"]} == {"family"}  # "*" is what the key reads
    named = client.post(
        "/v1/search", json={**query, "collections": ["family", "work"]}, headers=bearer("family-reader")
    )
    assert named.status_code == 404 and "'work'" in named.json()["error"]["message"]


def test_a_key_that_reads_several_collections_asks_them_at_once(server):
    _, client, roots = server
    question = {"question": "Whose birthday had the red cake, and who signed the quarterly contract?"}
    answer = client.post("/v1/ask", json={**question, "collections": ["*"]}, headers=bearer("both")).json()
    assert answer["supported"] and answer["collections"] == ["family", "work"], answer
    quoted = {(piece["collection"], piece["text"]) for piece in answer["citations"] if piece["text"]}
    assert {name for name, _ in quoted} == {"family", "work"}, answer  # one answer, evidence from both
    assert any("Grandma" in text for name, text in quoted if name == "family")
    assert any("Acme" in text for name, text in quoted if name == "work")
    for piece in answer["citations"] + answer["uncited"]:
        assert Path(piece["path"]).parent == roots[piece["collection"]]
        assert f"(collection {piece['collection']})" in piece["label"]
        if piece["thumbnail_url"]:
            assert piece["thumbnail_url"].startswith(f"/v1/collections/{piece['collection']}/items/")
    numbers = [piece["number"] for piece in answer["citations"] + answer["uncited"]]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # one numbering across collections
    streamed = client.post(
        "/v1/ask?stream=true", json={**question, "collections": ["family", "work"]}, headers=bearer("both")
    )
    final = json.loads(streamed.text.split("event: answer\ndata: ")[1].split("\n")[0])
    assert {piece["collection"] for piece in final["citations"]} == {"family", "work"}
    own = client.post("/v1/ask", json={**question, "collections": ["*"]}, headers=bearer("family-reader"))
    assert {piece["collection"] for piece in own.json()["citations"]} == {"family"}
    named = client.post(
        "/v1/ask", json={**question, "collections": ["family", "work"]}, headers=bearer("family-reader")
    )
    assert named.status_code == 404 and "'work'" in named.json()["error"]["message"]
    talk = {**question, "collections": ["family"], "conversation_id": "x"}
    assert client.post("/v1/ask", json=talk, headers=bearer("both")).status_code == 422
    none = client.post("/v1/ask", json={**question, "collections": []}, headers=bearer("both"))
    assert none.status_code == 422 and "names no collection" in none.json()["error"]["message"]


def test_a_family_writer_indexes_family_roots_only(server):
    _, client, roots = server
    writer = bearer("family-writer")
    assert (
        client.post(
            "/v1/collections/family/sources", json={"path": str(roots["work"])}, headers=writer
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/v1/collections/work/sources", json={"path": str(roots["work"])}, headers=writer
        ).status_code
        == 404
    )
    reader = bearer("family-reader")
    refused = client.post(
        "/v1/collections/family/sources", json={"path": str(roots["family"])}, headers=reader
    )
    assert refused.status_code == 403
    assert client.post("/v1/collections", json={"name": "mine"}, headers=writer).status_code == 403


def test_mcp_tools_take_a_collection_and_hide_the_others(server):
    live, _, roots = server
    url = f"{live.url}/mcp"

    async def call(key: str, tool: str, arguments: dict):
        async with httpx2.AsyncClient(headers=bearer(key)) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return await client.call_tool(tool, arguments)

    async def session():
        for tool, arguments in [
            ("search", {"text": "contract", "collection": "work"}),
            ("get_item", {"item_id": 1, "collection": "work"}),
            ("find_similar", {"item_id": 1, "collection": "work"}),
            ("ask", {"question": "what contract?", "collection": "work"}),
            ("search", {"text": "contract"}),  # the default collection
        ]:
            hidden = await call("family-reader", tool, arguments)
            assert hidden.is_error and "no collection named" in hidden.content[0].text, (tool, hidden.content)
        found = await call("family-reader", "search", {"text": "a blue square", "collection": "family"})
        results = json.loads(found.content[0].text)["results"]
        assert results and {Path(hit["path"]).parent for hit in results} == {roots["family"]}
        elsewhere = await call(
            "family-writer", "index_folder", {"path": str(roots["work"]), "collection": "family"}
        )
        assert elsewhere.is_error and "outside the allowed roots" in elsewhere.content[0].text
        into_work = await call(
            "family-writer", "index_folder", {"path": str(roots["work"]), "collection": "work"}
        )
        assert into_work.is_error and "no collection named" in into_work.content[0].text

    anyio.run(session, backend="asyncio")


def test_deleting_a_collection_with_a_job_needs_force_and_cancels_it(server, tmp_path):
    _, client, _ = server
    root = bearer("root")
    folder = write_shapes(tmp_path / "many", 150, seed=4)
    assert (
        client.post(
            "/v1/collections", json={"name": "scratch", "allowed_roots": [str(tmp_path)]}, headers=root
        ).status_code
        == 201
    )
    assert client.post("/v1/collections", json={"name": "scratch"}, headers=root).status_code == 409
    jobs = [
        client.post("/v1/collections/scratch/sources", json={"path": str(folder)}, headers=root).json()
        for _ in range(2)
    ]
    refused = client.delete("/v1/collections/scratch", headers=root)
    assert refused.status_code == 409 and "force" in refused.json()["error"]["message"]
    queued = client.delete(f"/v1/collections/scratch/jobs/{jobs[1]['job_id']}", headers=root)
    assert queued.status_code == 200 and queued.json()["state"] == "cancelled"
    assert client.delete("/v1/collections/scratch?force=true", headers=root).json() == {"deleted": "scratch"}
    assert not (
        Path(client.get("/v1/stats", headers=root).json()["data_dir"]) / "collections" / "scratch"
    ).exists()
    assert client.get("/v1/collections/scratch/stats", headers=root).status_code == 404
    assert "scratch" not in [row["name"] for row in client.get("/v1/collections", headers=root).json()]
    assert client.delete("/v1/collections/default", headers=root).status_code == 409


def test_the_web_page_offers_only_the_collections_the_key_reads(server, browser, tmp_path):
    live, _, _ = server
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(live.url + "/")
    page.fill("#key", "family-reader")
    page.dispatch_event("#key", "change")
    page.wait_for_function("document.querySelectorAll('#collection option').length > 0")
    assert page.is_visible("#collection")
    assert page.eval_on_selector_all("#collection option", "os => os.map(o => o.value)") == ["family"]
    page.fill("#q", "a red circle")
    page.wait_for_function("document.querySelectorAll('#results .card img').length > 0")
    page.wait_for_function(
        "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    sources = page.eval_on_selector_all("#results img", "is => is.map(i => i.getAttribute('src'))")
    assert sources and all(src.startswith("/v1/collections/family/items/") for src in sources), sources
    shot = tmp_path / "collections-family.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.fill("#key", "root")  # the admin sees every collection and switches between them
    page.dispatch_event("#key", "change")
    page.wait_for_function("document.querySelectorAll('#collection option').length === 3")
    page.select_option("#collection", "work")
    page.fill("#q", "a blue square")
    page.wait_for_function(
        "[...document.querySelectorAll('#results img')].some(i => i.getAttribute('src').startsWith('/v1/collections/work/'))"
    )
    page.locator("#results .card:has(img)").first.click()
    page.wait_for_selector("dialog[open] #detail-image")
    assert "/work/" in page.text_content("#detail-meta")
    page.close()
