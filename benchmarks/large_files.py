"""Peak memory and time to index very large files, each in its own process.

Generates, in a temporary folder: a 5,000-page PDF (A4, rendered at 1.5x: 3.4 MB a page
as pixels), a 20 MB text file on one line, and a 50 MB HTML file; indexes each with
``spyglass index`` in a fresh process and prints wall seconds, peak RSS (ru_maxrss)
and what the limits noted. A one-page PDF is the baseline: the process's own size
(Python, torch, the model), measured the same way in the same run.

    python benchmarks/large_files.py --pages 5000 [--model builtin:shapes]

Target (issue "Hardening"): the 5,000-page PDF stays under 1 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pypdfium2 as pdfium

SPYGLASS = Path(sys.executable).with_name("spyglass")


def write_pdf(path: Path, pages: int) -> Path:
    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(595, 842)
    pdf.save(str(path))
    pdf.close()
    return path


def write_text(path: Path, megabytes: int) -> Path:
    words = "lighthouse harbour breakwater fog signal keeper lantern gallery "
    path.write_text(words * (megabytes * (1 << 20) // len(words)))
    return path


def write_html(path: Path, megabytes: int) -> Path:
    block = "<div><h2>Section</h2><p>The keeper lit the lantern at dusk and watched the fog.</p></div>\n"
    with path.open("w") as handle:
        handle.write("<html><head><title>Large</title></head><body>\n")
        handle.write(block * (megabytes * (1 << 20) // len(block)))
        handle.write("</body></html>\n")
    return path


def index(path: Path, data_dir: Path, env: dict) -> tuple[float, float, dict]:
    """(wall s, peak RSS MB, report) of ``spyglass index PATH --json`` in a fresh process.

    ``os.wait4`` gives the peak of that one child (RUSAGE_CHILDREN would be the largest so far).
    """
    output = data_dir.with_suffix(".json")
    started = time.perf_counter()
    with output.open("w") as sink:
        child = subprocess.Popen(
            [str(SPYGLASS), "--data-dir", str(data_dir), "index", str(path), "--json"], stdout=sink, env=env
        )
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"indexing {path} failed")
    return seconds, usage.ru_maxrss / 1024, json.loads(output.read_text().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--text-mb", type=int, default=20)
    parser.add_argument("--html-mb", type=int, default=50)
    parser.add_argument("--model", default="builtin:shapes")
    args = parser.parse_args()
    env = {
        **os.environ,
        "SPYGLASS_MODEL": args.model,
        "SPYGLASS_INGEST__MAX_PDF_PAGES": str(args.pages),  # all pages: memory must not grow with them
        "SPYGLASS_ENCODER__FAST_TEXT": "false",
        "SPYGLASS_CONFIG": os.devnull,
    }
    with tempfile.TemporaryDirectory(prefix="spyglass-large-") as tmp:
        root = Path(tmp)
        files = [
            ("1-page PDF (baseline)", write_pdf(root / "one.pdf", 1)),
            (f"{args.pages:,}-page PDF", write_pdf(root / "many.pdf", args.pages)),
            (f"{args.text_mb} MB one-line text", write_text(root / "big.txt", args.text_mb)),
            (f"{args.html_mb} MB HTML", write_html(root / "big.html", args.html_mb)),
        ]
        print(f"model {args.model}; each file indexed by a fresh `spyglass index` (peak RSS: ru_maxrss)")
        print(f"{'file':28} {'wall s':>8} {'peak MB':>8} {'items':>7}  notes")
        for n, (name, path) in enumerate(files):
            seconds, peak, report = index(path, root / f"data{n}", env)
            notes = "; ".join(note for _, note in report["partial"]) or "-"
            errors = "; ".join(reason for _, reason in report["errors"])
            print(f"{name:28} {seconds:8.1f} {peak:8.0f} {report['items']:7}  {errors or notes}")


if __name__ == "__main__":
    main()
