"""What ``precision=auto`` means for a model on this machine: the fastest precision that passed.

Speeds differ by CPU (int8 runs on VNNI and AMX integer kernels where the CPU has them; ViT-B-32
ran about 1.4x faster in int8 than in fp32 on one AMX CPU), so they are measured, once per
machine, on the export's probe images: at export time by the process that exported, or by the
first process on another machine that reads the same cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)


def machine() -> str:
    """This CPU, as the measurement's key: its model name, instruction flags and core count."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = platform.processor()
    lines = [line for line in info.splitlines() if line.startswith(("model name", "flags"))][:2]
    return hashlib.sha256("\n".join([*lines, str(os.cpu_count())]).encode()).hexdigest()[:16]


def _path(directory: Path) -> Path:
    return directory / f"speed-{machine()}.json"


def record(directory: Path, seconds: dict[str, float]) -> None:
    """Keep the seconds each precision took on the same images, on this machine."""
    _path(directory).write_text(json.dumps(seconds))


def measured(directory: Path) -> dict[str, float] | None:
    try:
        return json.loads(_path(directory).read_text())
    except (OSError, ValueError):
        return None


def fastest(seconds: dict[str, float], published: set[str]) -> str:
    """The quickest published precision; fp32 when nothing else was published."""
    candidates = {precision: time for precision, time in seconds.items() if precision in published}
    return min(candidates, key=candidates.get) if candidates else "fp32"


def choose(cache_dir: Path, model_id: str, *, threads: int = 0) -> str:
    """``auto``'s precision for ``model_id``'s image tower here (measured now if never on this CPU)."""
    import time

    import numpy as np

    from spyglass.encoders.fast.image_tower import FastEncoder, read_image_manifest

    found = read_image_manifest(cache_dir, model_id)
    if found is None or len(found[1].checks) < 2:
        return "fp32"
    directory, manifest = found
    seconds = measured(directory)
    if seconds is None:
        pixels = np.random.default_rng(0).normal(size=(16, 3, manifest.image_size, manifest.image_size))
        seconds = {}
        for precision in manifest.checks:
            encoder = FastEncoder.open(cache_dir, model_id, precision, batch_size=16, threads=threads)
            if encoder is None:
                continue
            encoder.encode_pixels(pixels)  # warm-up
            started = time.perf_counter()
            encoder.encode_pixels(pixels)
            seconds[precision] = time.perf_counter() - started
        record(directory, seconds)
    return fastest(seconds, set(manifest.checks))


def precision_for(cache_dir: Path, model_id: str, wanted: str, *, threads: int = 0) -> str:
    """The image tower precision to embed with: ``wanted`` (a collection's own, else the setting),
    ``auto`` resolved here, and int8 only where it was published (a failed check means fp32)."""
    if wanted == "auto":
        return choose(cache_dir, model_id, threads=threads)
    if wanted != "int8":
        return "fp32"
    from spyglass.encoders.fast.image_tower import read_image_manifest

    found = read_image_manifest(cache_dir, model_id)
    if found is not None and "int8" not in found[1].checks:
        log.warning("%s has no int8 image tower (its check failed); embedding in fp32", model_id)
        return "fp32"
    return "int8"
