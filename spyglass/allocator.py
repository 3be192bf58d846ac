"""glibc's malloc arenas, capped in Spyglass's processes.

glibc gives threads arenas of their own (up to eight per core), and memory freed in one stays
there for that arena's next allocations. Ingest allocates and frees large buffers from several
threads at once (OCR reads, pictures decoded, the writer), so a process holds memory that
nothing is using. A 50-page scanned PDF's ``spyglass index`` (ONNX int8, 2 cores) peaked at
903-972 MB with glibc's default (4 runs) and 869-926 MB with two arenas (6 runs), in the same
time; one arena gave 827 MB once. ``MALLOC_ARENA_MAX``, when set, is the user's choice and left
alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap the arenas that threads may use from now on (call it before threads start).

    False where nothing was changed: not glibc, or ``MALLOC_ARENA_MAX`` set by the user.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return False
