"""What to export for a model, once: the one place that decides it (``Models`` calls it).

A CLIP model gets its text tower (text queries) and then its image tower (ingest, image
queries; fp32 and, when it passes its check, int8); a model that runs in torch's bf16 on the
CPU (``auto`` on AMX CPUs) gets its image tower traced in bf16 (``traced``) after its first
ingest. Models that cannot be exported exactly (a ``hf:`` model, a tokenizer or preprocessing
not reproduced) are used through torch as before.

On a model's first use the export runs in a child process (``export_in_child``, this module's
``__main__``): exporting holds the torch model, its traced graph and both ONNX graphs at once
(~3.2 GB for ViT-B-32), and all of that is returned to the system when the child exits, so
the ingest or server that asked never imports torch.
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spyglass.encoders.fast.cache import exported
from spyglass.encoders.fast.image_tower import read_image_manifest
from spyglass.encoders.fast.text_tower import KIND as TEXT_KIND

if TYPE_CHECKING:
    from spyglass.encoders.base import Encoder
    from spyglass.settings import EncoderSettings

log = logging.getLogger(__name__)


def missing(cache_dir: Path, model_id: str, *, images: bool) -> bool:
    """Whether ``model_id`` lacks its text tower export (or, with ``images``, its image tower)."""
    if not exported(cache_dir, model_id, TEXT_KIND):
        return True
    return images and read_image_manifest(cache_dir, model_id) is None


def _untraced(encoder: Encoder, cache_dir: Path) -> bool:
    """Whether ``encoder`` runs on the CPU in a precision only torch has (bf16), where ingest and
    serve load its traced image tower (``traced``), and that has not been traced yet."""
    from spyglass.encoders.fast.cache import MANIFEST
    from spyglass.encoders.fast.traced import precision_name, traced_dir

    precision = precision_name(encoder.dtype)
    if encoder.device.type != "cpu" or precision == "fp32":
        return False
    return not (traced_dir(cache_dir, encoder.model_id, precision) / MANIFEST).exists()


def export_clip(
    encoder: Encoder, cache_dir: Path, *, remember: Sequence[str], images: bool, progress: bool
) -> None:
    """Export what ``encoder``'s model lacks; an optional speed-up, so a failure is logged, never raised.

    ``remember``: texts whose embeddings ship with the text tower (the retriever's fixed queries).
    """
    if not encoder.text_exportable:
        return
    traced = _untraced(encoder, cache_dir)
    if not (traced or missing(cache_dir, encoder.model_id, images=images)):
        return
    from spyglass.encoders.fast.image_export import export_image_tower, export_traced_tower
    from spyglass.encoders.fast.text_export import export_text_tower

    if progress:
        print("preparing fast starts for this model (once per model)", file=sys.stderr)
    try:
        export_text_tower(encoder, cache_dir, remember=remember)
        if images:
            export_image_tower(encoder, cache_dir)
        if traced:
            export_traced_tower(encoder, cache_dir)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up must never fail an ingest
        log.warning("model export failed, later starts will load the full model: %s", exc)


def export_in_child(spec: str, settings: EncoderSettings, *, remember: Sequence[str]) -> None:
    """Export ``spec``'s model in a child process when its exports are missing.

    A model that cannot be exported (``hf:``) is left alone. A failed child is only logged: the
    caller then loads the torch model, which raises the clear error when its weights are absent.
    """
    from spyglass.encoders import known_model_id, parse_spec

    if parse_spec(spec).backend == "hf":
        return
    model_id = known_model_id(spec, settings)
    if model_id is not None and not missing(settings.cache_dir, model_id, images=True):
        return
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", __name__, spec],
        input=json.dumps({"settings": settings.model_dump(mode="json"), "remember": list(remember)}),
        text=True,
        stdout=subprocess.PIPE,
        check=False,
    )
    model_id = known_model_id(spec, settings)  # a builtin model is named once the child trained it
    if (
        done.returncode == 0
        and model_id is not None
        and not missing(settings.cache_dir, model_id, images=True)
    ):
        seconds, peak = time.monotonic() - started, done.stdout.split()[-1]
        print(f"prepared in {seconds:.0f} s by a child process (peak {peak} MB)", file=sys.stderr)
    elif done.returncode != 3:
        log.warning(
            "the model could not be exported (exit %s); this run loads the full model", done.returncode
        )


def main() -> None:
    """The child: load ``argv[1]``'s full model with the encoder settings read from stdin, export what
    it lacks, print this process's peak resident MB. Without the model's weights it exits quietly
    (code 3): the parent's own load reports them missing, in its words."""
    from spyglass.encoders import load_encoder
    from spyglass.errors import SpyglassError
    from spyglass.settings import EncoderSettings

    asked = json.loads(sys.stdin.read())
    settings = EncoderSettings(**asked["settings"])
    try:
        encoder = load_encoder(sys.argv[1], settings)
    except SpyglassError:
        raise SystemExit(3) from None
    export_clip(encoder, settings.cache_dir, remember=asked["remember"], images=True, progress=True)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


if __name__ == "__main__":
    main()
