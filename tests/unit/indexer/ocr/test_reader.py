"""The OCR reader (spyglass/indexer/ocr/reader.py): what it reads, and how many pictures at once."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageDraw, ImageFont

from spyglass.indexer.ocr import reader as reader_module
from spyglass.indexer.ocr.reader import BIG_PIXELS, OcrReader
from spyglass.settings import EncoderSettings

pytest.importorskip("rapidocr", reason="OCR needs the rapidocr wheel (pip install -e .)")

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def sheet(size: tuple[int, int], words: str) -> Image.Image:
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    draw.text((40, 40), words, font=ImageFont.truetype(FONT, 28), fill="black")
    return picture


def test_big_pictures_are_read_one_at_a_time_small_ones_together(monkeypatch):
    """Two workers: two small pictures are read at once; two pages never are (each read of one
    holds hundreds of MB), and both are read by the one pipeline that uses every core, with their
    big buffers mapped (``spyglass.allocator``)."""
    pages = [sheet((1000, 1100), f"page number {n}") for n in range(2)]
    small = [sheet((420, 120), f"label {n}") for n in range(4)]
    assert all(p.width * p.height > BIG_PIXELS for p in pages)
    assert all(p.width * p.height <= BIG_PIXELS for p in small)
    reads: list[tuple[bool, int, float, float]] = []
    real = reader_module._read_all

    def timed(pipeline, image):
        start = time.monotonic()
        try:
            return real(pipeline, image)
        finally:
            big = image.width * image.height > BIG_PIXELS
            reads.append((big, id(pipeline), start, time.monotonic()))

    monkeypatch.setattr(reader_module, "_read_all", timed)
    mapped, real_mapped = [], reader_module.big_buffers_mapped

    @contextlib.contextmanager
    def recorded():
        with real_mapped():
            mapped.append(True)
            yield

    monkeypatch.setattr(reader_module, "big_buffers_mapped", recorded)
    reader = OcrReader(EncoderSettings().models_dir, threads=2)  # the quantized detector made once per user
    gate = threading.Barrier(2)

    def read(image: Image.Image) -> str:
        gate.wait()  # both threads start together, so the reads could overlap
        return " ".join(line.text for line in reader.read(image))

    for pair, expected in (
        (small[:2], ["label 0", "label 1"]),
        (pages, ["page number 0", "page number 1"]),
        (small[2:], ["label 2", "label 3"]),
    ):
        with ThreadPoolExecutor(2) as pool:
            assert [text.lower() for text in pool.map(read, pair)] == expected

    def overlapping(rows) -> bool:
        (_, _, a0, a1), (_, _, b0, b1) = rows
        return a0 < b1 and b0 < a1

    big = [r for r in reads if r[0]]
    assert len(big) == 2 and not overlapping(big)
    assert len(mapped) == 2  # the pages' reads, not the small pictures'
    assert len({r[1] for r in big}) == 1  # one pipeline for big pictures ...
    assert not {r[1] for r in big} & {r[1] for r in reads if not r[0]}  # ... of its own
    assert overlapping([r for r in reads if not r[0]][:2]) or overlapping([r for r in reads if not r[0]][2:])
