"""The export cache: where each kind of fast form lives, how one is published, and how it is read.

Every export is keyed by what made it (a model id, and for image towers the precision and
the exporter's version) and written into a work directory that is renamed into place only
once it is complete and checked: a half-written export is never read, and when two processes
export the same model at once the first rename wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

MIN_COSINE = 0.999  # what an fp32 export must reach against its model on probe inputs
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
M = TypeVar("M")  # an export's manifest class (a dataclass with model_id and format)


def export_dir(cache_dir: Path, model_id: str, kind: str) -> Path:
    """Where the ``kind`` of export of ``model_id`` lives (model ids hold slashes and colons; the hash
    does not)."""
    return cache_dir / kind / hashlib.sha256(model_id.encode()).hexdigest()[:16]


def exported(cache_dir: Path, model_id: str, kind: str) -> bool:
    """Whether a checked ``kind`` of export of ``model_id`` has been published."""
    return (export_dir(cache_dir, model_id, kind) / MANIFEST).exists()


def read_manifest(directory: Path, kind: type[M], model_id: str) -> M | None:
    """The published manifest of ``model_id``'s export in ``directory``, if it is there and current."""
    try:
        manifest = kind(**json.loads((directory / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if manifest.model_id != model_id or manifest.format != kind.format:
        return None
    return manifest


def publish(target: Path, write: Callable[[Path], object]) -> Path | None:
    """Run ``write`` into a fresh work directory, then rename it to ``target`` if it succeeded.

    ``write`` returns something true once the export is complete and checked. The rename is
    the publication: a reader never sees a half-written export, and when two processes export
    the same model at once, the first rename wins and the other's work is dropped. A published
    export is kept whatever its manifest says, so a new manifest ``format`` must also change the
    folder's key (``export_dir``): readers refuse the old manifest, and it would never be replaced.
    """
    if (target / MANIFEST).exists():
        return target
    work = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if not write(work):
            return None
        try:
            work.rename(target)
        except OSError:  # another process published the same export first
            if not (target / MANIFEST).exists():
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def save_optimised(raw: Path, graph: Path, weights: str) -> None:
    """Let onnxruntime optimise the exported ``raw`` graph once and save it as ``graph``; ``raw`` is removed.

    Readers then open it with optimisation off (it would cost every cold start), and the
    weights go to the side file ``weights``, memory-mapped at load instead of parsed
    out of the protobuf (0.1 s, not 0.5, for a CLIP text tower).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(graph)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", weights)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    onnxruntime.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    raw.unlink()


def reader_options(threads: int = 0):
    """Session options for a published export that embeds queries.

    The graph was optimised when it was exported; doing it again would cost every cold start.
    The thread pool does not spin after a run: a query's embedding is one short run, and
    spinning threads would hold the cores that the search's own SQLite and FAISS work needs
    next (p50 of a CISI text query, 2 cores: 80 ms spinning, 52 ms not).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
