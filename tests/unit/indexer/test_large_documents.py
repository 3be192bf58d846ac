"""Large files are indexed within memory and time budgets; what a limit leaves out is said, not dropped.

Before: every page render of a PDF was kept until the document was done (a 5,000-page
PDF passed 3 GB), pages past the 2,000-page cap vanished without a note, and a 20 MB
one-line text file took 89 s and 1.5 GB. ``benchmarks/large_files.py`` prints the
figures for full-size files; these tests pin the behaviour at a size CI can afford.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from spyglass import Engine
from spyglass.retriever import RankingOptions
from spyglass.settings import Settings

A4 = (595, 842)  # points; rendered at 1.5x that is 893 x 1263 pixels, 3.4 MB a page


def write_pdf(path: Path, pages: int) -> Path:
    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(*A4)
    pdf.save(str(path))
    pdf.close()
    return path


def engine(tmp_path: Path, shapes_encoder, **ingest) -> Engine:
    settings = Settings(data_dir=tmp_path / "data", model="builtin:shapes", ingest=ingest)
    return Engine(settings, encoder=shapes_encoder)


def test_pages_past_the_limit_are_noted(tmp_path, shapes_encoder):
    pdf = write_pdf(tmp_path / "long.pdf", 8)
    with engine(tmp_path, shapes_encoder, max_pdf_pages=5) as spyglass:
        report = spyglass.index(pdf, progress=False)
        assert report.errors == [] and report.added == 1
        assert report.partial == [(str(pdf), "only the first 5 of 8 pages were indexed (page limit)")]
        assert "1 partly indexed" in report.summary()
        assert spyglass.store.counts()["items"] == 5
        hit = spyglass.search("a page", k=10, options=RankingOptions(relevance_floor=False)).results[0]
        assert spyglass.store.metadata(hit.document_id)["limits"] == report.partial[0][1]


def test_a_slow_document_stops_at_its_time_limit_but_keeps_its_first_page(tmp_path, shapes_encoder):
    pdf = write_pdf(tmp_path / "slow.pdf", 4)
    with engine(tmp_path, shapes_encoder, max_document_seconds=1e-9) as spyglass:
        report = spyglass.index(pdf, progress=False)
    assert report.errors == []
    assert report.partial == [(str(pdf), "only the first 1 of 4 pages were indexed (time limit)")]


def test_text_past_the_size_limit_is_cut_at_a_character_boundary(tmp_path, shapes_encoder):
    """One 3 MB line of multi-byte UTF-8: cut at 1 MiB without splitting a character (no cp1252 mojibake)."""
    text = tmp_path / "one-line.txt"
    text.write_bytes(("café naïve " * 300_000).encode())
    with engine(tmp_path, shapes_encoder, max_text_bytes=1 << 20) as spyglass:
        report = spyglass.index(text, progress=False)
        hit = spyglass.search("café", k=1, options=RankingOptions(relevance_floor=False)).results[0]
    assert report.errors == [] and len(report.partial) == 1
    assert (
        report.partial[0][1].startswith("only the first 1,048,57")
        and "text size limit" in report.partial[0][1]
    )
    assert "café" in hit.text and "Ã" not in hit.text


PEAK = """
import json, resource, sys
from spyglass import Engine
from spyglass.retriever import RankingOptions
from spyglass.settings import Settings
engine = Engine(Settings(data_dir=sys.argv[2], model="builtin:shapes"))
report = engine.index(sys.argv[1], progress=False)
print(json.dumps({"items": report.items, "errors": report.errors,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_index(pdf: Path, data_dir: Path) -> dict:
    env = {**os.environ, "SPYGLASS_ENCODER__FAST_TEXT": "false"}
    result = subprocess.run(
        [sys.executable, "-c", PEAK, str(pdf), str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow
def test_memory_does_not_grow_with_the_page_count(tmp_path):
    """400 pages held as renders would be 1.35 GB more than 40; streamed, the peak barely moves."""
    small = peak_index(write_pdf(tmp_path / "small.pdf", 40), tmp_path / "a")
    large = peak_index(write_pdf(tmp_path / "large.pdf", 400), tmp_path / "b")
    assert small["errors"] == [] and large["errors"] == []
    assert small["items"] == 40 and large["items"] == 400
    assert large["peak_mb"] - small["peak_mb"] < 250, (small, large)


def test_a_text_of_many_short_sections_stops_at_the_chunk_limit(tmp_path, shapes_encoder):
    page = tmp_path / "sections.html"
    page.write_text(
        "<html><body>" + "<h2>Fog</h2><p>The keeper lit the lantern.</p>" * 500 + "</body></html>"
    )
    with engine(tmp_path, shapes_encoder, max_chunks=100) as spyglass:
        report = spyglass.index(page, progress=False)
        kinds = [spyglass.store.item(i)["kind"] for i in range(1, spyglass.store.counts()["items"] + 1)]
    assert report.errors == [] and kinds.count("chunk") == 100
    (note,) = [note for _, note in report.partial]
    assert note.startswith("only the first 100 chunks (") and note.endswith(
        "characters) were indexed (chunk limit)"
    )
