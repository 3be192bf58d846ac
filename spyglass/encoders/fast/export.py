"""What to export for a model, once: the one place that decides it (``Models`` calls it).

A CLIP model gets its text tower (text queries) and then its image tower (ingest, image
queries; fp32 and, when it passes its check, int8). Models that cannot be exported exactly (a
``hf:`` model, a tokenizer or preprocessing not reproduced) are used through torch as before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.encoders.fast.cache import exported
from spyglass.encoders.fast.image_tower import read_image_manifest
from spyglass.encoders.fast.text_tower import KIND as TEXT_KIND

if TYPE_CHECKING:
    from spyglass.encoders.base import Encoder

log = logging.getLogger(__name__)


def missing(cache_dir: Path, model_id: str, *, images: bool) -> bool:
    """Whether ``model_id`` lacks its text tower export (or, with ``images``, its image tower)."""
    if not exported(cache_dir, model_id, TEXT_KIND):
        return True
    return images and read_image_manifest(cache_dir, model_id) is None


def export_clip(
    encoder: Encoder, cache_dir: Path, *, remember: Sequence[str], images: bool, progress: bool
) -> None:
    """Export what ``encoder``'s model lacks; an optional speed-up, so a failure is logged, never raised.

    ``remember``: texts whose embeddings ship with the text tower (the retriever's fixed queries).
    """
    if not encoder.text_exportable or not missing(cache_dir, encoder.model_id, images=images):
        return
    from spyglass.encoders.fast.image_export import export_image_tower
    from spyglass.encoders.fast.text_export import export_text_tower

    if progress:
        print("preparing fast starts for this model (once per model)", file=sys.stderr)
    try:
        export_text_tower(encoder, cache_dir, remember=remember)
        if images:
            export_image_tower(encoder, cache_dir)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up must never fail an ingest
        log.warning("model export failed, later starts will load the full model: %s", exc)
