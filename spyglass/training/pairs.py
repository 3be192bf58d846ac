"""What tuning learns from: a captioned set, or pairs mined from the collection's own pictures
(a description, else a file name made of words)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spyglass.errors import SpyglassError
from spyglass.paths import real_path
from spyglass.retriever.evaluation import Dataset, load_dataset


def training_data(dataset: str | Path | None, described_images: Callable[[], list[dict]]) -> Dataset:
    """A captioned set (a folder with ``captions.csv``, or a COCO JSON), or with ``dataset=None``
    pairs mined from the collection's ``described_images``: at least 4 of them."""
    if dataset is not None:
        return load_dataset(Path(dataset))
    data = mined_pairs(described_images())
    if len(data.images) < 4:
        raise SpyglassError(
            f"the collection has {len(data.images)} images with a description or a worded file name; "
            "tuning needs more: give a folder with captions.csv"
        )
    return data


def mined_pairs(images: list[dict]) -> Dataset:
    """Pairs found in a collection: each image file with its description or title, else its file
    name when that is words (``red-fox-in-snow.jpg``; not ``IMG_0042.jpg``)."""
    pairs = []
    for row in images:
        path = real_path(row["path"], row["raw_path"])
        caption = row["description"] or row["title"] or _name_words(path)
        if caption and path.is_file():
            pairs.append((path, caption))
    return Dataset([p for p, _ in pairs], [c for _, c in pairs], np.arange(len(pairs)))


def _name_words(path: Path) -> str | None:
    words = [w for w in re.split(r"[\W_]+", path.stem) if w.isalpha()]
    return " ".join(words) if len(words) >= 2 else None
