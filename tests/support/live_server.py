"""Run the real app under uvicorn on 127.0.0.1 in a background thread (a real socket, real HTTP)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


class LiveServer:
    def __init__(self, app, **config) -> None:
        """``config``: more uvicorn settings (``http=`` a protocol class, say)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **config)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait(client, job_id: str, headers: dict | None = None, prefix: str = "/v1") -> dict:
    """Poll a job until it has ended (done, failed, cancelled); ``client`` is a TestClient or an
    ``httpx.Client`` with a base URL."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"{prefix}/jobs/{job_id}", headers=headers).json()
        if state["state"] in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")
