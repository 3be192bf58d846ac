"""Write the image tower's fast forms, which ``FastEncoder`` and ``TracedEncoder`` read (see there).

Runs where the full open_clip model is loaded (the first use of a model), once its text tower
is exported. The image tower is copied in fp32 and exported with torch's dynamo ONNX exporter
(batch size dynamic). int8 is made from that graph by onnxruntime's block quantizer: int8 weights
in blocks with a scale each, and at run time activations quantized to int8 per block of each row
(``accuracy_level`` 4), so the products run on integer kernels (on one 2-core AMX CPU, at fp32's
speed); the coarsest blocks of ``INT8_BLOCKS`` that pass the check below are published. Not
onnxruntime's dynamic quantization: it quantizes a whole batch's activations with one scale, so a
picture's vector would depend on the pictures batched with it (cosine 0.9998 between batch sizes 1
and 32 for ViT-B-32), and it moves more neighbours than the check allows. Measured again on
ViT-B-32 (random weights, 2-core AMX CPU, every picture run alone, two at a time, which removes
the batch dependence): 35-48 pictures/s against 12-17 in fp32 or blocks of 32, but the ten nearest
of 200 Flickr8k photos were the same for only 90.5% of them (97% in blocks of 32), while its probe
check passed at 96.9%, so it would have been published. Not worth that. A model that runs in
torch's bf16 has its tower traced in bf16 instead (``export_traced_tower``), checked the same way
against the model.

Nothing is published until, on probe images generated here (a user's machine has no
reference photos: shapes, gradients, rendered text, noise, in several sizes and modes),

- the numpy preprocessing gave exactly the model's own transform's pixels;
- the fp32 graph, loaded back, gave the model's embeddings (cosine >= ``MIN_COSINE``);
- and, for int8 to be published beside it, int8 embeddings were within ``INT8_MIN_COSINE``
  of fp32 and each probe's ten nearest probes, as a set, were unchanged for at least
  ``INT8_SAME_NEIGHBOURS`` of them. Every check is printed; the last failed one is recorded
  when none passed, and fp32 is used.

The two graphs' speeds on this machine are measured on the same probes (``choice``).
"""

from __future__ import annotations

import copy
import logging
import shutil
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from spyglass.encoders.clip import shapes
from spyglass.encoders.clip.openclip import OpenClipEncoder
from spyglass.encoders.fast import choice
from spyglass.encoders.fast.cache import MIN_COSINE, publish, save_optimised
from spyglass.encoders.fast.dynamo import export_onnx
from spyglass.encoders.fast.image_tower import (
    FastEncoder,
    ImageManifest,
    graph_name,
    image_export_dir,
)
from spyglass.encoders.fast.pixels import PixelTransform
from spyglass.encoders.fast.text_tower import TextTower
from spyglass.encoders.fast.traced import MODULE, TracedEncoder, precision_name, traced_dir

log = logging.getLogger(__name__)

INT8_MIN_COSINE = 0.99
INT8_SAME_NEIGHBOURS = 0.95
NEIGHBOURS = 10
# Weights (and activations) per int8 scale, tried in this order until one passes the check. Coarser
# blocks run faster (ViT-B-32, batch 8, 2-core AMD EPYC without AMX: 32.3 pictures/s in blocks of
# 128 against 27.3 in blocks of 32) and stray a little further from fp32 (mean 1 - cosine on the
# probes 8.6e-5 against 6.4e-5), so a model whose neighbours the coarse blocks move gets the fine ones.
INT8_BLOCKS = (128, 32)
# (width, height, mode): landscape, portrait, exact, smaller than the model's input, extreme, grey, alpha.
SIZES = (
    (640, 480, "RGB"),
    (333, 500, "RGB"),
    (224, 224, "RGB"),
    (61, 97, "RGB"),
    (900, 120, "L"),
    (257, 256, "RGBA"),
)


def export_image_tower(encoder: OpenClipEncoder, cache_dir: Path) -> Path | None:
    """Export ``encoder``'s image tower unless it is there; None when it cannot (see ``exportable``)
    or its fp32 graph does not match the model."""
    needs = exportable(encoder, cache_dir)
    if needs is None:
        return None
    target = image_export_dir(cache_dir, encoder.model_id)
    return publish(target, lambda work: _write(encoder, *needs, work))


