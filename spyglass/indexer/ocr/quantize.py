"""The text detector quantized to 8-bit integers, for the gate and the read.

PP-OCRv6's detector is the slow part of OCR: it is what a photo without text costs (the
gate) and most of what a photo or page with text costs. Quantized statically (per
channel, activation ranges observed on generated pictures with and without text) it runs
about 3.5x faster on a CPU with VNNI and finds the same text (``benchmarks/ocr.py``
compares it with stock RapidOCR). The quantized copy is built once per user,
in about 5 s, from the model in the rapidocr wheel, and cached under that model's hash
beside the other models Spyglass builds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

log = logging.getLogger(__name__)

CALIBRATION_PICTURES = 48
CALIBRATION_SIDE = 480  # pictures are calibrated at the size the gate reads photos at
QUANTIZED_OPSET = 13  # per-channel weights need QuantizeLinear with an axis (opset 13)


def detector_input(image: Image.Image, max_side: int = CALIBRATION_SIDE) -> np.ndarray:
    """A picture as PP-OCR's detector takes it: sides multiples of 32, BGR, scaled to [-1, 1], NCHW."""
    factor = min(1.0, max_side / max(image.size))
    width, height = (max(32, round(side * factor / 32) * 32) for side in image.size)
    pixels = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR), np.float32)
    return np.ascontiguousarray((pixels[:, :, ::-1] / 127.5 - 1.0).transpose(2, 0, 1)[None])


def detector_path() -> Path:
    """The detection model inside the rapidocr wheel, as RapidOCR itself resolves it."""
    import rapidocr
    from rapidocr.inference_engine.base import FileInfo, InferSession
    from rapidocr.utils.typings import EngineType, LangDet, ModelType, OCRVersion, TaskType

    info = InferSession.get_model_url(
        FileInfo(
            engine_type=EngineType.ONNXRUNTIME,
            ocr_version=OCRVersion.PPOCRV6,
            task_type=TaskType.DET,
            lang_type=LangDet.CH,
            model_type=ModelType.SMALL,
        )
    )
    return Path(rapidocr.__file__).parent / "models" / Path(info["model_dir"]).name


def quantized_detector(cache_dir: Path) -> Path:
    """The 8-bit copy of the detector, built on first use and cached under the source's hash."""
    source = detector_path()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / "ocr" / f"{source.stem}.int8-{digest}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("quantizing the OCR text detector once for this user (%s)", target)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        _quantize(source, Path(scratch))
        os.replace(Path(scratch, "int8.onnx"), target)  # atomic: a killed build never leaves half a model
    return target


def _quantize(source: Path, scratch: Path) -> None:
    """``scratch/int8.onnx``: the model at opset 13, batch norms folded, then quantized statically."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = version_converter.convert_version(onnx.load(str(source)), QUANTIZED_OPSET)
    onnx.save(model, str(scratch / "opset.onnx"))
    name = model.graph.input[0].name

    class Pictures(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = ({name: detector_input(p)} for p in calibration_pictures())

        def get_next(self) -> dict | None:
            return next(self._inputs, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer advises on the root logger; nothing there for a user
    try:
        quant_pre_process(str(scratch / "opset.onnx"), str(scratch / "folded.onnx"), skip_symbolic_shape=True)
        quantize_static(
            str(scratch / "folded.onnx"),
            str(scratch / "int8.onnx"),
            Pictures(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)


def calibration_pictures(count: int = CALIBRATION_PICTURES, seed: int = 0) -> list[Image.Image]:
    """Reproducible stand-ins for photos: gradients and textures, half of them with lines of text."""
    rng = np.random.default_rng(seed)
    pictures = []
    for index in range(count):
        width, height = (int(v) for v in rng.integers(160, CALIBRATION_SIDE, size=2))
        base = rng.integers(0, 256, size=(2, 3))
        ramp = np.linspace(0.0, 1.0, width)[None, :, None]
        pixels = base[0] * (1 - ramp) + base[1] * ramp + rng.normal(0, 30, size=(height, width, 3))
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(float(rng.uniform(0, 3)))
        )
        if index % 2:
            draw = ImageDraw.Draw(picture)
            for _ in range(int(rng.integers(1, 4))):
                size = int(rng.integers(10, 48))
                word = "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 abcdefghijk"), 12))
                at = (int(rng.integers(0, width // 2)), int(rng.integers(0, max(1, height - size))))
                colour = tuple(int(c) for c in rng.integers(0, 256, 3))
                draw.text(at, word, font=ImageFont.load_default(size), fill=colour)
        pictures.append(picture)
    return pictures
