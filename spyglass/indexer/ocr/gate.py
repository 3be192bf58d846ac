"""The OCR gate: does a picture hold anything like a line of text?

Most photos hold none, so what a photo without text costs is what the gate costs. The
gate runs the quantized text detector (``quantize.py``) on the picture shrunk to
``GATE_SIDE`` and reads its text-probability map directly, without RapidOCR's box
geometry (which costs more than the detector on a textured photo): the picture may hold
text when a connected region of the map is confident on average (``GATE_SCORE``) and
elongated like a line of text (``ELONGATION``, either way round, so vertical lines count).
Textures, leaves and water make compact blobs; words make strips.

Measured against stock RapidOCR on Flickr8k-1k (``benchmarks/ocr.py``): it stops most
photos, and few of those where RapidOCR reads a word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from spyglass.indexer.ocr.quantize import detector_input

GATE_SIDE = 480  # longer side the detector sees (smaller pictures are taken as they are)
GATE_SCORE = 0.7  # mean text probability of a region that may be text
ELONGATION = 1.5  # a region's longer side over its shorter: lines of text are strips
BINARY = 0.3  # probability above which a pixel belongs to a region (RapidOCR's own threshold)


class TextGate:
    """The quantized detector and a yes/no reading of its probability map; safe to call from threads."""

    def __init__(self, model: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # callers read in parallel instead
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, image: Image.Image) -> bool:
        probability = self._session.run(None, {self._input: detector_input(image, GATE_SIDE)})[0][0, 0]
        return holds_a_line(probability)


def holds_a_line(probability: np.ndarray) -> bool:
    """Whether some connected region of the map is confident and shaped like a line of text."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats((probability > BINARY).astype(np.uint8))
    if count <= 1:
        return False
    sums = np.bincount(labels.ravel(), weights=probability.ravel(), minlength=count)[1:]
    stats = stats[1:]
    width, height = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    confident = sums / stats[:, cv2.CC_STAT_AREA] >= GATE_SCORE
    strips = np.maximum(width, height) >= ELONGATION * np.minimum(width, height)
    return bool((confident & strips).any())
