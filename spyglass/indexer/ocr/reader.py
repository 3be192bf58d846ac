"""Reading text in pixels with RapidOCR's PP-OCRv6 models on ONNX Runtime.

Why RapidOCR over Tesseract: its wheel ships the detection, recognition and text-angle
models, so it works offline after ``pip install`` with no system package; its detector
finds text on photos, charts and slides where Tesseract expects clean scanned pages; a
text-angle classifier reads lines upside down and sideways; and it runs on the ONNX
Runtime Spyglass already uses for its text towers. (Measured here: it read every line
of ``attention_table.png`` and the labels of bar charts, 1.3 to 2.6 s per full page on 2 cores.)

Cost is managed with a gate: the detector alone, on the image shrunk to ``GATE_SIDE``,
decides whether anything looks like text. Most photos stop there (about 14 ms for a
Flickr photo here, see ``benchmarks/ocr.py``); only images with candidate text get the
full detector at their own resolution, the angle classifier and the recogniser.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from spyglass.errors import WeightsUnavailableError

log = logging.getLogger(__name__)

GATE_SIDE = 480  # longer side the gate's detector sees (smaller images are taken as they are)
GATE_BOX_SCORE = 0.6  # a detection this confident counts as possible text
FULL_SIDE = 1920  # longer side of the full read (pages at 144 dpi fit whole)
MIN_LINE_SCORE = 0.6  # recognised lines below this are mostly noise on textures


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
    """A lazily loaded RapidOCR pipeline; one per process, called from one thread at a time (the stage's)."""

    def __init__(self, language: str = "ch", threads: int = 0) -> None:
        self.language, self.threads = language, threads

    def has_text(self, image: Image.Image) -> bool:
        """The gate: does the detector, at low resolution, see anything like a line of text?"""
        found = self._gate(_array(image), use_cls=False, use_rec=False)
        return found.boxes is not None and len(found.boxes) > 0

    def read(self, image: Image.Image) -> list[TextLine]:
        """Every confident line, top to bottom; rotated text is turned upright by the angle classifier."""
        found = self._full(_array(image), use_det=True, use_cls=True, use_rec=True)
        if found.txts is None:
            return []
        lines = [
            TextLine(text.strip(), _box(quad), float(score))
            for text, quad, score in zip(found.txts, found.boxes, found.scores)
            if text.strip() and score >= MIN_LINE_SCORE
        ]
        return sorted(lines, key=lambda line: (line.box[1], line.box[0]))

    @cached_property
    def _gate(self):
        return self._engine(
            {
                "Det.limit_side_len": GATE_SIDE,
                "Det.limit_type": "max",
                "Det.box_thresh": GATE_BOX_SCORE,
                "Global.use_preprocess_img": False,
            }
        )

    @cached_property
    def _full(self):
        engine = self._engine({"Det.limit_side_len": FULL_SIDE, "Det.limit_type": "max"})
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
        threads = self.threads or -1
        try:
            return RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Rec.lang_type": language,
                    "EngineConfig.onnxruntime.intra_op_num_threads": threads,
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


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def _box(quad) -> tuple[int, int, int, int]:
    points = np.asarray(quad, dtype=np.float32)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))
