"""The ``spyglass`` command line. Every command goes through the same settings and facades as the API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from spyglass import __version__
from spyglass.cli import learn, models
from spyglass.cli.common import console, engine_of, filters_of, settings_of
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


@app.command()
def version() -> None:
    """Print the Spyglass version."""
    console.print(f"spyglass {__version__}")


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
def search(
    ctx: typer.Context,
    text: Annotated[
        str | None, typer.Argument(help='Query text; "a cat + night - day" adds and subtracts terms.')
    ] = None,
    image: Annotated[
        list[Path] | None, typer.Option("--image", "-i", help="Query image (repeatable).")
    ] = None,
    item: Annotated[int | None, typer.Option(help="An indexed item id: find similar items.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of results.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many results (pagination).")] = 0,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", "-f", help="kind=photo, type=pdf, path=/dir, tag=x, after=2023-01-01, key=value."
        ),
    ] = None,
    image_weight: Annotated[float, typer.Option(help="Weight of the image part of a combined query.")] = 1.0,
    text_weight: Annotated[float, typer.Option(help="Weight of the text part of a combined query.")] = 1.0,
    diversity: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="MMR lambda (1: relevance only).")
    ] = None,
    dense_only: Annotated[bool, typer.Option("--dense-only", help="No BM25 fusion.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also show matches below the relevance floor.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    local: Annotated[
        bool, typer.Option("--local", help="Search in this process even when `spyglass serve` is running.")
    ] = False,
) -> None:
    """Search the index by text, image, item, or a combination.

    A plain search goes to `spyglass serve` when one runs on the same data directory
    (see ``spyglass.client``); ``--local`` keeps it in this process.
    """
    from spyglass.display import search_lines
    from spyglass.retriever import Query, RankingOptions

    filters = filters_of(filter_)
    query = Query(
        text=text, images=list(image or []), item_id=item, image_weight=image_weight, text_weight=text_weight
    )
    options = RankingOptions(hybrid=not dense_only, diversity=diversity, relevance_floor=not show_all)
    with engine_of(ctx) as engine:
        response = engine.search(query, filters, k=k, offset=offset, options=options)
    if as_json:
        typer.echo(json.dumps(response.to_dict(), indent=2))
        return
    for line in search_lines(response.to_dict()):
        typer.echo(line)


@app.command(name="eval")
def eval_(
    ctx: typer.Context,
    dataset: Annotated[
        Path,
        typer.Argument(
            help="Folder with captions.csv (image,caption), a COCO captions JSON, or a judged collection."
        ),
    ],
    text: Annotated[
        bool,
        typer.Option(
            "--text", help="Text retrieval instead: caption-to-caption, or --questions over a folder."
        ),
    ] = False,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions", help="CSV of question,document over the DATASET folder (implies --text)."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Captions of this many images, or this many questions."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Text->image and image->text Recall@1/5/10 and MRR on a captioned image set (CLIP_benchmark definitions).

    On a judged collection (BEIR's corpus.jsonl, queries.jsonl and qrels/test.tsv; or queries.csv, a
    qrels file and docs/), with --text (caption to caption) or --questions: nDCG@10, Recall@100,
    MRR@10, MAP and R@1 of BM25, CLIP text, the text space, the fused ranking and a plain-RRF reference.
    """
    from dataclasses import asdict

    from spyglass.evaluation.collections import judged

    if text or questions or judged(dataset):
        _eval_judged(ctx, dataset, questions, limit, as_json)
        return
    with engine_of(ctx) as engine:
        report = engine.evaluate(dataset)
        model_id = engine.encoder.model_id
    if as_json:
        typer.echo(json.dumps({"model_id": model_id, **asdict(report)}, indent=2))
        return
    console.print(f"{model_id}: {report.images} images, {report.captions} captions, {report.seconds:.1f} s")
    table = Table("direction", "R@1 %", "R@5 %", "R@10 %", "MRR (0-1)")
    for direction in ("text_to_image", "image_to_text"):
        for label, m in ((direction.replace("_", " "), report.metrics), ("  chance", report.chance)):
            recalls = [f"{100 * m[f'{direction}_R@{k}']:.2f}" for k in (1, 5, 10)]
            table.add_row(label, *recalls, f"{m[f'{direction}_MRR']:.3f}")
    console.print(table)
    console.print(
        "Recall@k: % of queries with a right answer in the top k; chance: the same for a random ranking."
    )


