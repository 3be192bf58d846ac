"""Reading text in pixels with RapidOCR's PP-OCRv6 models on ONNX Runtime.

Why RapidOCR over Tesseract: its wheel ships the detection, recognition and text-angle
models, so it works offline after ``pip install`` with no system package; its detector
finds text on photos, charts and slides where Tesseract expects clean scanned pages; a
text-angle classifier reads lines upside down and sideways; and it runs on the ONNX
Runtime Spyglass already uses for its text towers. (Measured here: it read every line
of ``attention_table.png`` and the labels of bar charts, 1.3 to 2.6 s per full page on 2 cores.)

Cost is managed with a gate (``gate.py``), because most photos hold no text: the
detector alone, quantized, at low resolution, decides whether anything looks like a line
of text. Only pictures that pass, and pages, get the full read: the detector at their own
resolution (quantized too), the angle classifier and the recogniser.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from spyglass.allocator import big_buffers_mapped
from spyglass.errors import WeightsUnavailableError
from spyglass.indexer.ocr.gate import TextGate
from spyglass.indexer.ocr.quantize import quantized_detector

log = logging.getLogger(__name__)

FULL_SIDE = 1920  # longer side of the full read (pages at 144 dpi fit whole)
MIN_LINE_SCORE = 0.6  # recognised lines below this are mostly noise on textures
MAX_WORKERS = 8  # pictures read at once by default: each holds its own models (about 25 MB)
# Pictures over this many pixels are read one at a time, on every core. A 144-dpi page's full read
# held ~300 MB: two at once took a 50-page scanned PDF's ingest to 1.2 GB, one at a time on two
# cores to 0.92-0.97 GB (0.83 GB on one). Two cores read a page in 1.87 s against 2.45 s on one
# (PP-OCRv6, 20 lines). Their big buffers are mapped while they are read, so the memory a read
# frees goes back to the system (``spyglass.allocator``).
BIG_PIXELS = 1_000_000


@dataclass(frozen=True)
class TextLine:
    """One recognised line; ``box`` is (x0, y0, x1, y1) in the pixels that were read."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float

    def scaled(self, factor: float) -> TextLine:
        return TextLine(self.text, tuple(round(v * factor) for v in self.box), self.confidence)

    def to_json(self) -> dict:
        return asdict(self) | {"box": list(self.box), "confidence": round(self.confidence, 3)}


class OcrReader:
    """Lazily loaded RapidOCR pipelines, one per picture being read at once.

    Small pictures are read ``workers`` at a time, each on one core: ONNX Runtime spreads one
    small picture over two cores poorly (measured: two pictures at once on one core each
    read Flickr photos twice as fast as one at a time on both), so the stage reads in
    parallel and those sessions keep to one thread. Big ones (``BIG_PIXELS``: pages, camera
    photos) are read one at a time by a pipeline of their own on every core, since each
    full read of one holds ~300 MB. Safe to call from ``workers`` threads.
    """

    def __init__(self, cache_dir: Path, language: str = "ch", threads: int = 0) -> None:
        """``cache_dir`` keeps the quantized detector (built once per user); ``threads``: cores to use (0: all)."""
        self.cache_dir, self.language = cache_dir, language
        self.workers = threads or min(os.cpu_count() or 1, MAX_WORKERS)
        self._idle: queue.SimpleQueue = queue.SimpleQueue()  # pipelines not reading right now
        self._big = threading.Lock()  # held while the pipeline for big pictures reads

    def has_text(self, image: Image.Image) -> bool:
        """The gate: does the detector, at low resolution, see anything like a line of text?"""
        return self._gate(image)

    def read(self, image: Image.Image) -> list[TextLine]:
        """Every confident line, top to bottom; rotated text is turned upright by the angle classifier."""
        if image.width * image.height > BIG_PIXELS:
            with self._big, big_buffers_mapped():
                found = _read_all(self._big_pipeline, image)
        else:
            pipeline = self._borrow()
            try:
                found = _read_all(pipeline, image)
            finally:
                self._idle.put(pipeline)
        if found.txts is None:
            return []
        lines = [
            TextLine(text.strip(), _box(quad), float(score))
            for text, quad, score in zip(found.txts, found.boxes, found.scores)
            if text.strip() and score >= MIN_LINE_SCORE
        ]
        return sorted(lines, key=lambda line: (line.box[1], line.box[0]))

    @cached_property
    def _detector(self) -> Path:
        return quantized_detector(self.cache_dir)

    @cached_property
    def _gate(self) -> TextGate:
        return TextGate(self._detector)

    def _borrow(self):
        """An idle pipeline, or a new one when every pipeline is reading (at most ``workers`` then)."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._pipeline(threads=1)

    @cached_property
    def _big_pipeline(self):
        """The pipeline for big pictures: made (and used) under ``_big`` only."""
        return self._pipeline(threads=self.workers)

    def _pipeline(self, threads: int):
        engine = self._engine(
            {
                "Det.model_path": str(self._detector),
                "Det.limit_side_len": FULL_SIDE,
                "Det.limit_type": "max",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            }
        )
        try:  # models load on first use: a blank line now, so a missing recogniser fails here, clearly
            engine(np.full((48, 320, 3), 255, np.uint8), use_det=False, use_cls=False, use_rec=True)
        except Exception as exc:
            raise self._unavailable(exc) from exc
        return engine

    def _engine(self, params: dict):
        from rapidocr import RapidOCR
        from rapidocr.utils.typings import LangRec

        try:
            language = LangRec(self.language)
        except ValueError:  # a setting to fix, not a per-item failure: the stage waits and says so
            known = ", ".join(sorted(lang.value for lang in LangRec))
            raise WeightsUnavailableError(
                f"unknown OCR language {self.language!r} (SPYGLASS_OCR__LANGUAGE); RapidOCR knows: {known}"
            ) from None
        try:
            return RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Rec.lang_type": language,
                    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    **params,
                }
            )
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> WeightsUnavailableError:
        return WeightsUnavailableError(
            f"The OCR model for language {self.language!r} is not installed and could not be downloaded "
            f"({type(exc).__name__}); the rapidocr wheel ships 'ch' (Chinese and English): "
            "set SPYGLASS_OCR__LANGUAGE=ch, or connect once to download it."
        )


def _read_all(pipeline, image: Image.Image):
    # every step named: RapidOCR keeps the last call's choices (the warm-up has no detection)
    return pipeline(_array(image), use_det=True, use_cls=True, use_rec=True)


def _array(image: Image.Image) -> np.ndarray:
    """BGR, as RapidOCR takes arrays (its models were trained on OpenCV's channel order)."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def _box(quad) -> tuple[int, int, int, int]:
    points = np.asarray(quad, dtype=np.float32)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))
