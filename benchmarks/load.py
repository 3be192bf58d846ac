"""Concurrent searchers and askers against ``spyglass serve`` on 127.0.0.1, during and after an ingest.

Sets up the default model (ViT-B-32, random weights in a hub-cache layout), a catalog of
--items clustered 512-d image vectors (``store.populate``) and ``spyglass serve`` on it.
Phase 1: --searchers and --askers threads send requests for --seconds while the server
indexes --photos (a folder of real photos, through ``POST /v1/sources``). Phase 2: the
same searchers alone on the otherwise idle server. Prints requests/s, p50/p99 and errors
for each kind of request in each phase.

    python benchmarks/load.py --items 100000 --seconds 30

Target on the dev machine: 0 errors; search p99 < 200 ms when the machine is otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
from cli import SPYGLASS, cpu_name, user_env
from store import populate

from spyglass import discovery
from spyglass.defaults import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]
WORDS = "dog beach child ball red car street man rock wall people cafe table bicycle snow river".split()


class Tally:
    """Latencies and errors per kind of request, shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error:
                self.errors[kind].append(error)
            else:
                self.latency[kind].append(seconds)


def worker(kind: str, url: str, stop: float, tally: Tally, seed: int) -> None:
    path, field = ("/v1/search", "text") if kind == "search" else ("/v1/ask", "question")
    with httpx.Client(base_url=url, timeout=120) as client:
        n = 0
        while time.monotonic() < stop:
            words = " ".join(WORDS[(seed + n + i) % len(WORDS)] for i in range(3))
            body = {field: f"a photo of {words} {n}"}  # no two requests alike: nothing is cached
            started = time.perf_counter()
            try:
                response = client.post(path, json=body)
                error = None if response.status_code == 200 else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            tally.record(kind, time.perf_counter() - started, error)
            n += 1


def phase(url: str, seconds: float, searchers: int, askers: int) -> Tally:
    tally, stop = Tally(), time.monotonic() + seconds
    kinds = ["search"] * searchers + ["ask"] * askers
    threads = [threading.Thread(target=worker, args=(k, url, stop, tally, n)) for n, k in enumerate(kinds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def report(name: str, tally: Tally, seconds: float) -> None:
    for kind in sorted(set(tally.latency) | set(tally.errors)):
        samples = sorted(tally.latency[kind])
        errors = tally.errors[kind]
        p50 = 1000 * statistics.median(samples) if samples else float("nan")
        p99 = 1000 * samples[min(len(samples) - 1, int(0.99 * len(samples)))] if samples else float("nan")
        print(
            f"{name:26} {kind:7} {len(samples) / seconds:8.1f} req/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
            f"  errors {len(errors)}" + (f" (first: {errors[0]})" if errors else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "flickr8k-1k")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--searchers", type=int, default=4)
    parser.add_argument("--askers", type=int, default=1)
    args = parser.parse_args()
    if not args.photos.exists():
        raise SystemExit(f"{args.photos} is absent (see ../shared/data/README.md)")

    with tempfile.TemporaryDirectory(prefix="spyglass-load-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        print(f"catalog: {args.items:,} items built in {populate(data_dir, args.items, DEFAULT_MODEL):.0f} s")
        env = {
            **user_env(root, data_dir),
            "SPYGLASS_API__ALLOWED_ROOTS": json.dumps([str(args.photos.resolve())]),
        }
        server = subprocess.Popen(
            [str(SPYGLASS), "serve", "--port", "8932"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while (found := discovery.find(data_dir)) is None:
                if server.poll() is not None:
                    raise SystemExit("spyglass serve exited before it announced itself")
                time.sleep(0.1)
            url = found.url
            httpx.post(f"{url}/v1/search", json={"text": "warm up"}, timeout=300)
            job = httpx.post(
                f"{url}/v1/sources", json={"path": str(args.photos.resolve())}, timeout=60
            ).json()
            print(f"{cpu_name()}, {os.cpu_count()} CPUs; {args.searchers} searchers, {args.askers} askers")
            report("during ingest", phase(url, args.seconds, args.searchers, args.askers), args.seconds)
            state = httpx.get(f"{url}/v1/jobs/{job['job_id']}", timeout=60).json()
            print(f"{'':26} ingest job: {state['state']}")
            while state["state"] in ("queued", "running"):
                time.sleep(1)
                state = httpx.get(f"{url}/v1/jobs/{job['job_id']}", timeout=60).json()
            added = (state.get("report") or {}).get("added")
            print(f"{'':26} ingest finished: {state['state']}, {added} photos added")
            report("idle (searchers only)", phase(url, args.seconds, args.searchers, 0), args.seconds)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
