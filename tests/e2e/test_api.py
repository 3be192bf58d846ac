"""The HTTP API over the real FastAPI app: every endpoint, the error statuses, auth, jobs."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from conftest import write_shapes
from fastapi.testclient import TestClient
from PIL import Image
from support.live_server import wait

from spyglass.api import create_app
from spyglass.encoders.clip import shapes
from spyglass.engine import Engine
from spyglass.settings import Settings


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("allowed")
    write_shapes(root / "shapes", 24, seed=41)
    (root / "notes.md").write_text("# Circles\n\nA red circle has no corners.\n")
    return root


def make_client(tmp_path_factory, shapes_encoder, roots, **settings) -> TestClient:
    config = Settings(
        data_dir=tmp_path_factory.mktemp("api-data"), allowed_roots=[roots], max_upload_mb=1, **settings
    )
    return TestClient(create_app(Engine(config, encoder=shapes_encoder)))


@pytest.fixture(scope="module")
def client(tmp_path_factory, shapes_encoder, roots):
    with make_client(tmp_path_factory, shapes_encoder, roots) as opened:
        job = opened.post("/v1/sources", json={"path": str(roots)}).json()
        wait(opened, job["job_id"])
        yield opened


def test_health_ready_stats_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json() == {"ready": True}
    stats = client.get("/v1/stats").json()
    assert (
        stats["documents"] == 25
        and stats["indexed_vectors"] > 24
        and stats["model_id"].startswith("builtin:shapes")
    )
    client.post("/v1/search", json={"text": "a red circle"})
    metrics = client.get("/metrics").text
    assert 'spyglass_request_seconds_count{method="POST",route="/v1/search",status="200"}' in metrics
    ingested = next(
        line for line in metrics.splitlines() if line.startswith("spyglass_ingested_items_total ")
    )
    assert float(ingested.split()[1]) >= 25  # the 24 shapes and the note's passage and chunk
    assert "spyglass_index_vectors" in metrics


def test_search_json_and_pagination(client):
    body = client.post(
        "/v1/search", json={"text": "a red circle", "k": 3, "filters": {"modality": "image"}}
    ).json()
    assert [Path(r["path"]).name.startswith("red-circle") for r in body["results"]] == [True]
    first = body["results"][0]
    assert first["thumbnail_url"] == f"/v1/items/{first['item_id']}/thumbnail"
    page = client.post(
        "/v1/search", json={"text": "a red circle", "k": 2, "offset": 1, "relevance_floor": False}
    ).json()
    assert page["offset"] == 1 and len(page["results"]) == 2
    similar = client.post("/v1/search", json={"item_id": first["item_id"], "k": 2}).json()
    assert first["item_id"] not in [r["item_id"] for r in similar["results"]]
    # The floor is a 95th percentile of nonsense scores, so one nonsense query in twenty may
    # clear it on a given collection; most must not, and those come back empty with the reason.
    nonsense = [
        client.post("/v1/search", json={"text": q}).json()
        for q in ("zorblax quimfet", "vrrk tlonp", "glibber snoot wazzle", "plonk frimbat")
    ]
    refused = [body for body in nonsense if body["no_match"]]
    assert len(refused) >= 3 and all(body["results"] == [] and body["message"] for body in refused)


def test_search_by_uploaded_image(client):
    probe = png(shapes.generate(30, seed=5)[1].image)  # an unseen red square
    body = client.post(
        "/v1/search/image", files={"image": ("probe.png", probe, "image/png")}, data={"k": "2"}
    ).json()
    assert Path(body["results"][0]["path"]).name.startswith("red-square")
    with_text = client.post(
        "/v1/search/image",
        files={"image": ("probe.png", probe, "image/png")},
        data={"k": "1", "text": "a blue square", "filters": '{"modality": "image"}'},
    )
    assert with_text.status_code == 200


def test_items_thumbnail_and_content(client):
    first = client.post(
        "/v1/search", json={"text": "a red circle", "k": 1, "filters": {"modality": "image"}}
    ).json()["results"][0]
    item = client.get(f"/v1/items/{first['item_id']}").json()
    assert item["kind"] == "image" and item["metadata"]["width"] == "64" and item["content_url"]
    thumb = client.get(item["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(thumb.content)).size == (
        64,
        64,
    )
    content = client.get(item["content_url"])
    assert Image.open(io.BytesIO(content.content)).size == (64, 64)
    chunk = client.post(
        "/v1/search", json={"text": "corners", "filters": {"modality": "text"}, "relevance_floor": False}
    ).json()
    chunk_id = chunk["results"][0]["item_id"]
    assert client.get(f"/v1/items/{chunk_id}").json()["text"].startswith("A red circle")
    assert client.get(f"/v1/items/{chunk_id}/content").status_code == 404


def test_ask_json_and_streamed(client):
    answer = client.post("/v1/ask", json={"question": "which picture shows a red circle?"}).json()
    assert answer["supported"] and any("red-circle" in c["path"] for c in answer["citations"])
    with client.stream(
        "POST", "/v1/ask?stream=true", json={"question": "which picture shows a red circle?"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block.split("\n")[0] for block in text.strip().split("\n\n")]
    assert events[0] == "event: token" and events[-1] == "event: answer"


def test_upload_job_search_delete(client):
    sample = shapes.generate(40, seed=77)[37]  # an orange triangle
    files = [
        ("files", ("../../escape.png", png(sample.image), "image/png")),
        ("files", ("note.txt", b"orange notes", "text/plain")),
    ]
    job = client.post("/v1/documents", files=files)
    assert job.status_code == 202 and job.json()["files"] == ["escape.png", "note.txt"]
    state = wait(client, job.json()["job_id"])
    assert state["state"] == "done" and state["report"]["added"] == 2
    hits = client.post(
        "/v1/search/image", files={"image": ("q.png", png(sample.image), "image/png")}, data={"k": "1"}
    ).json()
    top = hits["results"][0]
    assert top["path"].endswith("escape.png") and "/uploads/" in top["path"] and top["dense"] > 0.99
    assert client.delete(f"/v1/documents/{top['document_id']}").json()["deleted"] == top["document_id"]
    assert not Path(top["path"]).exists()
    again = client.post(
        "/v1/search/image", files={"image": ("q.png", png(sample.image), "image/png")}, data={"k": "1"}
    ).json()
    assert again["results"][0]["item_id"] != top["item_id"]
    assert client.get(f"/v1/items/{top['item_id']}").status_code == 404
    assert client.delete(f"/v1/documents/{top['document_id']}").status_code == 404


def test_search_stays_responsive_during_an_ingest_job(client, tmp_path):
    folder = write_shapes(tmp_path / "bulk", 80, seed=123)
    for picture in folder.glob("*.png"):  # larger files make the job last long enough to overlap
        Image.open(picture).resize((768, 768)).save(picture)
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in sorted(folder.glob("*.png"))]
    job = client.post("/v1/documents", files=files).json()
    answered_while_running = 0
    while client.get(job["status_url"]).json()["state"] in ("queued", "running"):
        started = time.monotonic()
        response = client.post("/v1/search", json={"text": "a red circle", "k": 3})
        assert response.status_code == 200 and time.monotonic() - started < 10
        if client.get(job["status_url"]).json()["state"] == "running":
            answered_while_running += 1
    assert answered_while_running >= 1
    assert wait(client, job["job_id"])["report"]["added"] == 80


def test_error_statuses_share_one_shape(client):
    checks = [
        (
            client.post(
                "/v1/documents",
                files={"files": ("big.png", b"\x89PNG\r\n\x1a\n" + b"0" * (2 << 20), "image/png")},
            ),
            413,
        ),
        (
            client.post(
                "/v1/documents", files={"files": ("x.bin", b"\x00\x01\x02\x03", "application/octet-stream")}
            ),
            415,
        ),
        (client.post("/v1/search/image", files={"image": ("x.txt", b"just text", "text/plain")}), 415),
        (
            client.post(
                "/v1/search/image", files={"image": ("bad.jpg", b"\xff\xd8\xff\xe0broken", "image/jpeg")}
            ),
            422,
        ),
        (client.post("/v1/search", json={"k": 0}), 422),
        (client.post("/v1/search", json={}), 422),  # no text, no item
        (client.post("/v1/search", json={"text": "x", "filters": {"modality": "sound"}}), 422),
        (client.get("/v1/items/99999999"), 404),
        (client.get("/v1/jobs/nope"), 404),
        (client.post("/v1/ask", json={"question": ""}), 422),
    ]
    for response, status in checks:
        assert response.status_code == status, (response.request.url, response.text)
        error = response.json()["error"]
        assert error["status"] == status and isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize("escape", ["/etc", "{root}/../", "{root}/shapes/../../", "{root}/link"])
def test_sources_outside_allowed_roots_are_rejected(client, roots, escape):
    link = roots / "link"
    if not link.exists():
        link.symlink_to("/usr")
    response = client.post("/v1/sources", json={"path": escape.format(root=roots)})
    assert response.status_code == 403 and "outside the allowed roots" in response.json()["error"]["message"]


def test_auth_read_and_admin_keys(tmp_path_factory, shapes_encoder, roots):
    with make_client(
        tmp_path_factory, shapes_encoder, roots, api_keys=["reader-key"], admin_keys=["admin-key"]
    ) as secured:
        assert secured.get("/healthz").status_code == 200  # probes stay open
        assert secured.post("/v1/search", json={"text": "a"}).status_code == 401
        assert (
            secured.post(
                "/v1/search", json={"text": "a"}, headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        reader = {"Authorization": "Bearer reader-key"}
        assert secured.post("/v1/search", json={"text": "a red circle"}, headers=reader).status_code == 200
        assert secured.get("/v1/stats?key=reader-key").status_code == 200  # query key, for <img> tags
        forbidden = secured.post("/v1/sources", json={"path": str(roots)}, headers=reader)
        assert (
            forbidden.status_code == 403
            and forbidden.json()["error"]["message"] == "this API key may only read"
        )
        admin = {"Authorization": "Bearer admin-key"}
        job = secured.post("/v1/sources", json={"path": str(roots / "shapes")}, headers=admin)
        assert job.status_code == 202
        assert wait(secured, job.json()["job_id"], admin)["state"] == "done"
        assert secured.get("/metrics").status_code == 401  # behind the read key once keys exist
        assert "spyglass_request_seconds" in secured.get("/metrics", headers=reader).text
    with make_client(
        tmp_path_factory, shapes_encoder, roots, api_keys=["reader-key"], api={"public_metrics": True}
    ) as scraped:
        assert scraped.get("/metrics").status_code == 200 and scraped.get("/v1/stats").status_code == 401


def test_web_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>Spyglass</title>" in page.text
    schema = client.get("/openapi.json").json()
    for path in (
        "/v1/search",
        "/v1/search/image",
        "/v1/ask",
        "/v1/documents",
        "/v1/jobs/{job_id}",
        "/v1/sources",
        "/v1/documents/{document_id}",
        "/v1/items/{item_id}",
        "/v1/items/{item_id}/thumbnail",
        "/v1/items/{item_id}/content",
        "/v1/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 200


def test_a_symlinked_file_inside_an_allowed_root_cannot_expose_a_file_outside(
    tmp_path_factory, shapes_encoder, tmp_path
):
    """Regression: the walker followed a file symlink out of the allowed root and search returned the secret."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault combination is quartzwombat seven.")
    (allowed / "secret.txt").symlink_to(outside / "secret.txt")
    (allowed / "notes.md").write_text("# Notes\n\nAn allowed note about quartzwombat habitats.")
    (outside / "inner.txt").write_text("quartzwombat inner")
    (allowed / "inside-link.txt").symlink_to(allowed / "notes.md")  # a link that stays inside is fine
    with make_client(tmp_path_factory, shapes_encoder, allowed) as opened:
        state = wait(opened, opened.post("/v1/sources", json={"path": str(allowed)}).json()["job_id"])
        assert state["state"] == "done"
        errors = dict(map(tuple, state["report"]["errors"]))
        assert "outside the allowed folders" in errors[str(allowed / "secret.txt")]
        body = opened.post(
            "/v1/search", json={"text": "quartzwombat", "relevance_floor": False, "k": 20}
        ).json()
        paths = {Path(r["path"]).name for r in body["results"]}
        assert "secret.txt" not in paths and paths & {"notes.md", "inside-link.txt"}
        assert all("vault" not in (r["text"] or "") for r in body["results"])


def test_one_bad_file_in_a_multi_file_upload_is_reported_and_the_rest_accepted(client):
    """Regression: a single unsupported file made the whole upload a 415 and the good files were lost."""
    sample = shapes.generate(1, seed=77)[0]
    files = [
        ("files", ("good.png", png(sample.image), "image/png")),
        ("files", ("blob.bin", b"\x00\x01\x02\x03binary", "application/octet-stream")),
        ("files", ("minutes.txt", b"meeting minutes about quokkas", "text/plain")),
    ]
    response = client.post("/v1/documents", files=files)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["files"] == ["good.png", "minutes.txt"]
    assert [(r["file"], r["status"]) for r in body["rejected"]] == [("blob.bin", 415)]
    assert "is not" in body["rejected"][0]["reason"]
    state = wait(client, body["job_id"])
    assert state["state"] == "done" and state["report"]["added"] == 2
    only_bad = client.post("/v1/documents", files=[files[1]])
    assert only_bad.status_code == 415  # nothing acceptable: the request itself is refused
