"""Commands that learn from the collection: ``label`` (zero-shot tags) and ``tune`` (fine-tuning)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

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


def tune(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Argument(help="A folder with captions.csv (image,caption) or a COCO captions JSON."),
    ] = None,
    from_collection: Annotated[
        bool,
        typer.Option(help="Mine pairs from the collection: images with their descriptions or file names."),
    ] = False,
    mode: Annotated[
        str, typer.Option(help="projection (fast), last (the last --blocks blocks) or full.")
    ] = "projection",
    blocks: Annotated[int, typer.Option(min=1, help="Blocks per tower that train in --mode last.")] = 2,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs at most (training stops early).")] = 20,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the mode's).")] = None,
    batch_size: Annotated[int, typer.Option(min=2, help="Pairs per step.")] = 128,
    held_out: Annotated[float, typer.Option(help="Fraction of images held out for early stopping.")] = 0.2,
    patience: Annotated[int, typer.Option(min=1, help="Epochs without improvement before stopping.")] = 3,
    blend: Annotated[float, typer.Option(help="The tuned weights' share in the result (1: all).")] = 0.5,
    anchor: Annotated[float, typer.Option(min=0, help="Pull towards the original weights (L2-SP).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the split and the batches.")] = 0,
    output: Annotated[
        Path | None, typer.Option(help="Folder for the tuned model (default: models folder).")
    ] = None,
) -> None:
    """Fine-tune the collection's model on image-caption pairs into a new model version.

    The held-out split's Recall@k is printed before and after; switch to the result with
    `spyglass models use FOLDER`. Interrupted, the same command resumes from its last epoch.
    """
    from spyglass.training.tune import TuneOptions

    if (data is None) == (not from_collection):
        raise typer.BadParameter("give a DATA folder or --from-collection (one of them)", param_hint="DATA")
    options = TuneOptions(
        mode=mode,
        blocks=blocks,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        held_out=held_out,
        patience=patience,
        blend=blend,
        anchor=anchor,
        seed=seed,
    )

    def show(epoch: int, metrics: dict[str, float]) -> None:
        console.print(
            f"epoch {epoch + 1}: held-out R@1 text→image {metrics['text_to_image_R@1']:.1%}, "
            f"image→text {metrics['image_to_text_R@1']:.1%}",
            highlight=False,
        )

    with engine_of(ctx) as engine:
        report = engine.tune(data, options, output=output, on_epoch=show, progress=sys.stderr.isatty())
    if report.resumed_at is not None:
        console.print(f"(resumed at epoch {report.resumed_at + 1})")
    table = Table("held out", "before", "after", "chance")
    for key in ("text_to_image_R@1", "text_to_image_R@5", "image_to_text_R@1", "image_to_text_R@5"):
        table.add_row(
            key.replace("_", " "), *(f"{m[key]:.1%}" for m in (report.before, report.after, report.chance))
        )
    console.print(table)
    console.print(
        f"{report.train_pairs} pairs trained, {report.held_out_images} images held out; best epoch "
        f"{report.best_epoch + 1} of {report.epochs_run}, {_mean(report.epoch_seconds):.1f} s an epoch",
        highlight=False,
    )
    console.print(f"saved {escape(str(report.output))} ({escape(report.model_id)})", highlight=False)
    console.print(f"switch to it: spyglass models use {escape(str(report.output))}", highlight=False)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
