"""The text-space stage: embeds chunks, sections (passages) and text read in pictures, with the
sentence-embedding model.

A section's vector is a document-level view: a short document (an abstract) is one section,
so it gets one vector of the whole text, which ranks documents better than their best chunk
alone (``spyglass/retriever/ranking.py``). Sections longer than the model's input are read as
far as it reads (MiniLM: 256 word pieces, about 190 words); their chunks cover the rest.

It is an item stage (see ``stages``) so that turning the text space on, or changing
its model, catches up on an existing collection without re-reading a file, and an
interrupted run resumes. Its name carries the model id: another model is another
backlog, and switching back finds the earlier vectors still there.

Vectors go to the text space's own store (the same catalog, its own ``model_id`` and
index), in the same transaction that records the batch as done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from spyglass.indexer.stages import ItemStage
from spyglass.kinds import MEANING_KINDS, ItemKind
from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders.fast.sentence import OnnxSentenceEncoder
    from spyglass.encoders.sentence.model import SentenceEncoder


class TextSpaceStage(ItemStage):
    version = 1
    # Chunks and sections by their text; pictures by the text read in them (OCR), when there is some.
    # Sections joined in a later release: existing collections embed them as a catch-up, nothing re-read.
    kinds = MEANING_KINDS
    batch_size = 256  # the model batches internally; larger commits cost less

    def __init__(
        self,
        model_id: str,
        encoder: Callable[[], SentenceEncoder | OnnxSentenceEncoder],
        store: Callable[[], Store],
        load_options: dict | None = None,
    ):
        """``encoder`` and ``store`` are called on the first batch: an up-to-date collection loads nothing.
        ``load_options`` (``SentenceEncoder.load``'s arguments) let a worker elsewhere load the model."""
        self.name = f"embed:{model_id}"
        self.model_id = model_id
        self._encoder, self._store = encoder, store
        self.load_options = load_options

    def run(self, items: list[dict]) -> dict[int, Any]:
        _, worded = self.split(items)
        return embed_rows(self._encoder(), worded)

    def split(self, items: list[dict]) -> tuple[dict[int, Any], list[dict]]:
        """A picture with nothing read in it gets no vector: only rows with words go to the model."""
        return {}, [row for row in items if _text(row)]

    def worker(self) -> tuple[type, dict] | None:
        return None if self.load_options is None else (TextWorker, self.load_options)

    def record(self, store: Store, batch: list[dict], outputs: dict[int, Any]) -> None:
        """Vectors and the stage record in one transaction of the text space's store."""
        embedded = [row["id"] for row in batch if isinstance(outputs.get(row["id"]), np.ndarray)]
        with self._store().write() as tx:
            if embedded:
                vectors = np.stack([outputs[i] for i in embedded])
                tx.add_vectors(embedded, vectors, self.model_id, replace=True)  # a new version redoes
            tx.record_stage(
                self.name,
                self.version,
                {row["id"]: None if row["id"] in embedded else outputs.get(row["id"]) for row in batch},
            )


class TextWorker:
    """The embedding half of the stage, where the sentence model is loaded once (a Ray actor)."""

    def __init__(self, spec: str, **options: Any) -> None:
        from spyglass.encoders.sentence.model import SentenceEncoder

        self.encoder = SentenceEncoder.load(spec, **options)

    def __call__(self, rows: list[dict]) -> dict[int, Any]:
        return embed_rows(self.encoder, rows)


def embed_rows(encoder: SentenceEncoder | OnnxSentenceEncoder, rows: list[dict]) -> dict[int, Any]:
    """Each row's vector (rows with words only: see ``TextSpaceStage.split``)."""
    if not rows:
        return {}
    return dict(zip([row["id"] for row in rows], encoder.encode_texts([_text(row) for row in rows])))


def _text(row: dict) -> str:
    kind = ItemKind(row["kind"])
    return (row["text"] if kind.textual or kind.section else row.get("ocr")) or ""
