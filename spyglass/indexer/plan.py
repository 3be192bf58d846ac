"""Compare a scan with the catalog: what to skip, touch, move, copy, load or delete.

Cheap checks first: a file whose size and mtime match its row is skipped without
reading it. Otherwise its SHA-256 decides: same content as before (touched), the
content of a document that vanished from this source (renamed: the row moves,
vectors stay), the content of any other indexed document (copied: no re-encoding),
or new content to load; a second file with content already being loaded in this run
is copied from the first once that is indexed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from spyglass.indexer.walk import FileEntry, Problem
from spyglass.store import Snapshot


@dataclass
class Plan:
    unchanged: int = 0
    touched: list[tuple[int, FileEntry]] = field(default_factory=list)
    renamed: list[tuple[int, FileEntry]] = field(default_factory=list)
    copies: list[tuple[int, FileEntry, str]] = field(default_factory=list)
    to_load: list[tuple[FileEntry, str | None]] = field(default_factory=list)
    # same content as a file loaded in this very run: copied from it once it is indexed
    later_copies: list[tuple[FileEntry, str]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def make_plan(
    snapshot: Snapshot,
    source_id: int,
    entries: list[FileEntry],
    problems: list[Problem],
    *,
    prune: bool = True,
) -> Plan:
    """Decide what to do with each scanned file; ``prune`` deletes rows of files no longer found."""
    plan = Plan(problems=list(problems))
    existing = snapshot.documents_of(source_id)
    stale = snapshot.stale_documents()
    seen = {entry.key for entry in entries} | {p.key for p in problems}
    vanished = {
        row["content_hash"]: row
        for path, row in existing.items()
        if path not in seen and row["status"] == "indexed" and row["content_hash"]
    }
    loading: set[str] = set()
    for entry in entries:
        row = existing.get(entry.key)
        if (
            row
            and row["id"] not in stale
            and row["size"] == entry.size
            and row["mtime"] == entry.mtime
            and row["status"] in ("indexed", "error")
        ):
            plan.unchanged += 1
            continue
        try:
            digest = file_hash(entry.path)
        except OSError as exc:
            plan.problems.append(Problem(entry.path, f"cannot read file: {exc.strerror or exc}"))
            continue
        if row and row["content_hash"] == digest and row["status"] == "indexed" and row["id"] not in stale:
            plan.touched.append((row["id"], entry))
        elif digest in vanished and vanished[digest]["id"] not in stale:
            plan.renamed.append((vanished.pop(digest)["id"], entry))
        elif twin := next((d for d in snapshot.documents_by_hash(digest) if d["id"] not in stale), None):
            plan.copies.append((twin["id"], entry, digest))
        elif digest in loading:
            plan.later_copies.append((entry, digest))
        else:
            loading.add(digest)
            plan.to_load.append((entry, digest))
    if prune:
        moved = {doc for doc, _ in plan.renamed}
        plan.deleted = [
            row["id"] for path, row in existing.items() if path not in seen and row["id"] not in moved
        ]
    return plan
