"""Progress: a rich bar with items/s and ETA on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class IndexProgress:
    def __init__(
        self, total: int, *, enabled: bool = True, stream: TextIO | None = None, every_s: float = 5.0
    ) -> None:
        self.total, self.done, self.items = total, 0, 0
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.started = self.last_line = time.monotonic()
        self.enabled = enabled and total > 0
        self._bar = None
        if self.enabled and self.stream.isatty():
            self._bar = Progress(
                TextColumn("indexing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files"),
                TextColumn("{task.fields[rate]} items/s"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._task = self._bar.add_task("index", total=total, rate="0.0")
            self._bar.start()

    def advance(self, files: int, items: int) -> None:
        self.done += files
        self.items += items
        rate = self.items / max(time.monotonic() - self.started, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{rate:.1f}")
        elif self.enabled and (time.monotonic() - self.last_line >= self.every_s or self.done == self.total):
            remaining = (self.total - self.done) * (time.monotonic() - self.started) / max(self.done, 1)
            print(
                f"indexed {self.done}/{self.total} files, {self.items} items ({rate:.1f} items/s, "
                f"ETA {remaining:.0f} s)",
                file=self.stream,
                flush=True,
            )
            self.last_line = time.monotonic()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
