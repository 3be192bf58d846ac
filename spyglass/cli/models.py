"""``spyglass models``: which models there are, and switching the collection between versions."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from spyglass.cli.common import console, engine_of, settings_of

app = typer.Typer(help="Models: list them, switch the collection to another, roll back, prune.")


@app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the models (CLIP, the text space's, the built-in one), whether their weights are here,
    and the collection's model versions."""
    if ctx.invoked_subcommand is not None:
        return
    from spyglass.encoders.availability import describe_models, describe_text_model

    settings = settings_of(ctx)
    with engine_of(ctx) as engine:
        active = engine.model_spec()
        versions = engine.status()["models"] if (settings.data_dir / "catalog.sqlite3").is_file() else None
    encoder = settings.encoder.model_copy(update={"model": active})
    rows = describe_models(encoder) + describe_text_model(settings.text.model)
    if versions is not None and versions["active"]:
        rows[0]["role"] = "active (models use)"
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("model", "role", "backend", "weights", "where")
    for row in rows:
        table.add_row(
            row["spec"], row["role"], row["backend"], "present" if row["present"] else "missing", row["where"]
        )
    console.print(table)
    if versions is not None:
        print_versions(versions)


def print_versions(versions: dict) -> None:
    """The active, switching-to and previous versions, as ``models`` and ``status`` show them."""
    if versions["active"]:
        console.print(f"active    {escape(versions['active']['spec'])}", highlight=False)
    if versions.get("note"):
        console.print(f"[yellow]{escape(versions['note'])}[/yellow]")
    if versions["switch"]:
        switch = versions["switch"]
        console.print(
            f"switching to {escape(switch['spec'])}: {switch['embedded']}/{switch['items']} items re-embedded "
            "(resume with `spyglass models use` and the same model)",
            highlight=False,
        )
    if versions["previous"]:
        console.print(f"previous  {escape(versions['previous']['spec'])} (`spyglass models rollback`)")


@app.command()
def use(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(help="Model spec, e.g. a folder `spyglass tune` wrote.")],
) -> None:
    """Switch the collection to another model: everything is re-embedded from the files while searches
    keep using the current model, then the switch happens at once. Interrupted, run it again to resume."""
    with engine_of(ctx) as engine:
        before = engine.store.model_id
        report = engine.use_model(spec, progress=True)
        after = engine.store.model_id
    if after == before:
        console.print(f"{escape(spec)} is already the collection's model ({escape(after)})", highlight=False)
        return
    console.print(
        f"now searching with {escape(after)}: {report.items} items of {report.documents} files re-embedded "
        f"in {report.seconds:.1f} s; `spyglass models rollback` returns to {escape(before)}",
        highlight=False,
    )
    _print_failures(report.failed)


@app.command()
def rollback(ctx: typer.Context) -> None:
    """Return to the previous model at once (its vectors were kept)."""
    with engine_of(ctx) as engine:
        report = engine.rollback_model(progress=True)
        console.print(f"now searching with {escape(engine.store.model_id)} again", highlight=False)
    if report.items:
        console.print(f"{report.items} items indexed since the switch were embedded by it", highlight=False)
    _print_failures(report.failed)


@app.command()
def prune(ctx: typer.Context) -> None:
    """Drop the vectors of models other than the active one (no rollback afterwards)."""
    with engine_of(ctx) as engine:
        dropped = engine.prune_models()
    for model_id, count in dropped.items():
        console.print(f"dropped {count} vectors of {escape(model_id)}", highlight=False)
    if not dropped:
        console.print("nothing to prune: only the active model's vectors are stored")


def _print_failures(failed: dict[int, str]) -> None:
    for document_id, reason in list(failed.items())[:20]:
        console.print(
            f"  [yellow]not re-embedded[/yellow] file #{document_id}: {escape(reason)}", highlight=False
        )