def exportable(encoder: OpenClipEncoder, cache_dir: Path) -> tuple[PixelTransform, TextTower] | None:
    """What an image tower's fast form needs, or None: the model on the CPU, its preprocessing
    described (open_clip's ``preprocess_cfg``) in a form ``PixelTransform`` reproduces, and its text
    tower exported (the fast form's queries go through it)."""
    preprocess_cfg = getattr(encoder.model.visual, "preprocess_cfg", None)  # open_clip sets it on load
    transform = PixelTransform.of(preprocess_cfg) if preprocess_cfg else None
    if encoder.device.type != "cpu" or transform is None:
        return None
    text = TextTower.open(cache_dir, encoder.model_id)
    return None if text is None else (transform, text)


def probe_pixels(encoder: OpenClipEncoder, transform: PixelTransform) -> np.ndarray | None:
    """The probe images through ``transform``, or None (logged) where they differ from the model's
    own preprocessing in a single value."""
    images = probe_images()
    pixels = np.stack([transform(image) for image in images])
    if not all(
        np.array_equal(ours, encoder.preprocess(image).numpy()) for ours, image in zip(pixels, images)
    ):
        log.warning("not exporting %s: its image preprocessing could not be reproduced", encoder.model_id)
        return None
    return pixels


def _write(encoder: OpenClipEncoder, transform: PixelTransform, text: TextTower, work: Path) -> bool:
    pixels = probe_pixels(encoder, transform)
    if pixels is None:
        return False
    visual = copy.deepcopy(encoder.model.visual).float().eval()
    with torch.inference_mode():
        reference = _unit(visual(torch.from_numpy(pixels)).numpy())
    raw = _export_graphs(visual, pixels[:2], work)
    manifest = _unchecked(encoder, transform)
    fp32, fp32_seconds = _embed(FastEncoder(work, manifest, "fp32", text), pixels)
    cosine = float((fp32 * reference).sum(axis=1).min())
    if cosine < MIN_COSINE:
        log.warning("not exporting %s: cosine %.5f < %s", encoder.model_id, cosine, MIN_COSINE)
        return False
    checks = {"fp32": {"min_cosine": round(cosine, 6)}}
    refused = {}
    for block in INT8_BLOCKS:  # the fastest first; a finer one only where it failed the check
        _quantize(raw, work / graph_name("int8"), block)
        int8, int8_seconds = _embed(FastEncoder(work, manifest, "int8", text), pixels)
        check = int8_check(fp32, int8) | {"block": block}
        print(f"int8 check for {encoder.model_id}: {describe(check)}", file=sys.stderr, flush=True)
        if check["passed"]:
            checks["int8"] = check
            choice.record(work, {"fp32": fp32_seconds, "int8": int8_seconds})
            break
        for path in work.glob(graph_name("int8") + "*"):  # the graph and its weights
            path.unlink()
    else:
        refused["int8"] = check
        print(f"int8 refused for {encoder.model_id}: fp32 is used", file=sys.stderr, flush=True)
    raw.unlink()
    replace(manifest, checks=checks, refused=refused).write(work)
    return True


def _unchecked(encoder: OpenClipEncoder, transform: PixelTransform) -> ImageManifest:
    """The manifest of ``encoder``'s image tower before any check has passed."""
    return ImageManifest(
        model_id=encoder.model_id,
        dim=encoder.dim,
        image_size=encoder.image_size,
        logit_scale=encoder.logit_scale,
        transform=asdict(transform),
        checks={},
    )


def export_traced_tower(encoder: OpenClipEncoder, cache_dir: Path) -> Path | None:
    """Trace ``encoder``'s image tower in its precision unless it is there; None when it cannot
    (``image_export.exportable``) or the trace does not give the model's vectors."""
    needs = exportable(encoder, cache_dir)
    if needs is None:
        return None
    target = traced_dir(cache_dir, encoder.model_id, precision_name(encoder.dtype))
    return publish(target, lambda work: _write_traced(encoder, *needs, work))


def _write_traced(encoder: OpenClipEncoder, transform: PixelTransform, text: TextTower, work: Path) -> bool:
    pixels = probe_pixels(encoder, transform)
    if pixels is None:
        return False
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation and the tracer's notes
        example = torch.from_numpy(pixels[:2]).to(encoder.dtype)
        torch.jit.trace(encoder.model.visual, example).save(str(work / MODULE))
    precision = precision_name(encoder.dtype)
    manifest = _unchecked(encoder, transform)
    traced = TracedEncoder(work, manifest, precision, text, batch_size=encoder.batch_size)
    cosine = float(
        (traced.encode_pixels(pixels) * encoder.encode_pixels(torch.from_numpy(pixels))).sum(1).min()
    )
    if cosine < MIN_COSINE:
        log.warning("not tracing %s: cosine %.5f < %s", encoder.model_id, cosine, MIN_COSINE)
        return False
    replace(manifest, checks={precision: {"min_cosine": round(cosine, 6)}}).write(work)
    return True


