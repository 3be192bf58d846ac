"""Find the files of a source: recursive, include/exclude globs, hidden files and folders skipped.

Problems met on the way (broken symlinks, unreadable folders) are returned, not
raised, so one bad entry never stops a scan.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileEntry:
    path: Path
    size: int
    mtime: float


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str


def walk(
    root: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[FileEntry], list[Problem]]:
    """Files under ``root`` (or ``root`` itself if it is a file), sorted by path.

    Globs match the path relative to ``root`` or the bare file name, so ``*.jpg`` and
    ``2023/**`` both work.
    """
    root = root.expanduser()
    if root.is_file() or (root.is_symlink() and not root.is_dir()):
        return _entry(root, [], [])
    entries: list[FileEntry] = []
    problems: list[Problem] = []

    def on_error(error: OSError) -> None:
        problems.append(
            Problem(Path(error.filename or root), f"cannot read folder: {error.strerror or error}")
        )

    for folder, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if include and not _matches(relative, name, include):
                continue
            if exclude and _matches(relative, name, exclude):
                continue
            _entry(path, entries, problems)
    return entries, problems


def _entry(
    path: Path, entries: list[FileEntry], problems: list[Problem]
) -> tuple[list[FileEntry], list[Problem]]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        problems.append(
            Problem(path, "broken symbolic link" if path.is_symlink() else "file vanished during the scan")
        )
    except OSError as error:
        problems.append(Problem(path, f"cannot read file: {error.strerror or error}"))
    else:
        if path.is_file():
            entries.append(FileEntry(path, stat.st_size, stat.st_mtime))
    return entries, problems


def _matches(relative: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)
