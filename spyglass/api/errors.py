"""One JSON error shape for every failure: ``{"error": {"status": 404, "message": "..."}}``."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spyglass.errors import ImageLoadError, ModelMismatchError, ReindexRequiredError, SpyglassError


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

    @app.exception_handler(SpyglassError)
    async def spyglass_error(_: Request, exc: SpyglassError) -> JSONResponse:
        return error(422 if isinstance(exc, ValueError) else 502, str(exc))

    @app.exception_handler(ValueError)
    async def value_error(_: Request, exc: ValueError) -> JSONResponse:
        return error(422, str(exc))


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")