def int8_check(fp32: np.ndarray, int8: np.ndarray) -> dict:
    """How close int8 embeddings are to fp32's on the same probes: the lowest cosine, and the share
    of probes whose ``NEIGHBOURS`` nearest other probes are the same set."""
    cosine = float((fp32 * int8).sum(axis=1).min())
    same = float(np.mean([a == b for a, b in zip(_neighbours(fp32), _neighbours(int8))]))
    passed = cosine >= INT8_MIN_COSINE and same >= INT8_SAME_NEIGHBOURS
    return {"min_cosine": round(cosine, 6), "same_neighbours": round(same, 4), "passed": passed}


def describe(check: dict) -> str:
    return (
        f"{'passed' if check['passed'] else 'failed'} in blocks of {check['block']} (lowest cosine to "
        f"fp32 {check['min_cosine']:.4f}, needs {INT8_MIN_COSINE}; same "
        f"{NEIGHBOURS} nearest neighbours for {check['same_neighbours']:.0%} of probes, needs "
        f"{INT8_SAME_NEIGHBOURS:.0%})"
    )


def _neighbours(vectors: np.ndarray) -> list[frozenset[int]]:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return [frozenset(row) for row in np.argsort(-similarity, axis=1)[:, :NEIGHBOURS].tolist()]


def _export_graphs(visual: torch.nn.Module, example: np.ndarray, work: Path) -> Path:
    """The fp32 graph (dynamic batch), optimised once by onnxruntime; returns the unoptimised
    copy, which int8 is quantized from (the caller removes it)."""
    raw = work / "image.raw.onnx"
    dims = ({0: torch.export.Dim("batch")},)
    export_onnx(
        visual, (torch.from_numpy(example),), raw, inputs=["pixels"], outputs=["vectors"], dynamic_shapes=dims
    )
    optimising = work / "image.fp32.raw.onnx"
    shutil.copyfile(raw, optimising)
    save_optimised(optimising, work / graph_name("fp32"), graph_name("fp32") + ".data")
    return raw


def _quantize(raw: Path, graph: Path, block: int) -> None:
    """``raw`` with int8 weights in blocks of ``block``, and int8 products (see the module
    docstring), optimised into ``graph``; symmetric, so zero stays zero."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(raw)), algo_config=config)
    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # it logs every node at INFO
    try:
        quantizer.process()
    finally:
        logging.getLogger().disabled = was
    quantized = raw.with_name("image.int8.raw.onnx")
    quantizer.model.save_model_to_file(str(quantized), use_external_data_format=False)
    save_optimised(quantized, graph, graph.name + ".data")


def _embed(encoder: FastEncoder, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """The embeddings of ``pixels`` and the seconds they took after one warm-up batch."""
    encoder.encode_pixels(pixels[: encoder.batch_size])
    started = time.perf_counter()
    vectors = encoder.encode_pixels(pixels)
    return vectors, time.perf_counter() - started


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def probe_images(seed: int = 0) -> list[Image.Image]:
    """96 pictures of the kinds people index: shapes, gradients, rendered text and noise, in the
    ``SIZES`` sizes and modes, so every resize, crop and channel path is taken.

    Each is drawn with its own colours, contrast and grain: the neighbour check compares which
    probes are nearest, which is only defined where probes differ (96 copies of the same noise
    would have nearest neighbours that any rounding reorders, in fp32 too).
    """
    rng = np.random.default_rng(seed)
    images = []
    for n in range(96):  # every kind in every size and mode
        width, height, mode = SIZES[(n // 4) % len(SIZES)]
        images.append(_probe(n % 4, width, height, rng).convert(mode))
    return images


def _probe(kind: int, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    if kind == 0:
        sample = shapes.generate(1, seed=int(rng.integers(1 << 30)))[0]
        return sample.image.resize((width, height))
    if kind == 1:  # a two-colour ramp with grain
        ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        grain = rng.normal(0, rng.uniform(2, 40), (height, width, 3))
        return Image.fromarray(np.clip(start + (end - start) * ramp + grain, 0, 255).astype(np.uint8))
    if kind == 2:
        page = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(150, 256, 3)))
        draw = ImageDraw.Draw(page)
        for line in range(0, height, int(rng.integers(10, 30))):
            words = " ".join(str(int(w)) for w in rng.integers(0, 10**6, 6))
            draw.text((4, line), f"invoice {words}", fill=tuple(int(v) for v in rng.integers(0, 100, 3)))
        return page
    noise = rng.normal(rng.uniform(0, 255, 3), rng.uniform(5, 80), (height, width, 3))
    blurred = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
    return blurred.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 6))))
