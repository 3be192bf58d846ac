"""Peak memory (RSS) of whole Spyglass processes, as a user runs them: the runtime issue's budgets.

Sets up what a real user has (``cli.py``: random ViT-B-32 weights where the default model
resolves, offline, a fresh data directory, every other setting at its default, OCR on), then
prints the peak resident set of each process, read from the kernel (GNU time's for a process
that exits, ``VmHWM`` for ``serve`` while it runs):

- ``spyglass index`` of --photos Flickr8k photos: the first run (a new model: a child process
  exports it first; GNU time gives the larger peak of the two, and the child's own is printed
  by ``index``), then a second run into a fresh data directory, over the same number of other
  photos where there are that many (the exports exist);
- ``spyglass search`` cold (a text query, the exported text tower);
- ``spyglass serve``: idle after start, after --seconds of text searches from four threads, and
  after one image query (the image tower);
- ``spyglass index`` of a PDF of --pages pages (blank and scanned-text pages alternating: all
  rendered and embedded, the scanned ones read by OCR).

    python benchmarks/memory.py --photos 1000 --pages 3000

Budgets (runtime issue): ingest <= 800 MB, serve <= 600 MB idle and after an image query,
a 3,000-page PDF <= 900 MB. Each figure is measured for the torch model (``fast_load`` off), for
the ONNX int8 image tower and for the defaults (on AMX CPUs the traced bf16 tower), side by side,
each with its own data directory and model cache; ``--paths`` picks some of them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pypdfium2 as pdfium
from cli import SPYGLASS, cpu_name, serving, user_env
from PIL import Image, ImageDraw, ImageFont

FLICKR = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k-1k" / "images"
TIME = "/usr/bin/time"
BUDGETS_MB = {"index": 800, "serve": 600, "pdf": 900}


def peak_of_run(command: list[str], env: dict) -> tuple[float, str]:
    """MB: the peak resident set of ``command``, run to completion under GNU time; and its stderr.

    Not this process's ``wait4``: a child's ``ru_maxrss`` keeps the peak of the address space it
    was forked with, and this one holds a ViT-B-32 it wrote. ``time`` forks from a small process.
    GNU time's figure is the larger of the process's own and its children's.
    """
    if not Path(TIME).exists():
        raise SystemExit("GNU time is needed (apt install time)")
    done = subprocess.run(
        [TIME, "-f", "%M", *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed: {done.stderr[-500:]}")
    return int(done.stderr.strip().splitlines()[-1]) / 1024, done.stderr


def export_peak(stderr: str) -> float | None:
    """MB: the export child's own peak, as ``spyglass index`` prints it (None: no export ran)."""
    found = re.search(r"by a child process \(peak (\d+) MB\)", stderr)
    return float(found.group(1)) if found else None


