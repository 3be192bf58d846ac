"""Blank pages and pictures are skipped from a small render; faint text never is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from PIL import Image, ImageDraw, ImageFont

from spyglass.engine import Engine
from spyglass.filters import Filters
from spyglass.indexer.ocr.blank import is_blank
from spyglass.settings import Settings

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SHEET = (918, 1188)  # a letter page at 108 dpi


def sheet(paper: int = 255, grain: float = 0.0, specks: int = 0, seed: int = 0) -> Image.Image:
    """A scanned sheet: its paper's grey, the scanner's grain, dust."""
    rng = np.random.default_rng(seed)
    pixels = np.full(SHEET[::-1], float(paper)) + rng.normal(0, grain, SHEET[::-1]) * (grain > 0)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for x, y in rng.integers(0, 880, (specks, 2)):
        draw.ellipse((x, y, x + 3, y + 3), fill=(90, 90, 90))
    return image


def written(image: Image.Image, text: str, grey: int, size: int = 16, lines: int = 1) -> Image.Image:
    draw = ImageDraw.Draw(image)
    for line in range(lines):
        draw.text((80, 100 + 40 * line), text, font=ImageFont.truetype(FONT, size), fill=(grey,) * 3)
    return image


@pytest.mark.parametrize(
    "image",
    [
        sheet(),
        sheet(240, grain=4),
        sheet(235, grain=8),
        sheet(250, grain=3, specks=3),
        Image.new("RGB", (640, 480), "teal"),
    ],
    ids=["white", "grey paper, grain", "darker paper, coarse grain", "three specks", "a flat colour"],
)
def test_uniform_fields_are_blank(image):
    assert is_blank(image)


@pytest.mark.parametrize(
    "image",
    [
        written(sheet(), "The quarterly ledger of the harvest", grey=220),
        written(sheet(250, grain=3), "Invoice", grey=225),  # one light grey word on a grainy scan
        written(sheet(255, grain=2), "small print in a pale grey", grey=215, size=12),
    ],
    ids=["a faint line", "one faint word on grain", "pale small print"],
)
def test_faint_text_is_not_blank(image):
    assert not is_blank(image)


def test_no_real_photo_or_page_is_taken_for_blank():
    photos = sorted(shared_path("data", "flickr8k-1k", "images").glob("*.jpg"))[::5]
    formats = [p for p in shared_path("data", "formats").iterdir() if p.suffix != ".txt"]
    assert not [p.name for p in photos + formats if is_blank(Image.open(p))]
    import pypdfium2 as pdfium

    for name in ("attention.pdf", "financial_report.pdf"):
        pdf = pdfium.PdfDocument(str(shared_path("data", "docs", name)))
        assert not [n for n in range(len(pdf)) if is_blank(pdf[n].render(scale=0.5).to_pil())]
        pdf.close()


def test_a_scan_with_blank_pages_reads_only_the_written_one(tmp_path, shapes_encoder):
    pytest.importorskip("rapidocr", reason="OCR needs the rapidocr wheel (pip install -e .)")
    scan = tmp_path / "files" / "scan.pdf"
    scan.parent.mkdir()
    faint = written(sheet(248, grain=3, seed=9), "Lighthouse keeper ledger", grey=200, size=28, lines=2)
    blanks = [sheet(), sheet(242, grain=4, seed=1), sheet(250, grain=3, specks=2, seed=2)]
    blanks[0].save(scan, save_all=True, append_images=[*blanks[1:], faint], resolution=108.0)
    settings = Settings(data_dir=tmp_path / "data", ocr={"enabled": True})
    with Engine(settings, encoder=shapes_encoder) as engine:
        engine.index(scan.parent, progress=False)
        pages = engine.store.items(engine.store.allowed(Filters(kinds=("page",))).tolist())
        outputs = engine.store.stage_outputs("ocr", list(pages))
        by_page = {pages[i]["page"]: out for i, out in outputs.items()}
        assert [by_page[n] for n in (1, 2, 3)] == [{"skipped": "blank"}] * 3
        assert "lighthouse keeper" in " ".join(line["text"] for line in by_page[4]["lines"]).casefold()
        top = engine.search("lighthouse ledger", k=1).results[0]
        assert Path(top.path) == scan and top.page == 4
