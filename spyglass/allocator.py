"""glibc's malloc in Spyglass's processes: arenas capped, and a page read's big buffers mapped.

glibc gives threads arenas of their own (up to eight per core), and memory freed in one stays
there for that arena's next allocations. Ingest allocates and frees large buffers from several
threads at once (OCR reads, pictures decoded, the writer), so a process holds memory that
nothing is using. A 50-page scanned PDF's ``spyglass index`` (ONNX int8, 2 cores) peaked at
903-972 MB with glibc's default (4 runs) and 869-926 MB with two arenas (6 runs), in the same
time; one arena gave 827 MB once. ``MALLOC_ARENA_MAX``, when set, is the user's choice and left
alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator

ARENAS = 2
BIG_BUFFER = 1024 * 1024  # bytes from which a buffer is mapped on its own while a page is read
M_ARENA_MAX = -8  # mallopt's parameter numbers in glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the ceiling of glibc's own threshold (64-bit)


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap the arenas that threads may use from now on (call it before threads start).

    False where nothing was changed: not glibc, or ``MALLOC_ARENA_MAX`` set by the user.
    """
    return not os.environ.get("MALLOC_ARENA_MAX") and _mallopt(M_ARENA_MAX, arenas)


class _Held:
    """How many callers are inside ``big_buffers_mapped`` (pages read by several readers at once)."""

    lock = threading.Lock()
    count = 0


@contextlib.contextmanager
def big_buffers_mapped(threshold: int = BIG_BUFFER) -> Iterator[None]:
    """Within it, buffers of ``threshold`` bytes or more are mapped on their own (see the module
    docstring). The setting is the process's: other threads' big buffers are mapped meanwhile too.
    On leaving, the last one out sets glibc's ceiling, where its own threshold climbs anyway, so
    work outside keeps reusing big buffers from the heaps. ``MALLOC_MMAP_THRESHOLD_``, when set, is
    the user's choice and left alone."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        yield
        return
    with _Held.lock:
        _Held.count += 1
        held = _mallopt(M_MMAP_THRESHOLD, threshold)
    try:
        yield
    finally:
        with _Held.lock:
            _Held.count -= 1
            if held and not _Held.count:
                _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt``; False where it changed nothing or there is none."""
    mallopt = _glibc_mallopt()
    return mallopt is not None and bool(mallopt(parameter, value))


@functools.cache
def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, looked up once (every page read calls it twice); None without glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return None
