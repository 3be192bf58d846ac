"""Blank pictures and pages: recognised from a small render in about a millisecond, and not read.

A scanned PDF's blank pages (separators, backs of sheets) used to cost a full render and a full
read each, ~0.5 s and the detector's memory for nothing. A page or picture holds nothing to read
when almost none of its pixels differ from its paper: the median grey. A small render is an
area average, so the grain of a scan evens out in it while a line of text, even a light grey
one, still darkens the pixels it crosses; a mark is a pixel further from the paper than a
scan's grain reaches (``INK``, or ``GRAIN_SIGMAS`` times the grain the render shows, up to
``MOST_INK``), and three specks of dust are not text (``MARKS``). Where in
doubt it reads: one light grey word on a grainy page makes ~20 marks, eight specks ~27.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BLANK_SIDE = 400  # longer side of the render a blank is judged on (a page line is ~3 px high there)
INK = 10  # grey levels from the paper that make a mark: the grain of a scan averages below it
GRAIN_SIGMAS = 5  # ... or this many times a coarse scan's grain, measured on the render itself,
MOST_INK = 20  # but never more: a photo's own spread is texture, not grain
MARKS = 1e-4  # share of the render's pixels that must be marks (~12 on a page) for it to hold anything


def is_blank(image: Image.Image) -> bool:
    """Whether ``image`` is a uniform field, give or take a scan's grain and a few specks of dust."""
    small = image if max(image.size) <= BLANK_SIDE else image.resize(_fitted(image.size), Image.BOX)
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    distance = np.abs(grey - np.median(grey))
    grain = 1.4826 * float(np.median(distance))  # the paper's own spread (MAD), text being a few pixels
    marks = distance > min(max(INK, GRAIN_SIGMAS * grain), MOST_INK)
    return int(marks.sum()) < MARKS * grey.size


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    factor = BLANK_SIDE / max(size)
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))
