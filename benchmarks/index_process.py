"""Whole-process ``spyglass index`` of Flickr photos: this code against an earlier commit's, one run.

What a user runs, timed from outside: ``cli.user_env`` lays out random ViT-B-32 weights where the
default model resolves (offline), every setting at its default (OCR on, precision auto). For each
side (this code, and ``--baseline REV`` through ``git archive``) with its own model cache:

1. a setup ``index`` of --photos other photos (the model's first use: its exports are made);
2. --runs timed ``index`` processes of --photos photos, each into a fresh data directory, the
   two sides taking turns (first one, then the other, then the other way round).

Prints the median wall seconds and peak RSS of the timed runs, the ratio to the baseline, and what
the export check decided (int8 published or refused). rclip is timed by `peers.py`.

    python benchmarks/index_process.py --baseline 034d3f0 [--photos 200] [--runs 3] [--precision int8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from cli import ROOT, archived_code, cpu_name, user_env

FLICKR = ROOT.parent / "shared" / "data" / "flickr8k-1k" / "images"
TIME = "/usr/bin/time"


def linked(folder: Path, photos: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for photo in photos:
        (folder / photo.name).symlink_to(photo)
    return folder


def timed(command: list[str], env: dict, cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS MB, the finished process) of one run of ``command``; stops on failure."""
    done = subprocess.run([TIME, "-f", "%e %M", *command], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stderr[-2000:]}")
    seconds, kilobytes = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kilobytes) / 1024, done


def index(code: Path, env: dict, folder: Path, data_dir: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stderr) of one ``spyglass index`` process of ``code``."""
    env = {**env, "PYTHONPATH": str(code), "SPYGLASS_DATA_DIR": str(data_dir)}
    seconds, peak, done = timed([sys.executable, "-m", "spyglass", "index", str(folder), "--json"], env, code)
    return seconds, peak, done.stderr


def take_turns(sides: dict[str, Callable[[int], tuple[float, float]]], runs: int) -> dict[str, dict]:
    """Median wall seconds and highest peak MB of each side's ``runs`` runs (``side(run)`` returns
    one run's seconds and peak), the sides taking turns run by run: first one, then the other, then
    the other way round. Interleaved because, with one side's runs all before the other's, the side
    that ran first was slower whatever its code (the same code on both sides came out at 0.91x)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for run in range(runs):
        for name in list(sides) if run % 2 == 0 else list(reversed(sides)):
            samples[name].append(sides[name](run))
    return {
        name: {"seconds": statistics.median(s for s, _ in taken), "peak_mb": max(m for _, m in taken)}
        for name, taken in samples.items()
    }


def print_rows(rows: dict[str, dict], extra: dict[str, Callable[[dict], str]]) -> None:
    """A table of each row's median seconds, highest peak and ``extra`` columns, then the rows as JSON."""
    columns = {"seconds": lambda row: f"{row['seconds']:.1f}", "peak MB": lambda row: f"{row['peak_mb']:.0f}"}
    columns |= extra
    print(f"{'':18}" + "".join(f" {title:>8}" for title in columns))
    for name, row in rows.items():
        print(f"{name:18}" + "".join(f" {cell(row):>8}" for cell in columns.values()))
    print(json.dumps(rows))


def sides(codes: dict[str, tuple[Path, dict]], scratch: Path, setup: Path, timed: Path, runs: int) -> dict:
    """Each side's setup run, then its timed runs taking turns with the other's."""
    homes = {name: scratch / f"side-{n}" for n, name in enumerate(codes)}
    envs, rows = {}, {}
    for name, (code, extra) in codes.items():
        envs[name] = {**user_env(homes[name], homes[name] / "unused"), **extra}
        _, _, stderr = index(code, envs[name], setup, homes[name] / "setup-data")
        rows[name] = {
            "int8": next((line for line in stderr.splitlines() if line.startswith("int8 check")), "")
        }

    def side(name: str, code: Path) -> Callable[[int], tuple[float, float]]:
        return lambda run: index(code, envs[name], timed, homes[name] / f"data-{run}")[:2]

    timings = take_turns({name: side(name, code) for name, (code, _) in codes.items()}, runs)
    return {name: rows[name] | timings[name] for name in codes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="an earlier commit to time beside this code")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precision", help="SPYGLASS_PRECISION for this code's side (default: auto)")
    args = parser.parse_args()
    precision = {"SPYGLASS_PRECISION": args.precision} if args.precision else {}
    photos = sorted(FLICKR.glob("*.jpg"))
    if len(photos) < 2 * args.photos:
        raise SystemExit(f"{FLICKR} needs {2 * args.photos} photos (see ../shared/data/README.md)")
    with tempfile.TemporaryDirectory(prefix="spyglass-index-bench-") as tmp:
        scratch = Path(tmp)
        setup = linked(scratch / "setup", photos[: args.photos])
        timed = linked(scratch / "timed", photos[args.photos : 2 * args.photos])
        codes = {args.baseline: (archived_code(args.baseline, scratch), {}), "this code": (ROOT, precision)}
        rows = sides(codes, scratch, setup, timed, args.runs)
    base = rows[args.baseline]["seconds"]
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; {args.photos} photos, median of {args.runs} runs")
    print_rows(
        rows, {"x base": lambda row: f"{row['seconds'] / base:.2f}", "export check": lambda row: row["int8"]}
    )


if __name__ == "__main__":
    main()
