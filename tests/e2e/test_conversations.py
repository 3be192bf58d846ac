"""Conversations over real HTTP, MCP and the interactive ``spyglass chat`` in a real terminal (tmux)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import anyio
import httpx
import pytest
from conftest import write_shapes
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support.live_server import LiveServer
from support.serve_process import EXE, env_for, spyglass

from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.settings import Settings

NOTE = "Lighthouse keeper notes: the lamp of the north tower was cleaned on Tuesday by Ada."


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, shapes_encoder):
    folder = write_shapes(tmp_path_factory.mktemp("talk") / "files", 10, seed=3, note=NOTE)
    settings = Settings(data_dir=tmp_path_factory.mktemp("talk-data"), api={"api_keys": ["ann", "bob"]})
    engine = Engine(settings, encoder=shapes_encoder)
    engine.index(folder, progress=False)
    with LiveServer(create_app(engine)) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield live, client


def test_a_conversation_belongs_to_the_key_that_started_it(server):
    _, client = server
    started = client.post("/v1/conversations", headers=bearer("ann"))
    assert started.status_code == 201
    talk = started.json()["conversation_id"]
    first = client.post(
        "/v1/ask",
        json={"question": "When was the lighthouse lamp cleaned?", "conversation_id": talk},
        headers=bearer("ann"),
    ).json()
    assert first["conversation_id"] == talk and first["turn"] == 1 and first["supported"], first
    with client.stream(
        "POST",
        "/v1/ask?stream=true",
        json={"question": "and who cleaned it?", "conversation_id": talk},
        headers=bearer("ann"),
    ) as streamed:
        events = streamed.read().decode()
    answer = json.loads(events.split("event: answer\ndata: ", 1)[1].split("\n", 1)[0])
    assert answer["turn"] == 2 and "lighthouse" in answer["standalone"].lower()
    assert [row["id"] for row in client.get("/v1/conversations", headers=bearer("ann")).json()] == [talk]
    turns = client.get(f"/v1/conversations/{talk}", headers=bearer("ann")).json()["turns"]
    assert [turn["question"] for turn in turns] == [
        "When was the lighthouse lamp cleaned?",
        "and who cleaned it?",
    ]

    # another key, reading the same collection, sees nothing of it
    assert client.get("/v1/conversations", headers=bearer("bob")).json() == []
    assert client.get(f"/v1/conversations/{talk}", headers=bearer("bob")).status_code == 404
    foreign = client.post(
        "/v1/ask", json={"question": "and then?", "conversation_id": talk}, headers=bearer("bob")
    )
    assert foreign.status_code == 404
    assert client.delete(f"/v1/conversations/{talk}", headers=bearer("bob")).status_code == 404
    assert client.delete(f"/v1/conversations/{talk}", headers=bearer("ann")).json() == {"deleted": talk}
    assert client.get(f"/v1/conversations/{talk}", headers=bearer("ann")).status_code == 404
    assert client.get("/v1/conversations", headers=bearer("ann")).json() == []


def test_mcp_ask_returns_a_conversation_to_continue(server):
    live, _ = server

    async def session():
        async with httpx.AsyncClient(headers=bearer("ann")) as http:
            async with Client(streamable_http_client(f"{live.url}/mcp", http_client=http)) as client:
                first = json.loads(
                    (await client.call_tool("ask", {"question": "When was the lamp cleaned?"}))
                    .content[0]
                    .text
                )
                follow = await client.call_tool(
                    "ask", {"question": "and who cleaned it?", "conversation_id": first["conversation_id"]}
                )
                assert json.loads(follow.content[0].text)["turn"] == 2
                lost = await client.call_tool("ask", {"question": "x", "conversation_id": "nope"})
                assert lost.is_error and "no conversation" in lost.content[0].text

    anyio.run(session, backend="asyncio")


def test_spyglass_chat_in_a_real_terminal(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    data = tmp_path / "data"
    spyglass(data, "index", str(write_shapes(tmp_path / "files", 6, seed=4, note=NOTE)))
    env = env_for(data)
    session = f"spyglass-chat-{time.monotonic_ns()}"
    command = " ".join(
        f"{key}={json.dumps(value)}" for key, value in env.items() if key.startswith(("SPYGLASS", "HF_"))
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", f"env {command} {EXE} chat"],
        check=True,
        env=env,
    )

    def screen() -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-S", "-200", "-t", session], capture_output=True, text=True
        ).stdout

    def wait_for(text: str, count: int = 1) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if screen().count(text) >= count:
                return screen()
            time.sleep(0.2)
        raise AssertionError(f"{text!r} did not appear:\n{screen()}")

    def say(line: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", session, line, "Enter"], check=True)

    try:
        wait_for("/new starts over")
        say("When was the lighthouse lamp cleaned?")
        shown = wait_for("notes.md", 1)
        assert "Tuesday" in shown
        say("/sources")
        wait_for("passage from notes.md", 2)
        say("/new")
        wait_for("(a new conversation)")
        say("/sources")
        wait_for("(nothing cited yet)")
        say("/quit")
        deadline = time.monotonic() + 30
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, screen()
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
