"""Commands that run Spyglass for others: ``serve`` (HTTP and the web page), ``mcp``, ``demo``, ``status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from spyglass.cli import models
from spyglass.cli.common import console, engine_of, global_settings_of, settings_of


def _serve(engine, host: str, port: int, insecure: bool) -> None:
    from spyglass.api import serve as run_server
    from spyglass.api.auth import configured

    if host not in ("127.0.0.1", "localhost", "::1") and not configured(engine.settings.api) and not insecure:
        raise typer.BadParameter(
            f"refusing to listen on {host} without API keys; set SPYGLASS_API_KEYS/SPYGLASS_ADMIN_KEYS or pass --insecure",
            param_hint="--host",
        )
    console.print(f"Spyglass on http://{host}:{port}/  (API docs at /docs)")
    run_server(engine, host, port)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8077).")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a public bind without API keys.")
    ] = False,
) -> None:
    """Run the HTTP API and the web page for every collection; `spyglass search` in a shell then asks this server."""
    from spyglass.engine import Engine

    engine = Engine(global_settings_of(ctx))  # the default collection; the named ones open beside it
    _serve(engine, host or engine.settings.api.host, port or engine.settings.api.port, insecure)


def mcp(ctx: typer.Context) -> None:
    """Serve the collection to an AI assistant over MCP (stdio): search, find_similar, ask, get_item, index_folder.

    Configure it in the assistant as the command `spyglass mcp`; it runs as you, so it reads
    your files. Nothing but MCP messages goes to stdout (logs go to stderr).
    """
    from spyglass.api.mcp import build_server
    from spyglass.runtime.collections import Collections

    collections = Collections(global_settings_of(ctx))
    try:
        build_server(collections, default=ctx.obj["collection"]).run("stdio")
    finally:
        collections.close()


def demo(
    ctx: typer.Context,
    serve_after: Annotated[
        bool, typer.Option("--serve", help="Then serve the web page over the sample.")
    ] = False,
) -> None:
    """Index a small built-in sample and run a few searches and an ask (offline: with builtin:shapes)."""
    from spyglass.demo import run_demo

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    engine = run_demo(settings_of(ctx), say)
    if serve_after:
        _serve(engine, engine.settings.api.host, engine.settings.api.port, insecure=False)
    else:
        engine.close()


def compact(ctx: typer.Context) -> None:
    """Clean the catalog up fully: deleted text merged out of the word indexes, free pages dropped."""
    from spyglass.store import Store

    before, after = Store.compact(settings_of(ctx).data_dir)
    console.print(f"catalog compacted: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


def backup(
    ctx: typer.Context,
    destination: Annotated[Path, typer.Argument(help="A new or empty folder.")],
) -> None:
    """Copy the collection (catalog, uploads, tuned models) while it is in use, e.g. by a running serve."""
    from spyglass.runtime.backup import backup as copy

    manifest = copy(settings_of(ctx).data_dir, destination, lambda step: console.print(step, highlight=False))
    console.print(
        f"backed up to {escape(str(destination))}: {manifest['bytes'] / 1e6:.1f} MB in {manifest['seconds']} s"
    )


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A folder written by spyglass backup.")],
) -> None:
    """Replace the collection with a backup, after checking it (integrity, vectors against the catalog)."""
    from spyglass.runtime.backup import restore as put_back

    data_dir = settings_of(ctx).data_dir
    put_back(source, data_dir, served_from=global_settings_of(ctx).data_dir)
    console.print(
        f"restored {escape(str(source))} into {escape(str(data_dir))}; indexes rebuild on first use"
    )


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Counts, model, index type, whether a re-index is needed, and files that could not be indexed."""
    with engine_of(ctx) as engine:
        info = engine.status()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    console.print(f"data      {escape(info['data_dir'])}")
    dim = f" (dim {info['dim']})" if info["dim"] else ""
    console.print(f"model     {escape(str(info['model_id']))}{dim}")
    console.print(f"index     {info['index']}, {info['indexed_vectors']} vectors")
    console.print(
        f"catalog   {info['sources']} sources, {info['documents']} files, {info['items']} items, {info['errors']} errors"
    )
    models.print_versions(info["models"])
    for name, stage in info["stages"].items():
        console.print(
            f"stage     {escape(name)} v{stage['version']}: {stage['pending']} items waiting", highlight=False
        )
    if info["reindex_needed"]:
        console.print(
            f"[yellow]{info['items_needing_reindex']} items were embedded by another model; re-index to search them[/yellow]"
        )
    for error in info["errors_list"][:20]:
        console.print(
            f"  [yellow]error[/yellow] {escape(error['path'])}: {escape(error['error'] or '')}",
            highlight=False,
        )
