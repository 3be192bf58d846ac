"""The thin path of ``spyglass search``: ask the running server instead of loading anything.

Even with the exported text tower, an in-process search imports typer, pydantic,
SQLAlchemy, numpy and FAISS and opens the index (about a second). When ``spyglass
serve`` already holds all of that for the same data directory, this module, using
the standard library only, sends the query over loopback and prints the answer in
tens of milliseconds, in exactly the form the in-process search prints.

It takes only what it can be sure of: a text query with the options below, the data
directory from ``--data-dir``, ``SPYGLASS_DATA_DIR`` or the config file, the collection
from ``--collection`` or ``SPYGLASS_COLLECTION`` (a 404 falls back too), and the
server's model matching the one configured. Anything else (``--local``, an image
query, other global flags, ``--help``, a server that is gone or refuses) returns None
and the full CLI handles the command.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from spyglass import discovery
from spyglass.defaults import DEFAULT_MODEL, config_file, default_data_dir

TIMEOUT_S = 30.0
MAX_K = 200  # the API's limit; a larger page is computed in-process


class _Unsure(Exception):
    """The command is not one this path can answer exactly as the full CLI would."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # the full CLI reports usage errors in its own words
        raise _Unsure(message)


def search_through_server(argv: list[str]) -> int | None:
    """Run ``spyglass [--data-dir D] search ...`` through a running server; None when it cannot."""
    try:
        args = _parser().parse_args(argv)
        body = _request_body(args)
        server = discovery.find(_data_dir(args.data_dir))
        if server is None or server.model != _configured_model():
            return None
        response = _post(server, _route(args.collection), body)
    except (_Unsure, OSError, ValueError):
        return None
    if response is None:
        return None
    if args.json:
        print(json.dumps(response, indent=2))
    else:
        from spyglass.display import search_lines

        for line in search_lines(response):
            print(line)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument("--data-dir")
    parser.add_argument("--collection", default=os.environ.get("SPYGLASS_COLLECTION") or "default")
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", add_help=False, allow_abbrev=False)
    search.add_argument("text")
    search.add_argument("-k", "--k", type=int, default=10)
    search.add_argument("--offset", type=int, default=0)
    search.add_argument("-f", "--filter", action="append", default=[])
    search.add_argument("--diversity", type=float)
    search.add_argument("--dense-only", action="store_true")
    search.add_argument("--all", action="store_true")
    search.add_argument("--json", action="store_true")
    return parser


def _request_body(args: argparse.Namespace) -> dict:
    if not 1 <= args.k <= MAX_K or not 0 <= args.offset <= 10_000:
        raise _Unsure("k or offset outside the API's range")
    if args.diversity is not None and not 0 < args.diversity <= 1:
        raise _Unsure("diversity outside (0, 1]")
    return {
        "text": args.text,
        "k": args.k,
        "offset": args.offset,
        "filters": _filters(args.filter) if args.filter else {},
        "hybrid": not args.dense_only,
        "diversity": args.diversity,
        "relevance_floor": not args.all,
    }


def _filters(values: list[str]) -> dict:
    """``-f`` arguments as the API's filter object, parsed by the same code as the full CLI."""
    from dataclasses import asdict

    from spyglass.filters import parse_filter_args

    filters = asdict(parse_filter_args(values))
    return {**filters, "metadata": dict(filters["metadata"])}


def _route(collection: str) -> str:
    """The search route of ``collection``: the unprefixed one means the default collection."""
    if collection == "default":
        return "/v1/search"
    if not collection.replace("-", "").replace("_", "").isalnum():
        raise _Unsure("not a collection name")  # the full CLI says why
    return f"/v1/collections/{collection}/search"


def _post(server: discovery.Server, route: str, body: dict) -> dict | None:
    """POST the search over a plain socket; the JSON answer on 200, else None.

    Not ``http.client``: importing it (and ``ssl``, ``email`` with it) costs ~50 ms, a
    third of this path. One request, ``Connection: close``, and a response read to EOF
    is all loopback to our own server needs; anything unexpected falls back to None.
    """
    address = urlsplit(server.url)
    payload = json.dumps(body).encode()
    request = (
        f"POST {route} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT_S) as connection:
        connection.sendall(request + payload)
        response = b"".join(iter(lambda: connection.recv(1 << 16), b""))
    head, _, content = response.partition(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    if status_line.split(" ")[1:2] != ["200"] or any(
        h.lower().startswith("transfer-encoding:") for h in headers
    ):
        return None
    return json.loads(content)


def _data_dir(flag: str | None) -> Path:
    """The data directory exactly as settings resolve it: flag, environment, config file, default."""
    chosen = flag or os.environ.get("SPYGLASS_DATA_DIR") or _config().get("data_dir")
    return Path(chosen).expanduser() if chosen else default_data_dir()


def _configured_model() -> str:
    """The model spec settings would pick (the server must serve the same one)."""
    from_env = os.environ.get("SPYGLASS_ENCODER__MODEL") or os.environ.get("SPYGLASS_MODEL")
    if from_env:
        return from_env
    config = _config()
    encoder = config.get("encoder", {})
    chosen = encoder.get("model") if isinstance(encoder, dict) else None
    return chosen or config.get("model") or DEFAULT_MODEL


@functools.cache
def _config() -> dict:
    """The TOML config file, read once (the data directory and the model both come from it)."""
    path = config_file()
    if not path.is_file():
        return {}
    import tomllib

    with path.open("rb") as handle:
        return tomllib.load(handle)


def main() -> None:
    """Console entry point: the thin path when it applies, else the full CLI."""
    code = search_through_server(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from spyglass.cli import main as full_cli

    full_cli()
