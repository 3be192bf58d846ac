"""Commands that put files into the collection: ``index``, ``tag`` and ``encode`` (vectors out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from spyglass.cli.common import console, engine_of, settings_of
from spyglass.errors import SpyglassError


def encode(
    ctx: typer.Context,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="Text to embed (repeatable).")
    ] = None,
    image: Annotated[
        list[Path] | None, typer.Option("--image", "-i", help="Image file to embed (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Embed texts and images and print their cosine similarities: a smoke test of the model."""
    from spyglass.encoders import load_encoder
    from spyglass.encoders.precision import set_threads
    from spyglass.images import open_image

    settings = settings_of(ctx)
    set_threads(settings.encoder.threads)
    encoder = load_encoder(settings=settings.encoder)
    texts, paths = list(text or []), list(image or [])
    pictures = [
        open_image(path, min_side=encoder.image_size, max_pixels=settings.ingest.max_image_pixels)
        for path in paths
    ]
    text_vectors = encoder.encode_texts(texts, ensemble=settings.encoder.prompt_ensemble)
    image_vectors = encoder.encode_images(pictures)
    similarity = (text_vectors @ image_vectors.T).tolist() if texts and paths else []
    result = {
        "model_id": encoder.model_id,
        "dim": encoder.dim,
        "device": str(encoder.device),
        "dtype": str(encoder.dtype).removeprefix("torch."),
        "texts": texts,
        "images": [str(p) for p in paths],
        "similarity": similarity,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(f"model {result['model_id']} · dim {encoder.dim} · {result['device']} {result['dtype']}")
    if similarity:
        table = Table("text \\ image", *[escape(p.name) for p in paths])
        for label, row in zip(texts, similarity):
            table.add_row(escape(label), *[f"{value:.3f}" for value in row])
        console.print(table)
    else:
        console.print(f"embedded {len(texts)} text(s) and {len(paths)} image(s)")


def index(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Folders or files to index.", metavar="PATH...")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option(help="Only paths matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Skip paths matching this glob (repeatable).")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Only these kinds: image, pdf, text, video (repeatable).")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Keep the index current as files change.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    ocr_only: Annotated[
        bool,
        typer.Option(
            "--ocr-only", help="Only read text in pictures already indexed (no PATH; nothing re-embedded)."
        ),
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(help="local, or ray / ray=ADDRESS: load and embed on a Ray cluster (see [ray])."),
    ] = None,
) -> None:
    """Index folders or files: new and edited files are embedded, renames moved, deleted files removed."""
    from dataclasses import asdict

    from spyglass.kinds import FAMILIES as KINDS

    def show(report) -> None:
        if as_json:
            print(json.dumps(asdict(report)), flush=True)  # one line per path and run, even through a pipe
            return
        console.print(report.summary())
        for file, reason in report.errors[:20]:
            console.print(f"  [yellow]skipped[/yellow] {escape(file)}: {escape(reason)}", highlight=False)
        if len(report.errors) > 20:
            console.print(f"  … and {len(report.errors) - 20} more (see `spyglass status`)")
        for file, note in report.partial[:20]:
            console.print(
                f"  [yellow]partly indexed[/yellow] {escape(file)}: {escape(note)}", highlight=False
            )
        for stage, reason in report.waiting.items():
            console.print(
                f"  [yellow]stage {escape(stage)} waits[/yellow]: {escape(reason)}", highlight=False
            )

    if ocr_only:
        if paths or watch:
            raise typer.BadParameter("--ocr-only works on the whole collection: give no PATH and no --watch")
        engine = engine_of(ctx)
        try:
            show(engine.catch_up(only=["ocr"]))
        except SpyglassError as exc:
            raise typer.BadParameter(f"{exc}; turn OCR on with SPYGLASS_OCR__ENABLED=true") from None
        finally:
            engine.close()
        return
    if not paths:
        raise typer.BadParameter("give the folders or files to index", param_hint="PATH")
    for kind in only or []:
        if kind not in KINDS:
            raise typer.BadParameter(
                f"unknown kind {kind!r}; choose from {', '.join(KINDS)}", param_hint="--only"
            )
    for path in paths:  # checked before any is indexed: a typo in the last costs no waiting
        if not path.exists() and not path.is_symlink():
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    engine = engine_of(ctx)

    def run() -> list:
        return [
            engine.index(
                path,
                include=include or (),
                exclude=exclude or (),
                kinds=only,
                progress=not as_json,
                executor=executor,
            )
            for path in paths
        ]

    def show_all(reports: list) -> None:
        for path, report in zip(paths, reports):
            if len(paths) > 1 and not as_json:
                console.print(f"[bold]{escape(str(path))}[/bold]", highlight=False)
            show(report)

    try:
        if watch:
            from spyglass.indexer.watch import watch_and_index

            if not as_json:
                console.print(f"watching {escape(', '.join(map(str, paths)))} (Ctrl-C to stop)")
            watch_and_index(paths, run, show_all)
        else:
            show_all(run())
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()


def tag(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An indexed file, or a folder: every indexed file under it.")],
    tags: Annotated[list[str], typer.Argument(help="One or more tags (search with -f tag=NAME).")],
) -> None:
    """Tag indexed files, for filtering searches with -f tag=NAME."""
    with engine_of(ctx) as engine:
        count = engine.tag(path, tags)
    if not count:
        raise typer.BadParameter(f"nothing indexed at {path}", param_hint="PATH")
    console.print(f"tagged {count} file(s): {escape(', '.join(tags))}")
