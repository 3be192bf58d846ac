"""OCR cost: the gate and the full reader on photos and pages, and what OCR adds to an ingest.

    python benchmarks/ocr.py                 # Flickr8k-1k, ../shared/data/docs, scanned PDFs
    python benchmarks/ocr.py --limit 300     # the first 300 photos only
    python benchmarks/ocr.py --scans-only    # only the generated PDFs: blank pages, scanned pages

Prints photos/s and pages/s for stock RapidOCR (its fp32 detector on every photo, one
picture at a time on every core) and for Spyglass's reader as the OCR stage runs it (the
quantized detector as a gate at low resolution, then the read; one picture per core), in
how many photos each finds words, what a photo the gate stops costs, and end-to-end
ingest of the photos with ViT-B-32 (random weights) with OCR off and on, all measured in
this run. Target: OCR on is at most 1.3x slower on photos.

Then two generated PDFs are ingested the same way, OCR off and on: 300 blank pages (a blank page
is recognised from a small render and not read; target: OCR on at most 1.5x the OCR-off time)
and 20 scanned pages of grey text on grainy paper (images without a text layer, all read).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from ingest import FLICKR, end_to_end, random_vit_b32
from PIL import Image, ImageDraw, ImageFont

from spyglass.content import PAGE_SCALE
from spyglass.indexer.ocr.reader import FULL_SIDE, MIN_LINE_SCORE, OcrReader, TextLine
from spyglass.indexer.ocr.stage import OcrStage
from spyglass.settings import Settings

DOCS = FLICKR.parents[1] / "docs"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:7.2f}/s ({1000 * seconds / max(count, 1):6.1f} ms each)"


def timed(function, inputs: list, workers: int = 1) -> tuple[list, float]:
    """Outputs and seconds; ``workers`` > 1 maps as the OCR stage does, that many at a time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        outputs = list(pool.map(function, inputs))
    return outputs, time.perf_counter() - start


def words(line: TextLine) -> bool:
    """A line a person might search for: three letters or digits, read with confidence."""
    return line.confidence >= 0.8 and sum(c.isalnum() for c in line.text) >= 3


def stock_rapidocr():
    """RapidOCR as it comes (fp32 detector, no gate) at the reader's resolution: the baseline."""
    from rapidocr import RapidOCR

    engine = RapidOCR(
        params={"Global.log_level": "error", "Det.limit_side_len": FULL_SIDE, "Det.limit_type": "max"}
    )

    def read(image: Image.Image) -> list[TextLine]:
        found = engine(np.ascontiguousarray(np.asarray(image)[:, :, ::-1]))
        if found.txts is None:
            return []
        return [
            TextLine(text, (0, 0, 0, 0), float(score))
            for text, score in zip(found.txts, found.scores)
            if score >= MIN_LINE_SCORE
        ]

    return read


def pages(limit: int) -> list[Image.Image]:
    """Renders of the image-only report's pages and the paper's first pages, as the stage reads them."""
    renders = []
    for name in ("financial_report.pdf", "attention.pdf"):
        pdf = pdfium.PdfDocument(str(DOCS / name))
        renders += [
            pdf[n].render(scale=PAGE_SCALE).to_pil().convert("RGB") for n in range(min(limit, len(pdf)))
        ]
        pdf.close()
    return renders


def scanned_pdfs(folder: Path, blank_pages: int, scanned_pages: int) -> dict[str, Path]:
    """A PDF of blank pages, and one of scans: pictures of text on grainy paper, no text layer."""
    blank = pdfium.PdfDocument.new()
    for _ in range(blank_pages):
        blank.new_page(612, 792)
    paths = {f"{blank_pages} blank pages": folder / "blank" / "blank.pdf"}
    paths[f"{scanned_pages} scanned pages"] = folder / "scans" / "scans.pdf"
    for path in paths.values():
        path.parent.mkdir(parents=True)
    blank.save(paths[f"{blank_pages} blank pages"])
    rng = np.random.default_rng(0)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 22)
    sheets = []
    for page in range(scanned_pages):
        paper = np.clip(245 + rng.normal(0, 3, (1188, 918)), 0, 255).astype(np.uint8)
        sheet = Image.fromarray(paper).convert("RGB")
        draw = ImageDraw.Draw(sheet)
        for line in range(20):
            draw.text(
                (70, 80 + 50 * line),
                f"Page {page + 1}, line {line + 1}: ledger entry {rng.integers(1e6)}",
                font=font,
                fill=(60, 60, 60),
            )
        sheets.append(sheet)
    sheets[0].save(
        paths[f"{scanned_pages} scanned pages"], save_all=True, append_images=sheets[1:], resolution=108.0
    )
    return paths


