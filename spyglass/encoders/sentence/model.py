"""The text space's model: a sentence-embedding model, loaded through sentence-transformers.

CLIP's text tower reads 77 tokens of caption-like text; a sentence-embedding model
was trained to judge which passage answers a question. Its vectors live in their own
space (their own ``model_id`` in the store, their own index) beside the CLIP space.

A model is a hub id (looked up in the local hub cache first, downloaded only when the
hub answers) or a local directory. Whether its weights are here is decided before
sentence-transformers is imported, so a missing model costs a file lookup, not the
seconds that import takes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spyglass.encoders import hub
from spyglass.encoders.spec import fingerprint
from spyglass.errors import ModelSpecError

log = logging.getLogger(__name__)

SETTING = "SPYGLASS_TEXT__MODEL"
WEIGHTS = ["model.safetensors", "pytorch_model.bin"]


def local_path(spec: str) -> Path | None:
    """The directory ``spec`` names, when it names one (hub ids look like ``ORG/NAME``)."""
    path = Path(spec).expanduser()
    if spec.startswith(("/", ".", "~")) or path.is_dir():
        return path
    return None


def text_model_id(spec: str) -> str:
    """The ``model_id`` stored with the text space's vectors, known without loading the model.

    Hub models are named by their id; local weights by a fingerprint of their files,
    so replacing the weights in place changes the id (and re-embeds).
    """
    local = local_path(spec)
    if local is None:
        return f"text:{spec}"
    if not local.is_dir():
        raise ModelSpecError(f"text model directory {local} does not exist")
    return f"text:local/{fingerprint(local)}"


def weights_present(spec: str) -> bool:
    """Whether the model can be loaded without the network."""
    local = local_path(spec)
    if local is not None:
        return local.is_dir()
    return hub.cached_file(spec, WEIGHTS) is not None


class SentenceEncoder:
    """Embeds passages and questions as L2-normalised float32 rows of the text space."""

    def __init__(self, model, model_id: str, *, batch_size: int = 64) -> None:
        self.model, self.model_id, self.batch_size = model, model_id, batch_size
        self.dtype = next(model.parameters()).dtype
        self.dim = int(model.get_embedding_dimension())

    @classmethod
    def load(cls, spec: str, *, device: str = "auto", precision: str = "auto", batch_size: int = 64):
        """Load ``spec`` (hub id or directory); one clear sentence when its weights cannot be had."""
        local = local_path(spec)
        model_id = text_model_id(spec)  # raises for a directory that does not exist
        cached = local is not None or weights_present(spec)
        if not cached and hub.is_offline():
            raise hub.unavailable(spec, f"{hub.hf_cache_dir()} for {spec}", setting=SETTING)
        from spyglass._compat import ensure_torchvision_importable

        ensure_torchvision_importable()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        from spyglass.encoders.precision import resolve_device, resolve_dtype

        transformers_logging.disable_progress_bar()  # the CLI shows its own progress, not a loader's
        torch_device = resolve_device(device)
        # Measured (benchmarks/text.py): on a CPU with AVX512-BF16 but no AMX, MiniLM ran 0.7x as fast
        # in bf16 as in fp32 on real chunks, unlike CLIP's image tower; so auto means fp32 on CPUs.
        if precision == "auto" and torch_device.type == "cpu":
            precision = "fp32"
        dtype = resolve_dtype(precision, torch_device)
        try:
            model = SentenceTransformer(
                str(local or spec),
                device=str(torch_device),
                local_files_only=cached,
            )
        except (OSError, ValueError) as exc:
            raise ModelSpecError(f"{spec} is not a loadable sentence-embedding model ({exc}).") from None
        model = model.to(dtype).eval()
        log.info("text space: %s (%d dims, %s)", spec, model.get_embedding_dimension(), dtype)
        return cls(model, model_id, batch_size=batch_size)

    def encode_texts(self, texts: Sequence[str], *, ensemble: bool = False) -> np.ndarray:
        """Embed texts (``ensemble`` is CLIP's prompt averaging and means nothing here)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
