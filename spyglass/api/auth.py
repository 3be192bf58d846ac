"""Bearer API keys and what each may do: a role over some collections (a ``Grant``).

- ``api.keys``: keys with a role (read, write, admin) over a list of collections, or all;
- ``api.api_keys`` / ``api.admin_keys`` (the first releases' settings): read / admin over all;
- the local token ``serve`` writes into ``serve.json``: read, for the default collection.

With no keys configured every request may do everything, and ``spyglass serve`` then binds to
127.0.0.1 only unless told otherwise. A key that may not read a collection is told it does not
exist (404, in ``api.hosting``): a 403 would tell it that the collection is there.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from pydantic import SecretStr

from spyglass.runtime.collections import DEFAULT
from spyglass.settings import ApiSettings

ROLES = ("read", "write", "admin")


@dataclass(frozen=True)
class Grant:
    """What one key may do."""

    role: str
    collections: frozenset[str] | None = None  # None: every collection
    owner: str = "local"  # whose conversations it sees: the key's fingerprint, never the key

    def reads(self, name: str) -> bool:
        return self.collections is None or name in self.collections

    def writes(self, name: str) -> bool:
        return self.role in ("write", "admin") and self.reads(name)

    @property
    def admin(self) -> bool:
        return self.role == "admin"


EVERYTHING = Grant("admin")


def configured(settings: ApiSettings) -> bool:
    """Whether any key is set (else every request is allowed)."""
    return bool(settings.api_keys or settings.admin_keys or settings.keys)


def _presented(request: Request) -> str | None:
    """The bearer token, or a ``key`` query parameter (an <img> tag cannot send headers)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("key") or None


def _same(token: str, key: SecretStr | str) -> bool:
    secret = key.get_secret_value() if isinstance(key, SecretStr) else key
    return hmac.compare_digest(token.encode(), secret.encode())


def fingerprint(token: str) -> str:
    """What names a key's conversations in the catalog: a hash, so the catalog never holds a key."""
    return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def grant_of(settings: ApiSettings, token: str | None, local_token: str | None) -> Grant | None:
    """The grant of ``token`` (None: no such key); with no keys configured, everything."""
    if not configured(settings):
        return EVERYTHING
    if token is None:
        return None
    owner = fingerprint(token)
    if any(_same(token, key) for key in settings.admin_keys):
        return Grant("admin", owner=owner)
    for scoped in settings.keys:
        if _same(token, scoped.key):
            everything = scoped.role == "admin" or "*" in scoped.collections
            return Grant(scoped.role, None if everything else frozenset(scoped.collections), owner)
    if any(_same(token, key) for key in settings.api_keys):
        return Grant("read", owner=owner)
    if local_token and _same(token, local_token):
        return Grant("read", frozenset([DEFAULT]), owner)
    return None


def grant(request: Request) -> Grant:
    """The caller's grant, or 401."""
    settings = request.app.state.hosted.settings.api
    token = _presented(request)
    found = grant_of(settings, token, request.app.state.local_token)
    if found is None:
        message = "missing bearer API key" if token is None else "invalid API key"
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})
    return found


def admin(who: Grant = Depends(grant)) -> Grant:
    """Only admin keys: creating and deleting collections, backups onto the server's disk."""
    if not who.admin:
        raise HTTPException(403, "this needs an admin API key")
    return who
