"""Commands that ask the collection: ``search``, ``ask`` and ``eval`` (ranking quality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from spyglass.cli.common import console, engine_of, filters_of


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
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Most tokens in the answer.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="0: greedy.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling, in (0, 1].")] = None,
    n: Annotated[
        int | None, typer.Option("--n", "-n", help="Candidate answers, each checked (not streamed).")
    ] = None,
    stop: Annotated[
        list[str] | None, typer.Option("--stop", help="A string that ends the answer (up to 4).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for sampling.")] = None,
) -> None:
    """Answer a question from your files, citing the images, pages and passages used.

    --max-tokens, --temperature, --top-p, -n, --stop and --seed override the generator settings for
    this question; the extractive backend honours --max-tokens (as words) and --stop only."""
    from spyglass.generator import Answer, PromptOptions

    filters = filters_of(filter_)
    controls = dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, n=n, stop=stop, seed=seed)
    options = PromptOptions(step_by_step=step_by_step, few_shot=few_shot, generation=controls)
    stream = stream and (n or 1) == 1  # several candidates come whole
    with engine_of(ctx) as engine:
        kwargs = dict(images=list(image or []), filters=filters, options=options, look=look)
        if not stream:
            answer = engine.ask(question, **kwargs)
        else:
            for event in engine.ask_stream(question, **kwargs):
                if isinstance(event, Answer):
                    answer = event
                elif not as_json:
                    console.file.write(event)
                    console.file.flush()
    if as_json:
        typer.echo(json.dumps(answer.public(), indent=2))
        return
    if stream:
        console.print()
    for number, candidate in enumerate(answer.candidates or [answer], start=1):
        if answer.candidates:
            console.print(f"[bold]candidate {number}[/bold]")
        _print_answer(candidate, streamed=stream)


def chat(
    ctx: typer.Context,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="Restrict the evidence, as in search.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Most tokens in an answer.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="0: greedy.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling, in (0, 1].")] = None,
    stop: Annotated[
        list[str] | None, typer.Option("--stop", help="A string that ends an answer (up to 4).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for sampling.")] = None,
) -> None:
    """Talk with your files: each follow-up is answered with the conversation in view, streamed, with
    citations. /new starts over, /sources lists what was cited, /quit (or Ctrl-D) ends."""
    from spyglass.errors import SpyglassError
    from spyglass.generator import Answer, PromptOptions
    from spyglass.generator.conversation import LOCAL

    controls = dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, seed=seed)
    options, filters = PromptOptions(generation=controls), filters_of(filter_)
    with engine_of(ctx) as engine:
        conversation, cited = engine.conversation(None, LOCAL), {}
        console.print("Ask about your files. /new starts over, /sources lists what was cited, /quit ends.")
        while True:
            try:
                question = console.input("[bold]> [/bold]").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if question in ("/quit", "/exit"):
                break
            if question == "/new":
                conversation, cited = engine.conversation(None, LOCAL), {}
                console.print("(a new conversation)")
            elif question == "/sources":
                for label in cited or ["(nothing cited yet)"]:
                    console.print(f"  {label}", highlight=False, markup=False)
            elif question:
                try:
                    for event in engine.ask_stream(
                        question, filters=filters, options=options, conversation=conversation
                    ):
                        if isinstance(event, Answer):
                            console.print()
                            _print_answer(event, streamed=True)
                            cited |= {f"{piece.label} — {piece.path}": None for piece in event.cited}
                        else:
                            console.file.write(event)
                            console.file.flush()
                except SpyglassError as exc:
                    console.print(f"[red]{escape(str(exc))}[/red]")


def _print_answer(answer, *, streamed: bool) -> None:
    if not streamed or not answer.supported or answer.invalid_citations or answer.renumbered:
        console.print(
            answer.text, highlight=False, markup=False
        )  # the checked text, when it differs from the stream
    if answer.invalid_citations:
        console.print(f"[yellow]removed citations to missing evidence: {answer.invalid_citations}[/yellow]")
    for piece in answer.cited:
        console.print(f"  [{piece.number}] {piece.label} — {piece.path}", highlight=False, markup=False)
