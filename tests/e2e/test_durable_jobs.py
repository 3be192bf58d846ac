"""Jobs over HTTP: an accepted upload survives the server's death (its job is in the catalog and
resumed at start-up), and a running job can be cancelled without losing what it wrote.

Regression: ``POST /v1/documents`` answered 202 with a job id; after ``kill -9`` and a
restart, ``GET /v1/jobs/{id}`` was 404 and the file sat in ``uploads/`` never indexed
(jobs lived only in memory).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from conftest import write_shapes
from support.live_server import LiveServer, wait
from support.serve_process import start_server

from spyglass import discovery
from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.settings import Settings
from spyglass.store import Store


def wait_for(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_an_upload_accepted_before_a_crash_is_indexed_after_the_restart(tmp_path, shapes_encoder):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        url = discovery.find(data_dir).url
        note = ("notes.txt", b"the lighthouse keeper counted seventeen quokkas at dawn", "text/plain")
        accepted = httpx.post(f"{url}/v1/documents", files={"files": note}, timeout=60)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
    finally:
        server.send_signal(signal.SIGKILL)  # the first ingest is still loading the model
        server.wait(timeout=60)
    with Store(data_dir, shapes_encoder.model_id, shapes_encoder.dim) as store:
        recorded = store.job(job_id)
        assert recorded is not None and recorded["kind"] == "upload"
        assert recorded["state"] in ("queued", "running")  # accepted, not finished: what a crash leaves
        assert Path(recorded["target"], "notes.txt").is_file()

    server = start_server(data_dir)
    try:
        url = discovery.find(data_dir).url
        state = wait_for(url, job_id)
        assert state["state"] == "done" and state["report"]["added"] == 1, state
        found = httpx.post(f"{url}/v1/search", json={"text": "quokkas", "relevance_floor": False}, timeout=60)
        assert any(Path(r["path"]).name == "notes.txt" for r in found.json()["results"])
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)

    server = start_server(data_dir)  # a finished job stays readable after a restart, and runs no more
    try:
        again = httpx.get(f"{discovery.find(data_dir).url}/v1/jobs/{job_id}", timeout=30).json()
        assert again["state"] == "done" and again["report"]["added"] == 1
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def test_a_running_job_cancelled_over_http_keeps_what_it_wrote_and_a_rerun_carries_on(
    tmp_path, shapes_encoder
):
    folder = write_shapes(tmp_path / "many", 400, seed=6)
    settings = Settings(
        data_dir=tmp_path / "data", text={"model": ""}, api={"allowed_roots": [str(tmp_path)]}
    )
    with (
        Engine(settings, encoder=shapes_encoder) as engine,
        LiveServer(create_app(engine)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        job = client.post("/v1/sources", json={"path": str(folder)}).json()
        while (state := client.get(f"/v1/jobs/{job['job_id']}").json()["state"]) == "queued":
            time.sleep(0.02)
        assert state == "running"
        asked = client.delete(f"/v1/jobs/{job['job_id']}")
        assert asked.status_code == 200 and asked.json()["state"] == "cancelling", asked.text
        stopped = wait(client, job["job_id"])
        assert stopped["state"] == "cancelled" and "cancelled" in stopped["error"], stopped
        assert client.delete(f"/v1/jobs/{job['job_id']}").status_code == 409  # it has ended
        kept = engine.store.counts()["documents"]
        assert kept < 400  # it stopped before the end
        rerun = wait(client, client.post("/v1/sources", json={"path": str(folder)}).json()["job_id"])
        assert rerun["state"] == "done", rerun
        assert rerun["report"]["added"] == 400 - kept  # nothing it committed is read again
        assert engine.store.counts()["documents"] == 400
