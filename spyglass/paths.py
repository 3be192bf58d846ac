"""File paths as data: a name need not be valid UTF-8 on a real disk.

Old Windows/Latin-1 archives and camera cards hold names whose bytes are not UTF-8;
Python hands them over with surrogate escapes, which no text encoder accepts (SQLite,
JSON, a terminal). Spyglass keeps such a path twice: as text that shows the odd bytes
escaped (``bad\\xff.txt``: readable, and folder prefixes still match), used as the
catalog key and shown to users; and as its exact bytes, used to open the file again.
"""

from __future__ import annotations

import os
from pathlib import Path


def path_text(path: str | os.PathLike) -> str:
    """``path`` as valid text: bytes that are not UTF-8 appear as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def path_bytes(path: str | os.PathLike) -> bytes | None:
    """The exact bytes of ``path`` when its text form had to escape some; None when the text is exact."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def real_path(text: str, raw: bytes | None) -> Path:
    """The file a catalog row names: its exact bytes when recorded, else its text."""
    return Path(os.fsdecode(raw)) if raw else Path(text)