def scans(encoder, reader: OcrReader) -> None:
    """OCR off and on over the generated PDFs, whole ingests measured in this run."""
    with tempfile.TemporaryDirectory() as work:
        for name, path in scanned_pdfs(Path(work), 300, 20).items():  # one PDF each: rates are 1 / seconds
            off, count = end_to_end(encoder, path.parent)
            on, _ = end_to_end(encoder, path.parent, lambda store: [OcrStage(lambda: reader, lambda: store)])
            print(f"{name}: OCR off {count / off:6.1f} s, on {count / on:6.1f} s -> {off / on:.2f}x the time")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=1000, help="photos of Flickr8k-1k to use")
    parser.add_argument("--pages", type=int, default=6, help="pages of each PDF to read")
    parser.add_argument("--scans-only", action="store_true", help="only the generated PDFs")
    args = parser.parse_args()
    reader = OcrReader(Settings().encoder.models_dir)  # the user's cache: quantized once per user
    encoder = random_vit_b32()
    if args.scans_only:
        return scans(encoder, reader)
    if not FLICKR.is_dir():
        raise SystemExit(f"{FLICKR} not found (see ../shared/data/README.md)")
    files = sorted(FLICKR.glob("*.jpg"))[: args.limit]
    photos = [Image.open(f).convert("RGB") for f in files]
    stock = stock_rapidocr()
    reader.has_text(photos[0]), reader.read(photos[0]), stock(photos[0])  # load the models before timing

    def gated(photo: Image.Image) -> list[TextLine] | None:
        return reader.read(photo) if reader.has_text(photo) else None

    print(
        f"photos ({len(photos)} Flickr8k, {min(p.width for p in photos)}-{max(p.width for p in photos)} px wide)"
    )
    baseline, stock_s = timed(stock, photos)
    ours, ours_s = timed(gated, photos, reader.workers)
    with_words = [i for i, lines in enumerate(baseline) if any(map(words, lines))]
    kept = [i for i in with_words if any(map(words, ours[i] or []))]
    stopped = [photo for photo, lines in zip(photos, ours) if lines is None]
    _, stopped_s = timed(reader.has_text, stopped, reader.workers)
    print(
        f"  stock RapidOCR {rate(len(photos), stock_s)}   fp32 detector on every photo; words in {len(with_words)}"
    )
    print(f"  Spyglass       {rate(len(photos), ours_s)}   words in {len(kept)} of those {len(with_words)}")
    print(
        f"  the gate stops {len(stopped)} photos ({len(stopped) / len(photos):.0%}) at {rate(len(stopped), stopped_s)}"
    )
    renders = pages(args.pages)
    stock_lines, page_stock_s = timed(stock, renders)
    lines, page_s = timed(reader.read, renders, reader.workers)
    print(f"pages ({len(renders)} renders at {72 * PAGE_SCALE:.0f} dpi)")
    print(f"  stock RapidOCR {rate(len(renders), page_stock_s)}   {sum(map(len, stock_lines))} lines")
    print(f"  Spyglass       {rate(len(renders), page_s)}   {sum(map(len, lines))} lines")

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work, "photos")
        folder.mkdir()
        for file in files:
            shutil.copy(file, folder)
        off, count = end_to_end(encoder, folder)
        on, _ = end_to_end(encoder, folder, lambda store: [OcrStage(lambda: reader, lambda: store)])
    print(
        f"ingest of {count} photos: OCR off {off:6.1f} img/s, on {on:6.1f} img/s -> {off / on:.2f}x slower (target <= 1.3x)"
    )
    scans(encoder, reader)


if __name__ == "__main__":
    main()
