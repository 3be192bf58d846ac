"""Upload limits hold while the body streams, over a real socket.

Regression: with a 50 MB limit a 1 GB streamed upload was received entirely (989 MB
written to /tmp) before the 413, every file of a multi-file upload was held in memory
at once, and a request's total had no limit.
"""

from __future__ import annotations

import select
import socket
import time

import pytest
from live_server import LiveServer

from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.settings import Settings

MB = 1 << 20


@pytest.fixture(scope="module")
def live(tmp_path_factory, shapes_encoder):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("limits"), api={"max_upload_mb": 1, "max_request_mb": 2}
    )
    with LiveServer(create_app(Engine(settings, encoder=shapes_encoder))) as server:
        yield server


def open_upload(live: LiveServer, headers: str) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", live.port), timeout=30)
    connection.sendall(
        f"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary=xyz\r\n{headers}\r\n".encode()
    )
    return connection


def status_of(connection: socket.socket) -> int:
    reply = b""
    while b"\r\n" not in reply and (chunk := connection.recv(4096)):
        reply += chunk
    return int(reply.split()[1])


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_sent(live):
    connection = open_upload(live, f"Content-Length: {1024 * MB}\r\n")
    started = time.monotonic()
    with connection:
        assert status_of(connection) == 413  # answered with not one byte of the gigabyte sent
    assert time.monotonic() - started < 10


def test_a_chunked_body_is_cut_off_at_the_limit(live):
    """Without a length the bytes are counted as they come: the 413 arrives while the body is still going."""
    part = b"--xyz\r\nContent-Disposition: form-data; name=files; filename=big.txt\r\n\r\n"
    sent = 0
    with open_upload(live, "Transfer-Encoding: chunked\r\n") as connection:
        connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        block = b"x" * (256 << 10)
        while sent < 64 * MB and not select.select([connection], [], [], 0.01)[0]:
            connection.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
        assert status_of(connection) == 413
    assert sent < 32 * MB  # answered near the 2 MB limit (plus socket buffers), not after 64 MB


def test_a_file_over_the_file_limit_leaves_nothing_behind(live, tmp_path):
    import httpx

    files = [
        ("files", ("big.txt", b"y" * (MB + 10), "text/plain")),
        ("files", ("small.txt", b"a small note about herons", "text/plain")),
    ]
    response = httpx.post(f"{live.url}/v1/documents", files=files, timeout=60)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["files"] == ["small.txt"] and body["rejected"][0]["status"] == 413
    uploads = live.server.config.app.state.engine.settings.data_dir / "uploads"
    assert [p.name for p in uploads.rglob("*") if p.is_file()] == ["small.txt"]
