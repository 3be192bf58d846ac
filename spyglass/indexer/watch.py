"""``spyglass index --watch``: re-run the incremental index whenever files under the paths change."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from watchfiles import watch

from spyglass.indexer.indexer import IndexReport

log = logging.getLogger(__name__)


def watch_and_index(
    paths: Sequence[Path],
    run: Callable[[], list[IndexReport]],
    on_reports: Callable[[list[IndexReport]], None],
    stop_event=None,
) -> None:
    """Index once, then again after every batch of filesystem changes (watchfiles debounces them).

    Re-running the whole incremental index is cheap (unchanged files are skipped by
    size and mtime) and handles every kind of change, including renames, uniformly.
    The first index runs only once the watcher is active (its first, empty, timeout
    yield), so a change made while it runs is not missed.
    """
    started = False
    for changes in watch(
        *paths, stop_event=stop_event, recursive=True, yield_on_timeout=True, rust_timeout=200
    ):
        if not started:
            started = True
            on_reports(run())
        elif changes:
            log.info("%d changes under %s", len(changes), ", ".join(map(str, paths)))
            on_reports(run())
