"""``spyglass backup`` and ``restore``: a collection's irreplaceable state, copied while it serves.

What is copied is what cannot be made again from the files a user indexed: the catalog (months
of OCR, labels, tags, model versions), the uploads (the only copy of what was sent over HTTP)
and the tuned-model folders its model versions name. The vector indexes are derived from the
catalog and are rebuilt when the restored collection is first opened.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from spyglass import __version__, discovery
from spyglass.errors import SpyglassError
from spyglass.runtime.collections import CONFIG as OWN_SETTINGS  # a named collection's own settings
from spyglass.store import Store
from spyglass.store.backup import copy_catalog, problems

CATALOG = "catalog.sqlite3"
MANIFEST = "backup.json"


def backup(data_dir: Path, target: Path, progress: Callable[[str], None] = lambda _: None) -> dict:
    """Copy the collection in ``data_dir`` into ``target`` (a new or empty folder); returns its manifest."""
    if not (data_dir / CATALOG).is_file():
        raise SpyglassError(f"There is no collection in {data_dir} to back up.")
    if target.exists() and any(target.iterdir()):
        raise SpyglassError(f"{target} is not empty; back up into a new folder.")
    target.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    copy_catalog(
        data_dir / CATALOG, target / CATALOG, lambda done, total: progress(f"catalog {done}/{total} pages")
    )
    if (data_dir / "uploads").is_dir():
        shutil.copytree(data_dir / "uploads", target / "uploads")
    if (data_dir / OWN_SETTINGS).is_file():
        shutil.copyfile(data_dir / OWN_SETTINGS, target / OWN_SETTINGS)
    models = {}
    for name, version in Store.recorded_models(target).items():  # read from the copy: what it refers to
        folder = Path(version.get("spec", ""))
        if folder.is_absolute() and folder.is_dir() and str(folder) not in models:
            models[str(folder)] = f"models/{len(models)}-{folder.name}"
            shutil.copytree(folder, target / models[str(folder)])
            progress(f"model folder of the {name} version: {folder}")
    manifest = {
        "spyglass": __version__,
        "created": time.time(),
        "seconds": round(time.monotonic() - started, 2),
        "models": models,
        "bytes": sum(path.stat().st_size for path in target.rglob("*") if path.is_file()),
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def restore(source: Path, data_dir: Path, served_from: Path | None = None) -> dict:
    """Replace the collection in ``data_dir`` with the backup in ``source``, after checking it.

    ``served_from``: the data directory a server of this collection announces itself in (a named
    collection's server runs for the whole data directory)."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise SpyglassError(f"{source} is not a Spyglass backup (no {MANIFEST}).")
    found = problems(source / CATALOG)
    if found:
        raise SpyglassError(
            f"The backup in {source} fails its checks, nothing was replaced: {'; '.join(found)}"
        )
    if (server := discovery.find(served_from or data_dir)) is not None:
        raise SpyglassError(
            f"spyglass serve (pid {server.pid}) is using {data_dir}; stop it before restoring."
        )
    manifest = json.loads(manifest_path.read_text())
    for original, copy in manifest["models"].items():
        if not Path(original).exists():  # versions name their model folders by absolute path
            shutil.copytree(source / copy, original)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Copied beside the collection first: a copy that fails (a full disk) leaves the collection whole.
    incoming = data_dir / ".restoring"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir()
    shutil.copyfile(source / CATALOG, incoming / CATALOG)
    if (source / OWN_SETTINGS).is_file():
        shutil.copyfile(source / OWN_SETTINGS, incoming / OWN_SETTINGS)
    if (source / "uploads").is_dir():
        shutil.copytree(source / "uploads", incoming / "uploads")
    for stale in ("index", "uploads", f"{CATALOG}-wal", f"{CATALOG}-shm"):
        path = data_dir / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for name in (CATALOG, "uploads", OWN_SETTINGS):
        if (incoming / name).exists():
            (incoming / name).replace(data_dir / name)
    incoming.rmdir()
    return manifest
