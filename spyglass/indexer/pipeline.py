"""The ingest pipeline: decode in worker threads, encode in large batches, write in transactions.

Workers load files and run the encoder's own preprocessing (PIL decoding and
resizing release the GIL), a bounded number of documents ahead of the encoder, so
memory stays flat and the model is not left waiting. The main thread groups ready
documents until they hold a full batch of things to embed, encodes them, and hands
the group to ``write`` for one transaction, in a thread of its own: a group is written
while the next one is embedded (the model's kernels release the GIL, SQLite's Python
side holds it), one transaction at a time, in order. A long document (a PDF) hands its items
over page by page while it loads; once it holds a batch of images they are embedded
right there, so its memory is its vectors and thumbnails, not its page renders.
"""

from __future__ import annotations

import contextvars
import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from spyglass.indexer.loaders import ItemDraft, LoadedDocument, LoadError

if TYPE_CHECKING:
    from spyglass.encoders import Encoder

log = logging.getLogger(__name__)
Job = TypeVar("Job")


@dataclass
class Outcome(Generic[Job]):
    """A loaded document with vectors for its embeddable items, or the reason it failed."""

    job: Job
    document: LoadedDocument | None = None
    vectors: np.ndarray | None = None  # one row per embedded item
    embedded: list[int] | None = None  # indexes (into document.items) of the items those rows belong to
    error: str | None = None


Digest = Callable[[list[ItemDraft]], None]


def run_pipeline(
    jobs: Iterable[Job],
    load: Callable[[Job, Digest], LoadedDocument],
    encoder: Encoder,
    write: Callable[[list[Outcome[Job]]], None],
    *,
    workers: int = 2,
    prefetch: int = 16,
) -> None:
    """Load, embed and write every job; failures become outcomes with an ``error``, never exceptions.

    ``load(job, digest)`` loads a job; a loader calls ``digest`` with items as it makes them.
    """

    def prepare(job: Job) -> Outcome[Job]:
        held: list[ItemDraft] = []  # this document's preprocessed images not embedded yet

        def digest(items: list[ItemDraft]) -> None:
            held.extend(preprocess(items, encoder))
            if len(held) >= encoder.batch_size:
                vectors = encoder.encode_preprocessed([item.pixels for item in held])
                for item, vector in zip(held, vectors):
                    item.vector, item.pixels = vector, None
                held.clear()

        try:
            document = load(job, digest)
            digest(document.items)  # what the loader did not hand over itself
            return Outcome(job, document)
        except Exception as exc:  # noqa: BLE001 - one bad file is reported, never fails the batch
            return Outcome(job, error=failure(exc, job))

    pending: deque[Future[Outcome[Job]]] = deque()
    iterator = iter(jobs)
    writing: Future[None] | None = None
    with (
        ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="spyglass-load") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="spyglass-write") as writer,
    ):

        def refill() -> None:
            while len(pending) < prefetch and (job := next(iterator, None)) is not None:
                pending.append(pool.submit(prepare, job))

        refill()
        group: list[Outcome[Job]] = []
        embeddable = 0
        while pending:
            outcome = pending.popleft().result()
            refill()
            group.append(outcome)
            embeddable += _count(outcome)
            if embeddable >= encoder.batch_size or not pending:
                embed(group, encoder)
                if writing is not None:
                    writing.result()  # in order, one at a time; a failed write stops the run here
                # in the caller's context: a job's stop signal (``store.STOP``) refuses the write
                writing = writer.submit(contextvars.copy_context().run, write, group)
                group, embeddable = [], 0
        if writing is not None:
            writing.result()


def _count(outcome: Outcome) -> int:
    if outcome.document is None:
        return 0
    return sum(
        item.vector is None and (item.pixels is not None or item.embed_text is not None)
        for item in outcome.document.items
    )


def failure(exc: Exception, job: object) -> str:
    """Why a file could not be loaded, as its error is recorded and shown."""
    if isinstance(exc, LoadError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    if isinstance(exc, OSError):
        return f"cannot read file: {exc.strerror or exc}"
    log.debug("unexpected failure loading %s", job, exc_info=True)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def preprocess(items: list[ItemDraft], encoder: Encoder) -> list[ItemDraft]:
    """Run the encoder's transform on the items' images; returns the items that now hold pixels.

    Only the pixels are kept, so memory stays proportional to the batch, not to the pictures.
    """
    done = []
    for item in items:
        if item.image is not None:
            item.pixels = encoder.preprocess(item.image)
            item.image = None
            done.append(item)
    return done


def embed(group: list[Outcome], encoder: Encoder) -> None:
    """Encode every image and text of the group in as few large batches as possible."""
    pixels, texts = [], []
    for outcome in group:
        if outcome.document is None:
            continue
        for item in outcome.document.items:
            if item.vector is not None:
                continue
            if item.pixels is not None:
                pixels.append(item.pixels)
            elif item.embed_text is not None:
                texts.append(item.embed_text)
    image_vectors = iter(encoder.encode_preprocessed(pixels) if pixels else [])
    text_vectors = iter(encoder.encode_texts(texts) if texts else [])
    for outcome in group:
        if outcome.document is None:
            continue
        rows, outcome.embedded = [], []
        for index, item in enumerate(outcome.document.items):
            if item.vector is not None:
                rows.append(item.vector)
            elif item.pixels is not None:
                rows.append(next(image_vectors))
                item.pixels = None
            elif item.embed_text is not None:
                rows.append(next(text_vectors))
            else:
                continue
            outcome.embedded.append(index)
        outcome.vectors = np.stack(rows) if rows else np.zeros((0, encoder.dim), np.float32)
