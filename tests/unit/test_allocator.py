"""spyglass.allocator: glibc's malloc arenas capped, counted from glibc's own ``malloc_stats``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Eight threads allocate and free at once (C allocations: numpy buffers of 64 KB, under glibc's
# mmap threshold, so they come from arenas), then glibc prints one "Arena N:" block per arena.
SCRIPT = """
import ctypes, sys, threading
import numpy as np
from spyglass.allocator import limit_malloc_arenas
if sys.argv[1] == "capped":
    assert limit_malloc_arenas()
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(2000):
        kept = [np.empty(8192) for _ in range(8)]
        del kept
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas")
def test_threads_share_at_most_two_arenas_once_capped():
    assert arenas("default") > 2  # the check can fail: glibc gives these threads arenas of their own
    assert arenas("capped") <= 2


def test_a_users_malloc_arena_max_is_left_alone(monkeypatch):
    from spyglass.allocator import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
