"""How a shell finds a running ``spyglass serve``: a small file in the data directory.

``serve`` writes ``serve.json`` (its address, process id and a random token) once its
port is listening, and removes it when it stops. The token is a read key for this server
only: whoever can read the file can read the catalog next to it anyway, so it grants
nothing new, and it lets the CLI use a server that has API keys configured. A file
left by a killed server names a dead process and is ignored. Stdlib only: the thin
client reads it before importing anything heavy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

FILE = "serve.json"


class Server(NamedTuple):  # not a dataclass: importing dataclasses costs the thin client 13 ms
    url: str  # http://HOST:PORT, with a wildcard bind replaced by loopback
    pid: int
    token: str
    model: str  # the model spec it serves


def describe(host: str, port: int, model: str) -> Server:
    """What a server listening on ``host:port`` will announce, with a fresh read token."""
    import secrets

    connect = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    bracketed = f"[{connect}]" if ":" in connect else connect
    return Server(f"http://{bracketed}:{port}", os.getpid(), secrets.token_urlsafe(24), model)


def publish(data_dir: Path, server: Server) -> None:
    """Announce ``server`` as the server of ``data_dir`` (call it once the port is listening)."""
    path = data_dir / FILE
    temporary = path.with_name(f".{FILE}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(server._asdict(), handle)
    os.replace(temporary, path)


def withdraw(data_dir: Path, server: Server) -> None:
    """Remove the file if it is still ours (a second server may have taken over the directory)."""
    if find(data_dir) == server:
        (data_dir / FILE).unlink(missing_ok=True)


def find(data_dir: Path) -> Server | None:
    """The live server announced in ``data_dir``, or None."""
    try:
        server = Server(**json.loads((data_dir / FILE).read_text()))
        os.kill(server.pid, 0)
    except (OSError, ValueError, TypeError):  # no file, unreadable, malformed, or the process is gone
        return None
    return server
