"""The request-size limit, answered in the one error shape and without reading the rest of the body.

Starlette's own limit answers in plain text (``Content Too Large``), and for a declared length
over the limit it replaces whatever the app answered; this one speaks ``{"error": …}`` like
every other failure and closes the connection, so a refused body is never read to its end.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spyglass.api.errors import error


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit: the app's handlers turn it into the 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"request body larger than {limit / 2**20:g} MB", headers={"Connection": "close"}
        )


class BodyLimit:
    """Refuses a declared ``Content-Length`` over ``limit`` before the app runs, and a streamed
    (chunked) body as soon as it passes ``limit``."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            refusal = BodyTooLarge(self.limit)
            await error(413, refusal.detail, refusal.headers)(scope, receive, send)
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except* BodyTooLarge:  # not answered by a handler: a middleware's task group wrapped it
            if started:
                raise
            refusal = BodyTooLarge(self.limit)
            await error(413, refusal.detail, refusal.headers)(scope, receive, send)
