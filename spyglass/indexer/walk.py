"""Find the files of a source: recursive, include/exclude globs, hidden files and folders skipped.

Problems met on the way (broken symlinks, unreadable folders, pipes and devices,
links out of the allowed folders) are returned, not raised, so one bad entry never
stops a scan and every skipped file is reported.
"""

from __future__ import annotations

import fnmatch
import os
import stat as stat_module
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spyglass.paths import path_bytes, path_text


@dataclass(frozen=True)
class FileEntry:
    path: Path
    size: int
    mtime: float

    @property
    def key(self) -> str:
        """The path as the catalog records and shows it (see ``spyglass.paths``)."""
        return path_text(self.path)

    @property
    def raw(self) -> bytes | None:
        return path_bytes(self.path)


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    @property
    def key(self) -> str:
        return path_text(self.path)


def walk(
    root: Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    confine: Sequence[Path] | None = None,
) -> tuple[list[FileEntry], list[Problem]]:
    """Files under ``root`` (or ``root`` itself if it is a file), sorted by path.

    Globs match the path relative to ``root`` or the bare file name, so ``*.jpg`` and
    ``2023/**`` both work. With ``confine`` (the server's allowed roots), a file whose
    real path (symlinks resolved) lies outside all of them is reported, never read.
    """
    root = root.expanduser()
    roots = [Path(os.path.realpath(r)) for r in confine] if confine is not None else None
    if root.is_file() or (root.is_symlink() and not root.is_dir()):
        return _entry(root, [], [], roots)
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
            _entry(path, entries, problems, roots)
    return entries, problems


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """True when ``path``'s real location (every symlink resolved) is within one of ``roots``.

    The one rule for "allowed": applied to the folder a client names and to every file
    found in it, since a link inside an allowed folder can point anywhere.
    """
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(root) for root in roots)


def confined(raw: str, roots: Sequence[Path] | None) -> Path:
    """The real path of a path a client names (``~``, ``..`` and symlinks resolved), checked.

    Raises PermissionError when it lies outside ``roots`` (None: no limit, empty: nothing is
    allowed) and FileNotFoundError when it does not exist; both messages are for the client.
    """
    path = Path(os.path.realpath(os.path.expanduser(raw)))
    if roots is not None:
        if not roots:
            raise PermissionError("no allowed roots are configured on this server (SPYGLASS_ALLOWED_ROOTS)")
        if not inside(path, [Path(os.path.realpath(root)) for root in roots]):
            raise PermissionError(f"{raw} is outside the allowed roots")
    if not path.exists():
        raise FileNotFoundError(f"{raw} does not exist")
    return path


def _entry(
    path: Path, entries: list[FileEntry], problems: list[Problem], roots: Sequence[Path] | None = None
) -> tuple[list[FileEntry], list[Problem]]:
    if roots is not None and not inside(path, roots):
        problems.append(Problem(path, "links to a file outside the allowed folders; not indexed"))
        return entries, problems
    try:
        stat = path.stat()
    except FileNotFoundError:
        problems.append(
            Problem(path, "broken symbolic link" if path.is_symlink() else "file vanished during the scan")
        )
    except OSError as error:
        problems.append(Problem(path, f"cannot read file: {error.strerror or error}"))
    else:
        if stat_module.S_ISREG(stat.st_mode):
            entries.append(FileEntry(path, stat.st_size, stat.st_mtime))
        else:
            problems.append(Problem(path, f"not a regular file ({_file_type(stat.st_mode)}); skipped"))
    return entries, problems


def _file_type(mode: int) -> str:
    for test, name in (
        (stat_module.S_ISFIFO, "a named pipe"),
        (stat_module.S_ISSOCK, "a socket"),
        (stat_module.S_ISCHR, "a character device"),
        (stat_module.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a special file"


def _matches(relative: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)
