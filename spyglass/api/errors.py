"""One JSON error shape for every failure: ``{"error": {"status": 404, "message": "..."}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from spyglass.errors import (
    ImageLoadError,
    ModelMismatchError,
    ReindexRequiredError,
    SpyglassError,
    WeightsUnavailableError,
)
from spyglass.generator.conversation import ConversationNotFound


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


_MEANING = {
    400: "the body is not well-formed JSON or form data",
    401: "missing or invalid API key",
    403: "this key may only read, the path is outside the allowed roots, or backups over HTTP are off",
    404: "no such collection (or one this key may not read), item, document, job, conversation or path",
    409: "the index belongs to another model or needs re-indexing, or the named backup exists",
    413: "the upload or the request body is too large",
    415: "the upload is not a supported kind of file",
    422: "invalid input",
    502: "the answer model (VLM backend) failed",
    503: "the collection's model weights are not on this machine",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all in the one error shape."""
    return {status: {"model": ErrorBody, "description": _MEANING[status]} for status in statuses}


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error(422, f"invalid {where or 'request'}: {first.get('msg', 'invalid input')}")

    @app.exception_handler(ImageLoadError)
    async def bad_image(_: Request, exc: ImageLoadError) -> JSONResponse:
        return error(415 if "not a recognised image" in str(exc) else 422, str(exc))

    @app.exception_handler(ReindexRequiredError)
    async def reindex(_: Request, exc: ReindexRequiredError) -> JSONResponse:
        return error(409, str(exc))

    @app.exception_handler(ModelMismatchError)
    async def mismatch(_: Request, exc: ModelMismatchError) -> JSONResponse:
        return error(409, str(exc))

    @app.exception_handler(WeightsUnavailableError)
    async def no_weights(_: Request, exc: WeightsUnavailableError) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(ConversationNotFound)
    async def no_conversation(_: Request, exc: ConversationNotFound) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(SpyglassError)
    async def spyglass_error(_: Request, exc: SpyglassError) -> JSONResponse:
        return error(422 if isinstance(exc, ValueError) else 502, str(exc))

    @app.exception_handler(ValueError)
    async def value_error(_: Request, exc: ValueError) -> JSONResponse:
        return error(422, str(exc))


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")
