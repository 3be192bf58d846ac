"""``spyglass demo``: index a small built-in sample and show searches, with or without real weights.

With the configured model's weights on this machine the demo uses them; offline
without weights it says so in one line and uses ``builtin:shapes``, so every step
still runs. The sample (generated shapes and a few notes) and its catalog live in
``<data_dir>/demo`` and never mix with the user's own index.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from spyglass.encoders.availability import describe_models
from spyglass.encoders.clip import shapes
from spyglass.engine import Engine
from spyglass.retriever import Query
from spyglass.settings import Settings

NOTES = {
    "shapes-guide.md": "# Shapes in the sample\n\nThe sample holds small pictures of coloured shapes: circles, squares, "
    "triangles and crosses in red, green, blue, yellow, purple and orange.\n\n## Circles\n\nA red circle is the "
    "classic example of a round shape. Circles have no corners.\n\n## Crosses\n\nA cross has four arms of equal "
    "length; the orange cross pictures are the brightest in the set.\n",
    "colours.txt": "Colour notes. Red and orange are warm colours; blue and purple are cool colours. Green sits in the "
    "middle of the visible spectrum. Yellow is the lightest of the six colours used in the sample.",
}
QUERIES = ["a red circle", "a blue square", "a purple triangle", "which shapes have no corners"]


def demo_settings(settings: Settings, say: Callable[[str], None]) -> Settings:
    """The demo's settings: its own data dir, and builtin:shapes when the configured weights are missing."""
    configured = describe_models(settings.encoder)[0]
    model = settings.encoder.model
    if not configured["present"] and not model.startswith("builtin:"):
        say(
            f"Pretrained weights for {model} are not on this machine; the demo uses builtin:shapes, "
            "a tiny model trained in seconds on generated shapes, so every step still runs."
        )
        model = "builtin:shapes"
    encoder = settings.encoder.model_copy(update={"model": model})
    return settings.model_copy(update={"data_dir": settings.data_dir / "demo", "encoder": encoder})


def write_sample(folder: Path, count: int = 48) -> Path:
    (folder / "pictures").mkdir(parents=True, exist_ok=True)
    for n, sample in enumerate(shapes.generate(count, seed=2024)):
        target = folder / "pictures" / f"{sample.colour}-{sample.shape}-{n:02d}.png"
        if not target.exists():
            sample.image.resize((128, 128)).save(target)
    (folder / "notes").mkdir(exist_ok=True)
    for name, text in NOTES.items():
        (folder / "notes" / name).write_text(text, encoding="utf-8")
    return folder


def run_demo(settings: Settings, say: Callable[[str], None]) -> Engine:
    """Index the sample and print a few searches; returns the open engine (the caller closes or serves it)."""
    engine = Engine(demo_settings(settings, say))
    sample = write_sample(engine.settings.data_dir / "sample")
    say(f"Indexing the sample in {sample} with {engine.settings.encoder.model} …")
    report = engine.index(sample, progress=False)
    say(f"  {report.summary()}")
    for text in QUERIES:
        say(f'\nsearch "{text}"')
        _show(engine.search(Query(text=text), k=3), say)
    picture = sorted((sample / "pictures").glob("green-circle-*.png"))[0]
    say(f"\nsearch by image {picture.name}")
    _show(engine.search(Query(images=[picture]), k=3), say)
    question = "which picture shows a red circle?"
    answer = engine.ask(question)
    say(f'\nask "{question}" ({answer.backend})\n  {answer.text}')
    for piece in answer.cited:
        say(f"  [{piece.number}] {piece.label}")
    return engine


def _show(response, say: Callable[[str], None]) -> None:
    if response.no_match:
        say(f"  {response.message}")
    for rank, result in enumerate(response.results, start=1):
        detail = f'  "{result.snippet[:90]}"' if result.snippet else ""
        score = f"{result.dense:.3f}" if result.dense is not None else "bm25"
        say(f"  {rank}. {Path(result.path).name} [{result.kind}] {score}{detail}")
