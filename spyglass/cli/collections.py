"""``spyglass collections``: list, create and delete the named collections of a data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from spyglass.cli.common import console, global_settings_of

app = typer.Typer(help="Collections: private collections side by side in one data directory.")


@app.callback(invoke_without_command=True)
def collections(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the collections: the default one (the data directory itself), then the named ones."""
    if ctx.invoked_subcommand is not None:
        return
    from spyglass.runtime.collections import Collections

    hosted = Collections(global_settings_of(ctx))
    rows = []
    try:
        for name in hosted.names():
            engine = hosted.engine(name)
            status = engine.status()
            rows.append(
                {
                    "name": name,
                    "items": status["items"],
                    "model": engine.model_spec(),
                    "folder": status["data_dir"],
                }
            )
    finally:
        hosted.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("collection", "items", "model", "folder")
    for row in rows:
        table.add_row(row["name"], str(row["items"]), escape(row["model"]), escape(row["folder"]))
    console.print(table)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, '-' and '_'.")],
    model: Annotated[str | None, typer.Option(help="Its CLIP model spec (default: the global one).")] = None,
    text_model: Annotated[
        str | None, typer.Option(help="Its sentence-embedding model; '' turns its text space off.")
    ] = None,
    ocr: Annotated[bool | None, typer.Option("--ocr/--no-ocr", help="Read text in its pictures.")] = None,
    labels: Annotated[str | None, typer.Option(help="Its label vocabulary, comma-separated.")] = None,
    allowed_root: Annotated[
        list[Path] | None, typer.Option(help="A server folder it may index over HTTP and MCP (repeatable).")
    ] = None,
) -> None:
    """Create a named collection; index into it with `spyglass --collection NAME index DIR`."""
    from spyglass.runtime.collections import CollectionConfig
    from spyglass.runtime.collections import create as make

    own = CollectionConfig(
        model=model,
        text_model=text_model,
        ocr=ocr,
        labels=None if labels is None else [label.strip() for label in labels.split(",") if label.strip()],
        allowed_roots=[root.expanduser().absolute() for root in allowed_root or []],
    )
    path = make(global_settings_of(ctx), name, own)
    console.print(f"created {escape(name)} in {escape(str(path))}", highlight=False)


@app.command()
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The collection to delete.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask first.")] = False,
) -> None:
    """Delete a named collection: its catalog, indexes, uploads and model versions."""
    from spyglass import discovery
    from spyglass.errors import SpyglassError
    from spyglass.runtime.collections import delete as remove

    settings = global_settings_of(ctx)
    if (server := discovery.find(settings.data_dir)) is not None:
        raise SpyglassError(
            f"spyglass serve (pid {server.pid}) serves this data directory; delete the collection through it "
            "(DELETE /v1/collections/NAME) or stop it first."
        )
    if not yes:
        typer.confirm(f"Delete collection {name} and everything indexed in it?", abort=True)
    remove(settings, name)
    console.print(f"deleted {escape(name)}", highlight=False)
