"""Retrieval evaluation on a captioned image set, with CLIP_benchmark's definitions.

Text->image Recall@k: the fraction of captions whose image is in the top k.
Image->text Recall@k: the fraction of images with *any* of their captions in the top k.
MRR: the mean of 1/rank of the first correct hit. Ties count in the query's favour,
as with a top-k that happens to list the correct item first.

Datasets: a folder with ``captions.csv`` (``image,caption``; images beside it or in
``images/``), or a COCO-style captions JSON (``images`` with ``id``/``file_name`` and
``annotations`` with ``image_id``/``caption``).
"""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from spyglass.encoders import Encoder
from spyglass.errors import SpyglassError
from spyglass.images import open_image

KS = (1, 5, 10)


@dataclass
class Dataset:
    images: list[Path]
    captions: list[str]
    caption_image: np.ndarray  # for each caption, the index of its image


@dataclass
class EvalReport:
    images: int
    captions: int
    metrics: dict[str, float] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)  # the same metrics for random ranking
    seconds: float = 0.0


def ranks(scores: np.ndarray, positives: list[np.ndarray]) -> np.ndarray:
    """0-based rank of the best-scoring positive in each row (number of items scoring strictly higher)."""
    out = np.empty(len(scores), np.int64)
    for row, (values, good) in enumerate(zip(scores, positives)):
        out[row] = int((values > values[good].max()).sum())
    return out


def retrieval_metrics(
    scores: np.ndarray, caption_image: np.ndarray, ks: tuple[int, ...] = KS
) -> dict[str, float]:
    """Metrics from a (captions x images) score matrix and each caption's image index."""
    caption_image = np.asarray(caption_image)
    text_ranks = ranks(scores, [np.array([i]) for i in caption_image])
    by_image = [np.flatnonzero(caption_image == i) for i in range(scores.shape[1])]
    image_ranks = ranks(scores.T, by_image)
    metrics = {}
    for name, found in (("text_to_image", text_ranks), ("image_to_text", image_ranks)):
        for k in ks:
            metrics[f"{name}_R@{k}"] = float((found < k).mean())
        metrics[f"{name}_MRR"] = float((1.0 / (found + 1)).mean())
    return metrics


def chance_metrics(caption_image: np.ndarray, images: int, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """The same metrics for a model that ranks at random: what a score must beat to mean anything.

    Text->image: one right image among ``images``. Image->text: an image with m captions among
    all C; the first of them falls at rank r with probability prod_{j<r-1}(C-m-j)/(C-j) * m/(C-r+1).
    """
    caption_image = np.asarray(caption_image)
    harmonic = float(np.sum(1.0 / np.arange(1, images + 1)))
    metrics = {f"text_to_image_R@{k}": min(k, images) / images for k in ks}
    metrics["text_to_image_MRR"] = harmonic / images
    total = len(caption_image)
    counts = np.bincount(caption_image, minlength=images)
    first_at: dict[int, np.ndarray] = {}
    for m in set(counts.tolist()):
        ranks = np.arange(1, total - m + 2)
        miss = np.concatenate(
            [[1.0], np.cumprod((total - m - np.arange(total - m)) / (total - np.arange(total - m)))]
        )
        first_at[m] = miss[: len(ranks)] * m / (total - ranks + 1)
    for k in ks:
        metrics[f"image_to_text_R@{k}"] = float(np.mean([first_at[m][:k].sum() for m in counts]))
    metrics["image_to_text_MRR"] = float(
        np.mean([(first_at[m] / np.arange(1, len(first_at[m]) + 1)).sum() for m in counts])
    )
    return metrics


def load_dataset(path: Path) -> Dataset:
    path = Path(path)
    if path.is_dir() and (path / "captions.csv").is_file():
        folder = path / "images" if (path / "images").is_dir() else path
        pairs = []
        with open(path / "captions.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                pairs.append((row["image"], row["caption"]))
    elif path.suffix == ".json" and path.is_file():
        data = json.loads(path.read_text())
        folder = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
        names = {image["id"]: image["file_name"] for image in data["images"]}
        pairs = [(names[a["image_id"]], a["caption"]) for a in data["annotations"]]
    else:
        raise SpyglassError(f"{path} is neither a folder with captions.csv nor a COCO captions JSON file.")
    order = sorted({name for name, _ in pairs})
    index = {name: i for i, name in enumerate(order)}
    missing = [name for name in order if not (folder / name).is_file()]
    if missing:
        raise SpyglassError(
            f"{len(missing)} images named in the captions are missing from {folder} (e.g. {missing[0]})."
        )
    return Dataset(
        [folder / name for name in order], [c for _, c in pairs], np.array([index[n] for n, _ in pairs])
    )


def image_pixels(encoder: Encoder, path: Path, *, max_pixels: int, use: str) -> Any:
    """One image file through the model's own transform; a bad file is named, with what it was for."""
    try:
        return encoder.preprocess(open_image(path, min_side=encoder.image_size, max_pixels=max_pixels))
    except SpyglassError as exc:
        raise SpyglassError(f"{path} cannot be {use}: {exc}") from None


def evaluate(
    encoder: Encoder,
    dataset_path: Path,
    *,
    ensemble: bool = False,
    max_pixels: int = 178_956_970,
    workers: int = 4,
) -> EvalReport:
    """Embed the images (decoded in worker threads, as ingest does) and captions, and score every pair.

    It measures the model, not a collection: nothing is written to any store.
    """
    started = time.monotonic()
    data = load_dataset(dataset_path)

    pixels = partial(image_pixels, encoder, max_pixels=max_pixels, use="evaluated")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spyglass-eval") as pool:
        batches = []
        for start in range(0, len(data.images), encoder.batch_size):
            tensors = list(pool.map(pixels, data.images[start : start + encoder.batch_size]))
            batches.append(encoder.encode_preprocessed(tensors))
    image_vectors = np.concatenate(batches)
    caption_vectors = encoder.encode_texts(data.captions, ensemble=ensemble)
    metrics = retrieval_metrics(caption_vectors @ image_vectors.T, data.caption_image)
    chance = chance_metrics(data.caption_image, len(data.images))
    return EvalReport(len(data.images), len(data.captions), metrics, chance, time.monotonic() - started)
