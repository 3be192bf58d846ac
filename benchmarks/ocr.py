"""OCR cost: the gate and the full reader on photos and pages, and what OCR adds to an ingest.

    python benchmarks/ocr.py                 # Flickr8k-1k and ../shared/data/docs
    python benchmarks/ocr.py --limit 300     # the first 300 photos only

Prints photos/s and pages/s for the gate (the detector alone at low resolution) and the
full reader (detector at full resolution, angle classifier, recogniser), how many photos
the gate lets through, and end-to-end ingest of the photos with ViT-B-32 (random weights)
with OCR off and on, measured in this run. Target: OCR on is at most 1.3x slower on photos.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pypdfium2 as pdfium
from ingest import FLICKR, end_to_end, random_vit_b32
from PIL import Image

from spyglass.content import PAGE_SCALE
from spyglass.indexer.ocr.reader import OcrReader
from spyglass.indexer.ocr.stage import OcrStage

DOCS = FLICKR.parents[1] / "docs"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:7.2f}/s ({1000 * seconds / max(count, 1):6.1f} ms each)"


def timed(function, inputs: list) -> tuple[list, float]:
    start = time.perf_counter()
    outputs = [function(x) for x in inputs]
    return outputs, time.perf_counter() - start


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=1000, help="photos of Flickr8k-1k to use")
    parser.add_argument("--pages", type=int, default=6, help="pages of each PDF to read")
    args = parser.parse_args()
    if not FLICKR.is_dir():
        raise SystemExit(f"{FLICKR} not found (see ../shared/data/README.md)")
    files = sorted(FLICKR.glob("*.jpg"))[: args.limit]
    photos = [Image.open(f).convert("RGB") for f in files]
    reader = OcrReader()
    reader.has_text(photos[0]), reader.read(photos[0])  # load both models before timing

    flags, gate_s = timed(reader.has_text, photos)
    passed = [p for p, flag in zip(photos, flags) if flag]
    _, full_s = timed(reader.read, photos[:200])
    print(f"photos ({len(photos)} Flickr8k, {photos[0].size[0]} px wide)")
    print(
        f"  gate          {rate(len(photos), gate_s)}   lets through {len(passed)} ({len(passed) / len(photos):.0%})"
    )
    print(
        f"  full reader   {rate(min(200, len(photos)), full_s)}   (what every photo would cost without the gate)"
    )
    renders = pages(args.pages)
    _, page_gate_s = timed(reader.has_text, renders)
    lines, page_full_s = timed(reader.read, renders)
    print(f"pages ({len(renders)} renders at {72 * PAGE_SCALE:.0f} dpi, {sum(map(len, lines))} lines read)")
    print(f"  gate          {rate(len(renders), page_gate_s)}")
    print(f"  full reader   {rate(len(renders), page_full_s)}")

    encoder = random_vit_b32()
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


if __name__ == "__main__":
    main()
