"""The ``spyglass`` command line. Every command goes through the same settings and facades as the API."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from spyglass import __version__
from spyglass.allocator import limit_malloc_arenas
from spyglass.cli import collections, ingest, learn, models, query, serving
from spyglass.cli.common import console
from spyglass.errors import SpyglassError

app = typer.Typer(
    help="Spyglass: multimodal search and grounded answers over your own files.", no_args_is_help=True
)


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (SPYGLASS_DATA_DIR).")] = None,
    model: Annotated[
        str | None, typer.Option(help="Model spec (SPYGLASS_MODEL), e.g. builtin:shapes.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    precision: Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Encoder batch size.")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads (0: default).")] = None,
    collection: Annotated[
        str,
        typer.Option(
            envvar="SPYGLASS_COLLECTION", help="The collection to work on (`spyglass collections`)."
        ),
    ] = "default",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Flags override SPYGLASS_* variables, which override the config file."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    overrides = dict(
        data_dir=data_dir,
        model=model,
        device=device,
        precision=precision,
        batch_size=batch_size,
        threads=threads,
    )
    ctx.obj = {key: value for key, value in overrides.items() if value is not None}
    ctx.obj["collection"] = collection


@app.command()
def version() -> None:
    """Print the Spyglass version."""
    console.print(f"spyglass {__version__}")


app.command()(ingest.encode)
app.command()(ingest.index)
app.command()(ingest.tag)
app.command()(query.search)
app.command(name="eval")(query.eval_)
app.command()(query.ask)
app.command()(query.chat)
app.command()(serving.serve)
app.command()(serving.mcp)
app.command()(serving.demo)
app.command()(serving.status)
app.command()(serving.compact)
app.command()(serving.backup)
app.command()(serving.restore)
app.command()(learn.label)
app.command()(learn.tune)
app.add_typer(models.app, name="models")
app.add_typer(collections.app, name="collections")


def main() -> None:
    """Console entry point: Spyglass errors, and a full disk or a read-only folder, are one line and exit 1."""
    limit_malloc_arenas()  # before any thread starts (see spyglass.allocator)
    try:
        app()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, SpyglassError) else _environment_problem(exc)
        if reason is None:
            raise
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(reason)}", highlight=False)
        raise SystemExit(1) from None


def _environment_problem(exc: Exception) -> str | None:
    """One sentence for failures of the machine rather than of Spyglass (disk full, no permission)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
    ):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}; nothing was half-written, free space or fix permissions and retry."
    message = str(getattr(exc, "orig", exc))
    if "database or disk is full" in message or "readonly database" in message:
        return f"the catalog cannot be written ({message}); nothing committed was lost."
    return None
