"""Commands that learn from the collection: ``label`` (zero-shot tags) and ``tune`` (fine-tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from spyglass.cli.common import console, engine_of


def label(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Label only what is indexed at or under this path (default: all).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", "-l", help='Comma-separated labels, e.g. "cat,dog,receipt".')
    ] = None,
    labels_file: Annotated[
        Path | None, typer.Option(help="A file of labels: one per line or comma-separated; # comments.")
    ] = None,
) -> None:
    """Tag pictures with their likeliest labels (zero-shot, from the stored vectors), for -f tag=LABEL.

    Tags set this way are automatic: a new vocabulary or model replaces them; tags you set stay.
    """
    from spyglass.indexer.labels import read_vocabulary

    words = read_vocabulary(labels or "")
    if labels_file is not None:
        try:
            words += read_vocabulary(labels_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {labels_file}: {exc.strerror}", param_hint="--labels-file"
            ) from None
    if not words:
        raise typer.BadParameter("give labels with --labels or --labels-file", param_hint="--labels")
    with engine_of(ctx) as engine:
        count = engine.label(words, path)
    where = f" under {escape(str(path))}" if path else ""
    console.print(
        f"labelled {count} picture(s){where} with {len(words)} label(s); search them with -f tag=LABEL",
        highlight=False,
    )
