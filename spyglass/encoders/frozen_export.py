"""Write the frozen export that ``frozen.FrozenEncoder`` reads (see there for why).

Runs where the full open_clip model is loaded anyway (after an ingest), once its text
tower has been exported. The image tower is traced as it runs (same precision), and
nothing is published until, on probe images of several sizes and modes, the
torchvision-free transform gave exactly the original transform's pixels and the traced
tower, loaded back from disk, the original's embeddings.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spyglass.encoders.frozen import (
    MODULE,
    FrozenEncoder,
    ImageManifest,
    dtype_name,
    image_export_dir,
    load_module,
)
from spyglass.encoders.openclip import OpenClipEncoder
from spyglass.encoders.text_tower import MIN_COSINE, TextTower, publish
from spyglass.encoders.transform import PixelTransform

log = logging.getLogger(__name__)

# (width, height, mode): landscape, portrait, exact, smaller than the model's input, extreme, grey, alpha.
PROBES = (
    (640, 480, "RGB"),
    (333, 500, "RGB"),
    (224, 224, "RGB"),
    (61, 97, "RGB"),
    (900, 120, "L"),
    (257, 256, "RGBA"),
)


def export_frozen(encoder: OpenClipEncoder, cache_dir: Path) -> Path | None:
    """Export ``encoder``'s image tower beside its text tower unless it is there; None when it cannot
    (not on CPU, no text-tower export, a preprocessing not reproduced) or does not match."""
    preprocess_cfg = getattr(encoder.model.visual, "preprocess_cfg", None)  # open_clip sets it on load
    transform = PixelTransform.of(preprocess_cfg) if preprocess_cfg else None
    if encoder.device.type != "cpu" or transform is None:
        return None
    text = TextTower.open(cache_dir, encoder.model_id)
    if text is None:
        return None
    target = image_export_dir(cache_dir, encoder.model_id, encoder.dtype)
    return publish(target, lambda work: _write(encoder, transform, text, work))


def _write(encoder: OpenClipEncoder, transform: PixelTransform, text: TextTower, work: Path) -> bool:
    images = probe_images()
    pixels = torch.stack([encoder.preprocess(image) for image in images])
    if not torch.equal(pixels, torch.stack([transform(image) for image in images])):
        log.warning("not freezing %s: its image preprocessing could not be reproduced", encoder.model_id)
        return False
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer notes
        traced = torch.jit.trace(encoder.model.visual, pixels[:2].to(encoder.dtype))
        traced.save(str(work / MODULE))
    manifest = ImageManifest(
        model_id=encoder.model_id,
        dtype=dtype_name(encoder.dtype),
        torch=torch.__version__,
        dim=encoder.dim,
        image_size=encoder.image_size,
        logit_scale=encoder.logit_scale,
        transform=asdict(transform),
        min_cosine=0.0,
    )
    frozen = FrozenEncoder(load_module(work / MODULE), manifest, text, dtype=encoder.dtype)
    cosine = _cosine(frozen, encoder, images)
    if cosine < MIN_COSINE:
        log.warning("not freezing %s: cosine %.5f < %s", encoder.model_id, cosine, MIN_COSINE)
        return False
    replace(manifest, min_cosine=round(cosine, 6)).write(work)
    return True


def _cosine(frozen: FrozenEncoder, encoder: OpenClipEncoder, images: list[Image.Image]) -> float:
    """The lowest cosine between the frozen and the original image embeddings (batches of 1 and all)."""
    original = encoder.encode_images(images)
    ours = np.concatenate([frozen.encode_images(images[:1]), frozen.encode_images(images[1:])])
    return float((ours * original).sum(axis=1).min())


def probe_images(seed: int = 0) -> list[Image.Image]:
    """Noisy gradients in the ``PROBES`` sizes and modes: every resize, crop and channel path is taken."""
    rng = np.random.default_rng(seed)
    images = []
    for width, height, mode in PROBES:
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        noise = rng.normal(0, 40, (height, width, 3)).astype(np.float32)
        array = np.clip(ramp + noise + rng.uniform(0, 80, 3), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(array).convert(mode))
    return images
