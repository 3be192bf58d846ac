"""Zero-shot labels: each picture's likeliest words of a vocabulary, kept as automatic tags.

CLIP classifies without training: embed "a photo of a {label}" for every label, and a
picture's probabilities are the softmax of its cosines to them at the model's own learned
temperature (``Encoder.logit_scale``), the way CLIP was trained to compare. Single prompts
are brittle, so each label is embedded through several templates and averaged (an ensemble).

Labelling is an item stage over the pictures' stored vectors: nothing is re-encoded, a
vocabulary of a thousand labels costs one text batch, and an interrupted run resumes. The
stage's name is its *origin* — a hash of the vocabulary and templates plus the model id — and
every tag it sets records it, so a new vocabulary or model is a new backlog whose tags replace
the old automatic ones, while a person's tags stay (``Catalog.set_labels``). A document's labels
are the best of its pictures' (a PDF is a "receipt" when one of its pages is).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from spyglass.encoders.prompts import ensemble
from spyglass.indexer.stages import ItemStage
from spyglass.kinds import VISUAL_KINDS
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.settings import LabelSettings


class Labeller:
    """A vocabulary embedded by one model, ready to label vectors of that model."""

    def __init__(
        self,
        encoder: Encoder,
        labels: Sequence[str],
        *,
        templates: Sequence[str],
        top_k: int = 3,
        min_probability: float = 0.2,
    ) -> None:
        self.labels = vocabulary(labels)
        if not self.labels:
            raise ValueError("a labelling vocabulary needs at least one label")
        self.top_k, self.min_probability = top_k, min_probability
        self.scale = encoder.logit_scale
        self._label_vectors = ensemble(encoder.encode_texts, self.labels, _templates(templates))

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, labels) probabilities: the softmax of each vector's cosines at the model's temperature."""
        logits = self.scale * (np.asarray(vectors, np.float32) @ self._label_vectors.T)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def label(self, vectors: np.ndarray) -> list[dict[str, float]]:
        """Each vector's labels: the ``top_k`` likeliest with at least ``min_probability`` (the first
        always), label -> probability, likeliest first."""
        chosen = []
        for row in self.probabilities(vectors):
            order = np.argsort(-row)[: self.top_k]
            kept = [i for rank, i in enumerate(order) if rank == 0 or row[i] >= self.min_probability]
            chosen.append({self.labels[i]: round(float(row[i]), 4) for i in kept})
        return chosen


class LabelStage(ItemStage):
    """Labels pictures from their stored vectors; tags their documents (see the module docstring)."""

    version = 1
    kinds = VISUAL_KINDS
    batch_size = 512  # a matrix product per batch: larger commits cost less

    def __init__(self, name: str, labeller: Callable[[], Labeller], store: Callable[[], Store]) -> None:
        """``name`` is the labelling's ``origin``; ``labeller`` and ``store`` are called on the first
        batch, so an up-to-date collection loads no model."""
        self.name = name
        self._labeller, self._store = labeller, store

    def run(self, items: list[dict]) -> dict[int, Any]:
        ids, matrix = self._store().vectors([row["id"] for row in items])
        if not len(ids):
            return {}
        return dict(zip((int(i) for i in ids), self._labeller().label(matrix)))

    def record(self, store: Store, batch: list[dict], outputs: dict[int, Any]) -> None:
        """The stage record and the documents' automatic tags, in one transaction."""
        documents: dict[int, dict[str, float]] = {}
        for row in batch:
            labels = outputs.get(row["id"])
            best = documents.setdefault(row["document_id"], {})
            if isinstance(labels, dict) and "error" not in labels:
                for label, probability in labels.items():
                    best[label] = max(probability, best.get(label, 0.0))
        with store.write() as tx:
            tx.record_stage(self.name, self.version, {row["id"]: outputs.get(row["id"]) for row in batch})
            tx.set_labels(self.name, documents)


def label_stage(
    labels: Sequence[str],
    settings: LabelSettings,
    model_id: str,
    encoder: Callable[[], Encoder],
    store: Callable[[], Store],
) -> LabelStage:
    """The stage that labels with ``labels`` (and the settings' templates and limits) by ``model_id``."""

    def labeller() -> Labeller:
        return Labeller(
            encoder(),
            labels,
            templates=settings.templates,
            top_k=settings.top_k,
            min_probability=settings.min_probability,
        )

    name = origin(vocabulary(labels), _templates(settings.templates), model_id)
    return LabelStage(name, functools.cache(labeller), store)


def vocabulary(labels: Sequence[str]) -> list[str]:
    """Labels as given, trimmed, blanks and repeats dropped (order kept: it is the user's)."""
    return list(dict.fromkeys(label.strip() for label in labels if label and label.strip()))


def read_vocabulary(text: str) -> list[str]:
    """A labels file: one label per line, or comma-separated; ``#`` starts a comment."""
    words = []
    for line in text.splitlines():
        words.extend(line.split("#", 1)[0].split(","))
    return vocabulary(words)


def _templates(templates: Sequence[str]) -> list[str]:
    """Templates with a place for the label (a bare prefix gets one at its end)."""
    return [t if "{}" in t else f"{t} {{}}" for t in templates] or ["{}"]


def origin(labels: Sequence[str], templates: Sequence[str], model_id: str) -> str:
    """What a labelling's tags record as their origin: the vocabulary (hashed) and the model."""
    digest = hashlib.sha256(json.dumps([list(labels), list(templates)]).encode()).hexdigest()[:12]
    return f"labels:{digest}@{model_id}"
