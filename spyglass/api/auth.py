"""Bearer API keys: read keys may search and ask; admin keys may also upload, index and delete.

With no keys configured every request is allowed, and ``spyglass serve`` then binds
to 127.0.0.1 only unless told otherwise.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request
from pydantic import SecretStr


def _presented(request: Request) -> str | None:
    """The bearer token, or a ``key`` query parameter (an <img> tag cannot send headers)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("key") or None


def _matches(token: str, keys: list[SecretStr]) -> bool:
    return any(hmac.compare_digest(token.encode(), key.get_secret_value().encode()) for key in keys)


def role(request: Request) -> str:
    """'admin', 'read', or 401."""
    settings = request.app.state.engine.settings.api
    if not settings.api_keys and not settings.admin_keys:
        return "admin"
    token = _presented(request)
    if token is None:
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    if _matches(token, settings.admin_keys):
        return "admin"
    local = request.app.state.local_token  # the read token `serve` gave the shells of this machine
    if _matches(token, settings.api_keys) or (local and hmac.compare_digest(token.encode(), local.encode())):
        return "read"
    raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})


def reader(who: str = Depends(role)) -> str:
    return who


def admin(who: str = Depends(role)) -> str:
    if who != "admin":
        raise HTTPException(403, "this API key may only read")
    return who