def _eval_judged(
    ctx: typer.Context, dataset: Path, questions: Path | None, limit: int | None, as_json: bool
) -> None:
    from dataclasses import asdict

    from spyglass.evaluation.judged import MEASURES, evaluate_judged

    with engine_of(ctx) as engine:
        report = evaluate_judged(engine, dataset, questions=questions, limit=limit)
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
        return
    console.print(
        f"{escape(report.collection)}: {report.documents} documents, {report.queries} judged queries, "
        f"{report.seconds:.1f} s (documents as the unit; measures by ranx)"
    )
    table = Table("ranking", *MEASURES)
    names = {
        "bm25": "BM25 (sections)",
        "clip": "CLIP text",
        "text": "text space",
        "fused": "fused (what search returns)",
        "rrf": "reference: plain RRF of BM25 + text space",
    }
    for method, values in report.metrics.items():
        table.add_row(names[method], *(f"{values[name]:.3f}" for name in MEASURES))
    console.print(table)
    if "text" not in report.metrics:
        console.print(
            "[yellow]no text space here (off, or its model is missing): see `spyglass models`[/yellow]"
        )


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="Your question.")],
    image: Annotated[
        list[Path] | None, typer.Option("--image", "-i", help="An image of your own (repeatable).")
    ] = None,
    look: Annotated[
        bool, typer.Option("--look", help="Ask about --image only, without searching the collection.")
    ] = False,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="Restrict the evidence, as in search.")
    ] = None,
    step_by_step: Annotated[
        bool, typer.Option("--step-by-step", help="Ask the model to reason step by step.")
    ] = False,
    few_shot: Annotated[
        bool, typer.Option("--few-shot", help="Show the model an example of a cited answer.")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print the answer as it is generated.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Answer a question from your files, citing the images, pages and passages used."""
    from spyglass.generator import Answer, PromptOptions

    filters = filters_of(filter_)
    options = PromptOptions(step_by_step=step_by_step, few_shot=few_shot)
    with engine_of(ctx) as engine:
        events = engine.ask_stream(
            question, images=list(image or []), filters=filters, options=options, look=look
        )
        answer = None
        for event in events:
            if isinstance(event, Answer):
                answer = event
            elif stream and not as_json:
                console.file.write(event)
                console.file.flush()
    if as_json:
        typer.echo(json.dumps(answer.public(), indent=2))
        return
    if stream:
        console.print()
    if not stream or not answer.supported or answer.invalid_citations or answer.renumbered:
        console.print(
            answer.text, highlight=False, markup=False
        )  # the checked text, when it differs from the stream
    if answer.invalid_citations:
        console.print(f"[yellow]removed citations to missing evidence: {answer.invalid_citations}[/yellow]")
    for piece in answer.cited:
        console.print(f"  [{piece.number}] {piece.label} — {piece.path}", highlight=False, markup=False)


def _serve(engine, host: str, port: int, insecure: bool) -> None:
    from spyglass.api import serve as run_server

    settings = engine.settings.api
    if (
        host not in ("127.0.0.1", "localhost", "::1")
        and not (settings.api_keys or settings.admin_keys)
        and not insecure
    ):
        raise typer.BadParameter(
            f"refusing to listen on {host} without API keys; set SPYGLASS_API_KEYS/SPYGLASS_ADMIN_KEYS or pass --insecure",
            param_hint="--host",
        )
    console.print(f"Spyglass on http://{host}:{port}/  (API docs at /docs)")
    run_server(engine, host, port)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8077).")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a public bind without API keys.")
    ] = False,
) -> None:
    """Run the HTTP API and the web page; `spyglass search` in a shell then asks this server."""
    engine = engine_of(ctx)
    _serve(engine, host or engine.settings.api.host, port or engine.settings.api.port, insecure)


@app.command()
def mcp(ctx: typer.Context) -> None:
    """Serve the collection to an AI assistant over MCP (stdio): search, find_similar, ask, get_item, index_folder.

    Configure it in the assistant as the command `spyglass mcp`; it runs as you, so it reads
    your files. Nothing but MCP messages goes to stdout (logs go to stderr).
    """
    from spyglass.api.mcp import build_server

    with engine_of(ctx) as engine:
        build_server(engine).run("stdio")


@app.command()
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


@app.command()
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


app.command()(learn.label)
app.command()(learn.tune)
app.add_typer(models.app, name="models")


def main() -> None:
    """Console entry point: Spyglass errors, and a full disk or a read-only folder, are one line and exit 1."""
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
