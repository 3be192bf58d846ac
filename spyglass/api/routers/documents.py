"""Uploads, server folders and deletions in a collection, ingested by its background jobs (write keys)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from spyglass.api.errors import documented, not_found
from spyglass.api.hosting import Served, writable
from spyglass.api.schemas import DocumentId, SourceBody
from spyglass.api.uploads import UPLOAD_BODY, UploadReceiver
from spyglass.indexer.walk import confined

router = APIRouter(tags=["documents"], responses=documented(400, 401, 403, 422))


@router.post(
    "/documents",
    status_code=202,
    summary="Upload files; they are indexed in the background",
    description="The body is read as it streams. A file of an unsupported type is listed under `rejected` "
    "with the reason (415) while the others are accepted; only when no file is acceptable is the request "
    "refused. A file over `max_upload_mb` refuses the whole request with 413 as soon as its bytes pass the "
    "limit: the rest of the body is not read, the connection is closed, and nothing of the request is kept.",
    responses=documented(413, 415),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload(request: Request, served: Served = Depends(writable)) -> dict:
    engine = served.engine
    folder = engine.settings.data_dir / "uploads" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    receiver = UploadReceiver(folder, engine.settings.api)
    try:
        await receiver.receive(request)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # not even the request's good files stay
        raise
    if not receiver.saved:
        folder.rmdir()
        raise receiver.refusal or HTTPException(422, "invalid files: the form holds no file")
    job = await run_in_threadpool(served.jobs.submit, "upload", str(folder))
    return {
        "job_id": job.id,
        "files": sorted(receiver.saved),
        "rejected": receiver.rejected,
        "status_url": f"{served.prefix}/jobs/{job.id}",
    }


@router.post(
    "/sources",
    status_code=202,
    summary="Index a server folder inside the collection's allowed roots",
    responses=documented(404),
)
async def add_source(body: SourceBody, served: Served = Depends(writable)) -> dict:
    path = allowed_path(body.path, served.engine.settings.api.allowed_roots)
    options = {"include": list(body.include), "exclude": list(body.exclude)}
    job = await run_in_threadpool(served.jobs.submit, "source", str(path), options)
    return {"job_id": job.id, "path": str(path), "status_url": f"{served.prefix}/jobs/{job.id}"}


def _job(served: Served, job_id: str):
    job = served.jobs.get(job_id)
    if job is None:
        raise not_found(f"job {job_id}")
    return job


@router.get("/jobs/{job_id}", summary="Progress and result of an ingest job", responses=documented(404))
async def job_status(job_id: str, served: Served = Depends(writable)) -> dict:
    return _job(served, job_id).public()


@router.delete(
    "/jobs/{job_id}",
    summary="Cancel a job",
    description="A queued job is `cancelled` at once. A running one is `cancelling` until its next "
    "write, then `cancelled`: what it committed before stays (indexing it again carries on from "
    "there). A job that has ended gets 409.",
    responses=documented(404, 409),
)
async def cancel_job(job_id: str, served: Served = Depends(writable)) -> dict:
    job = _job(served, job_id)
    if not await run_in_threadpool(served.jobs.cancel, job):
        raise HTTPException(
            409, f"job {job_id} is {job.state}; only a queued or running job can be cancelled"
        )
    return job.public()


@router.delete(
    "/documents/{document_id}",
    summary="Remove a document and its items from the index",
    responses=documented(404),
)
async def delete_document(document_id: DocumentId, served: Served = Depends(writable)) -> dict:
    engine = served.engine
    document = engine.store.document(document_id)
    if document is None:
        raise not_found(f"document {document_id}")

    await run_in_threadpool(engine.store.delete_document, document_id)
    uploads = (engine.settings.data_dir / "uploads").resolve()
    path = Path(document["path"]).resolve()
    if path.is_relative_to(uploads) and path.is_file():  # our own copy of an upload goes too
        path.unlink()
        if not any(path.parent.iterdir()):
            shutil.rmtree(path.parent, ignore_errors=True)
    return {"deleted": document_id, "path": document["path"]}


def allowed_path(raw: str, roots: list[Path]) -> Path:
    """The real path of ``raw`` if it lies inside one of ``roots`` (symlinks and ``..`` resolved), else 403."""
    try:
        return confined(raw, roots)
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None
    except FileNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
