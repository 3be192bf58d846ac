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
from support.live_server import LiveServer
from uvicorn.protocols.http.h11_impl import H11Protocol

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


def uploaded_files(live: LiveServer) -> list[str]:
    uploads = live.server.config.app.state.hosted.settings.data_dir / "uploads"
    return sorted(p.name for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []


def test_a_file_over_the_file_limit_refuses_the_request_and_leaves_nothing_behind(live):
    import httpx

    files = [
        ("files", ("small.txt", b"a small note about herons", "text/plain")),
        ("files", ("big.txt", b"y" * (MB + 10), "text/plain")),
    ]
    before = uploaded_files(live)
    response = httpx.post(f"{live.url}/v1/documents", files=files, timeout=60)
    assert response.status_code == 413, response.text
    assert response.json() == {"error": {"status": 413, "message": "upload larger than 1 MB"}}
    assert uploaded_files(live) == before  # not even the good file that came first


def test_a_file_of_the_wrong_type_is_listed_and_the_others_accepted(live):
    import httpx

    files = [
        ("files", ("noise.bin", bytes(range(256)) * 64, "application/octet-stream")),
        ("files", ("heron.txt", b"a small note about herons", "text/plain")),
    ]
    response = httpx.post(f"{live.url}/v1/documents", files=files, timeout=60)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["files"] == ["heron.txt"]
    assert [(r["file"], r["status"]) for r in body["rejected"]] == [("noise.bin", 415)]
    assert "heron.txt" in uploaded_files(live) and "noise.bin" not in uploaded_files(live)


def test_a_request_of_only_refused_files_is_a_json_415(live):
    import httpx

    files = [("files", ("noise.bin", bytes(range(256)) * 64, "application/octet-stream"))]
    response = httpx.post(f"{live.url}/v1/documents", files=files, timeout=60)
    assert response.status_code == 415
    assert response.json()["error"]["status"] == 415


def test_a_body_that_is_not_multipart_is_a_json_400(live):
    import httpx

    response = httpx.post(
        f"{live.url}/v1/documents", content=b"--xyz\r\nbroken", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400 and response.json()["error"]["status"] == 400


def test_a_chunked_body_over_the_request_limit_gets_the_json_shape(live):
    part = b"--xyz\r\nContent-Disposition: form-data; name=note\r\n\r\n"  # a field: no file limit
    with open_upload(live, "Transfer-Encoding: chunked\r\n") as connection:
        block = b"x" * (256 << 10)
        try:
            connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            for _ in range(64):
                connection.sendall(b"%x\r\n%s\r\n" % (len(block), block))
        except OSError:
            pass  # refused and closed while we were still sending
        reply = read_reply(connection)
    if reply:  # else reset before the reply could be read, which a client may see
        assert reply.split()[1] == b"413"
        assert reply.endswith(b'{"error":{"status":413,"message":"request body larger than 2 MB"}}')


def read_reply(connection: socket.socket) -> bytes:
    reply = b""
    try:
        while chunk := connection.recv(65536):
            reply += chunk
    except OSError:
        pass
    return reply


class CountingProtocol(H11Protocol):
    """uvicorn's HTTP protocol, counting every byte the server takes off its sockets."""

    received = 0

    def data_received(self, data: bytes) -> None:
        CountingProtocol.received += len(data)
        super().data_received(data)


@pytest.fixture(scope="module")
def five_mb(tmp_path_factory, shapes_encoder):
    """The README's example: 5 MB per file, the request limit at its 1 GB default."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("five"), api={"max_upload_mb": 5})
    with LiveServer(create_app(Engine(settings, encoder=shapes_encoder)), http=CountingProtocol) as server:
        yield server


def stream_part(live: LiveServer, prefix: bytes, size: int, chunked: bool) -> tuple[int, int, bytes]:
    """Send a multipart body whose last part has ``size`` bytes, as fast as the server takes it.

    Returns (bytes the server read, bytes sent, the reply or b"" if the connection was reset first).
    """
    head = prefix + b"--xyz\r\nContent-Disposition: form-data; name=files; filename=big.txt\r\n\r\n"
    length = len(head) + size + len(b"\r\n--xyz--\r\n")
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {length}\r\n"
    block = b"z" * MB
    before, sent = CountingProtocol.received, 0
    with open_upload(live, framing) as connection:
        connection.settimeout(3)  # the server stops reading: the socket buffers fill, sending stalls
        try:
            for data in [head] + [block] * (size // len(block)):
                connection.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
        except OSError:
            pass
        connection.settimeout(10)
        reply = read_reply(connection)
    return CountingProtocol.received - before, sent, reply


def good_part(name: str) -> bytes:
    return (
        b"--xyz\r\nContent-Disposition: form-data; name=files; filename=%s\r\n\r\n"
        b"Herons wait at the edge of the water.\r\n" % name.encode()
    )


@pytest.mark.parametrize(
    "prefix, chunked",
    [(b"", False), (good_part("good.txt"), False), (b"", True)],
    ids=["one-big-part", "big-part-after-a-good-one", "chunked"],
)
def test_a_300_mb_file_is_refused_within_a_megabyte_or_so_of_a_5_mb_limit(five_mb, prefix, chunked):
    before = uploaded_files(five_mb)
    read, sent, reply = stream_part(five_mb, prefix, 300 * MB, chunked)
    assert 5 * MB < read < 7 * MB, f"the server read {read / MB:.1f} MB of a 300 MB upload"
    assert sent < 100 * MB
    if reply:  # a client may instead see the connection reset before it reads the reply
        assert reply.split()[1] == b"413"
        assert b'{"error":{"status":413,"message":"upload larger than 5 MB"}}' in reply
        assert b"connection: close" in reply.lower()
    assert uploaded_files(five_mb) == before
