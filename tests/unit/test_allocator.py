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


# What glibc has mapped on its own (mallinfo2's hblkhd) grows when a 4 MB buffer is allocated: after
# a 20 MB mapped buffer was freed, glibc's threshold is 20 MB, and 4 MB come from the heap (glibc
# also serves a big buffer from free heap space first, so the held buffer is allocated first).
MAPPED = """
import ctypes, sys
import numpy as np
from spyglass.allocator import big_buffers_mapped

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info

def mapped_for_4mb():
    before = libc.mallinfo2().hblkhd
    buffer = np.ones(4 << 20, np.uint8)
    grown = libc.mallinfo2().hblkhd - before
    del buffer
    return grown

np.ones(20 << 20, np.uint8)  # mapped, then freed at once
if sys.argv[1] == "held":
    with big_buffers_mapped():
        with big_buffers_mapped():  # a second reader's page, read meanwhile
            pass
        first = mapped_for_4mb()
else:
    first = mapped_for_4mb()
print(first, mapped_for_4mb())
"""


def mapped_for_4mb(mode: str) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run(
        [sys.executable, "-c", MAPPED, mode], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first, after = map(int, done.stdout.split())
    return first, after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_big_buffers_are_mapped_while_a_page_is_read_and_not_after():
    assert mapped_for_4mb("plain") == (0, 0)  # the check can fail: glibc's own threshold had risen
    first, after = mapped_for_4mb("held")
    assert first >= 4 << 20  # mapped, until the last of the two readers left
    assert after == 0  # glibc's ceiling again: the heaps serve big buffers outside page reads


def test_a_users_malloc_mmap_threshold_is_left_alone(monkeypatch):
    from spyglass import allocator

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    calls = []
    monkeypatch.setattr(allocator, "_mallopt", lambda *args: calls.append(args) or True)
    with allocator.big_buffers_mapped():
        pass
    assert calls == []