def high_water(pid: int) -> float:
    """MB: the peak resident set of a running process so far (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM for process {pid}")


def photos(folder: Path, source: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for path in source:
        (folder / path.name).symlink_to(path)
    return folder


def scanned_pdf(path: Path, pages: int) -> Path:
    """Blank pages and pictures of text (no text layer) alternating, as a scanner makes them."""
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 22)
    sheet = Image.new("L", (918, 1188), 245)
    draw = ImageDraw.Draw(sheet)
    for line in range(20):
        draw.text((70, 80 + 50 * line), f"Line {line + 1}: a ledger entry of the archive", font=font, fill=60)
    text_page = path.with_suffix(".png")
    sheet.save(text_page)
    pdf = pdfium.PdfDocument.new()
    jpeg = _as_jpeg(text_page)
    for number in range(pages):
        page = pdf.new_page(612, 792)
        if number % 2:  # every scan embeds its own picture, as a scanner's PDF does
            picture = pdfium.PdfImage.new(pdf)
            picture.load_jpeg(str(jpeg))
            picture.set_matrix(pdfium.PdfMatrix().scale(612, 792))
            page.insert_obj(picture)
            page.gen_content()
    pdf.save(path)
    return path


def _as_jpeg(png: Path) -> Path:
    jpeg = png.with_suffix(".jpg")
    Image.open(png).convert("RGB").save(jpeg, quality=80)
    return jpeg


def searches(url: str, seconds: float, threads: int = 4, routes: tuple[str, ...] = ("/v1",)) -> int:
    """Text searches from ``threads`` threads for ``seconds``, taking turns over the collections'
    ``routes``; returns how many were answered."""
    words = ["a dog running", "children playing", "a red car", "mountains and snow", "people at a table"]
    done = []

    def searcher(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline, n = time.monotonic() + seconds, offset
            while time.monotonic() < deadline:
                route = routes[n % len(routes)]
                client.post(
                    f"{route}/search", json={"text": words[n % len(words)], "k": 10}
                ).raise_for_status()
                done.append(1)
                n += 1

    workers = [threading.Thread(target=searcher, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(done)


PATHS = {  # what each column runs: the torch model, the ONNX image tower (no torch), and the defaults
    "torch": {"SPYGLASS_ENCODER__FAST_LOAD": "false"},
    "onnx int8": {"SPYGLASS_PRECISION": "int8"},
    "defaults": {},  # auto: the ONNX tower's fastest precision, or on AMX CPUs the traced bf16 tower
}


def measure(
    root: Path, extra: dict, first: list[Path], second: list[Path], pages: int, seconds: float
) -> dict:
    """Peak MB of each process, in a fresh data directory and model cache under ``root``."""
    env = {**user_env(root, root / "data"), **extra}
    first_run, stderr = peak_of_run([str(SPYGLASS), "index", str(photos(root / "photos-1", first))], env)
    # A fresh catalog: with fewer than twice --photos photos the second run gets the same ones, which
    # an incremental index of the first run's catalog would find unchanged and not embed at all.
    shutil.rmtree(root / "data")
    second_run = peak_of_run([str(SPYGLASS), "index", str(photos(root / "photos-2", second))], env)[0]
    peaks = {
        "index, first run (with its export child)": first_run,
        "the export child alone, once per model": export_peak(stderr),
        "index, second run": second_run,
        "search, cold (text)": peak_of_run([str(SPYGLASS), "search", "a dog", "--json"], env)[0],
    }
    server, _ = serving(env, root / "data")
    try:
        url = "http://127.0.0.1:8931"
        peaks["serve, idle"] = high_water(server.pid)
        answered = searches(url, seconds)
        peaks["serve, after text searches"] = high_water(server.pid)
        with open(first[0], "rb") as picture:
            httpx.post(f"{url}/v1/search/image", files={"image": picture}, timeout=120).raise_for_status()
        peaks["serve, after an image query"] = high_water(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"  ({answered} text searches answered)")
    shutil.rmtree(root / "data")
    (root / "pdf").mkdir()
    pdf = scanned_pdf(root / "pdf" / "scans.pdf", pages)
    peaks[f"index, a {pages}-page scanned PDF"] = peak_of_run([str(SPYGLASS), "index", str(pdf.parent)], env)[
        0
    ]
    return peaks


def budget(name: str) -> int | None:
    if name.startswith("the export child"):
        return None  # once per model, in a process of its own: not an ingest's
    if name.startswith("serve"):
        return BUDGETS_MB["serve"]
    if "PDF" in name:
        return BUDGETS_MB["pdf"]
    return BUDGETS_MB["index"] if name.startswith("index") else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=1000, help="photos per index run (two runs)")
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20, help="of searches against serve")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"columns to measure, of {', '.join(PATHS)}")
    args = parser.parse_args()
    unknown = set(args.paths.split(",")) - set(PATHS)
    if unknown:
        parser.error(f"unknown --paths {', '.join(sorted(unknown))}; choose from {', '.join(PATHS)}")
    paths = {name: PATHS[name] for name in args.paths.split(",")}
    if not FLICKR.is_dir():
        raise SystemExit(f"{FLICKR} not found (see ../shared/data/README.md)")
    available = sorted(FLICKR.glob("*.jpg"))
    first, second = (
        available[: args.photos],
        available[args.photos : 2 * args.photos] or available[: args.photos],
    )
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; peak resident set of whole processes, MB")
    columns = {}
    with tempfile.TemporaryDirectory(prefix="spyglass-memory-") as scratch:
        for name, extra in paths.items():
            print(f"measuring the {name} path")
            root = Path(scratch) / name.replace(" ", "-")
            columns[name] = measure(root, extra, first, second, args.pages, args.seconds)
    print("| process | " + " | ".join(f"{name} MB" for name in paths) + " | budget MB |")
    print("|---|" + "---|" * (len(paths) + 1))
    for row in next(iter(columns.values())):
        print(
            f"| {row} | "
            + " | ".join("—" if columns[name][row] is None else f"{columns[name][row]:.0f}" for name in paths)
            + f" | {budget(row) or ''} |"
        )


if __name__ == "__main__":
    main()
