"""The OCR stage: text read in visual items joins their searchable words, with where it was read.

It runs after embedding (an item is searchable by CLIP before its text is read), in small
batches that commit on their own (a page takes seconds; a killed run loses little), and
``spyglass status`` shows its backlog. What it reads, per item kind:

- photos, figures and keyframes pass the reader's gate first; most photos stop there,
  decoded small, and nothing is stored for them;
- a PDF page is read whole only when its text layer is sparse (a scan, a page of charts);
  its figures are then covered by the page and not read twice;
- pages with a real text layer are skipped: their text is already indexed, exactly.

The stored output lists each line with its box in the item's own pixel coordinates (and
the item's size in them) and its confidence (for highlighting and citing where a match was read); the lines' text goes
to the item's ``ocr`` column, which BM25 (words and substrings) searches, and the text
space embeds (its stage is asked to run again on an item whenever text is read in it).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from spyglass.content import content_scale, item_image
from spyglass.errors import ImageLoadError
from spyglass.indexer.ocr.blank import is_blank
from spyglass.indexer.ocr.gate import GATE_SIDE
from spyglass.indexer.ocr.reader import OcrReader
from spyglass.indexer.stages import ItemStage
from spyglass.kinds import VISUAL_KINDS, ItemKind
from spyglass.store import Store


class OcrStage(ItemStage):
    name = "ocr"
    version = 1
    kinds = VISUAL_KINDS
    batch_size = 16  # read by ``workers`` threads; a page takes a second or two

    def __init__(
        self,
        reader: Callable[[], OcrReader],
        store: Callable[[], Store],
        *,
        max_pixels: int = 40_000_000,
        sparse_page_chars: int = 200,
        reader_options: dict | None = None,
    ) -> None:
        """``reader`` is called on the first item that needs it: an up-to-date collection loads no model.
        ``reader_options`` (``OcrReader``'s arguments) let a worker elsewhere build the same reader."""
        self._reader, self._store = reader, store
        self.max_pixels, self.sparse_page_chars = max_pixels, sparse_page_chars
        self.reader_options = reader_options

    def run(self, items: list[dict]) -> dict[int, Any]:
        outputs, todo = self.split(items)  # the store is asked from this thread
        return outputs | read_rows(self._reader(), todo, self.max_pixels)

    def split(self, items: list[dict]) -> tuple[dict[int, Any], list[dict]]:
        skipped = {row["id"]: self._skipped(row) for row in items}
        return {i: why for i, why in skipped.items() if why}, [row for row in items if not skipped[row["id"]]]

    def worker(self) -> tuple[type, dict] | None:
        if self.reader_options is None:
            return None
        return OcrWorker, {**self.reader_options, "max_pixels": self.max_pixels}

    def _skipped(self, row: dict) -> dict | None:
        """Why a page or figure is not read ({"skipped": why}), or None to read it."""
        kind = ItemKind(row["kind"])
        if kind in (ItemKind.PAGE, ItemKind.FIGURE):
            sparse = self._store().text_chars(row["document_id"], row["page"]) < self.sparse_page_chars
            if kind is ItemKind.PAGE and not sparse:
                return {"skipped": "the page has a text layer"}
            if kind is ItemKind.FIGURE and sparse:
                return {"skipped": "read with its page"}
        return None

    def record(self, store: Store, batch: list[dict], outputs: dict[int, Any]) -> None:
        """The lines' text into ``items.ocr`` and the lines into the stage record, in one transaction."""
        texts = {row["id"]: _joined(outputs.get(row["id"])) for row in batch}
        with store.write() as tx:
            tx.set_ocr(texts)
            # The items' words changed: stages that read them (the text space) take them up again.
            tx.rerun_stages([i for i, text in texts.items() if text], keep=self.name)
            tx.record_stage(self.name, self.version, {row["id"]: outputs.get(row["id"]) for row in batch})


class OcrWorker:
    """The reading half of the stage, where the OCR models are loaded once (a Ray actor)."""

    def __init__(self, cache_dir: str, language: str, threads: int, max_pixels: int) -> None:
        self.reader = OcrReader(Path(cache_dir), language, threads)
        self.max_pixels = max_pixels

    def __call__(self, rows: list[dict]) -> dict[int, Any]:
        return read_rows(self.reader, rows, self.max_pixels)


def read_rows(reader: OcrReader, rows: list[dict], max_pixels: int) -> dict[int, Any]:
    """Each row's reading (see ``read_item``), one picture per reader pipeline at a time."""
    with ThreadPoolExecutor(reader.workers, thread_name_prefix="spyglass-ocr") as pool:
        return dict(zip([row["id"] for row in rows], pool.map(partial(read_item, reader, max_pixels), rows)))


def read_item(reader: OcrReader, max_pixels: int, row: dict) -> dict | None:
    """{"size", "lines"} for an item read, None when the gate saw no text, {"skipped": why} for a
    blank one, {"error": why}."""
    kind = ItemKind(row["kind"])
    try:
        # Photos and pages get a small look first (decoded small, rendered small): a blank page costs
        # milliseconds, and a photo the gate stops is decoded no further. Figures and keyframes are
        # decoded once: the gate below needs their whole picture anyway.
        look_first = kind in (ItemKind.IMAGE, ItemKind.PAGE)
        look = item_image(row, max_side=2 * GATE_SIDE if look_first else None)
        if is_blank(look):
            return {"skipped": "blank"}
        if kind is ItemKind.IMAGE and not reader.has_text(look):
            return None
        image = item_image(row, max_side=None) if look_first else look
    except ImageLoadError as exc:
        return {"error": str(exc)}
    image, shrink = _capped(image, max_pixels)
    if kind in (ItemKind.FIGURE, ItemKind.KEYFRAME) and not reader.has_text(image):
        return None
    factor = content_scale(kind) / shrink
    return {
        "size": [round(image.width * factor), round(image.height * factor)],  # what boxes refer to
        "lines": [line.scaled(factor).to_json() for line in reader.read(image)],
    }


def _joined(output: Any) -> str | None:
    """The text of an item's lines, one per line; None when nothing was read."""
    lines = output.get("lines") if isinstance(output, dict) else None
    return "\n".join(line["text"] for line in lines) if lines else None


def _capped(image: Image.Image, max_pixels: int) -> tuple[Image.Image, float]:
    """The image shrunk to at most ``max_pixels``, and the factor it was shrunk by (1.0: untouched)."""
    pixels = image.width * image.height
    if pixels <= max_pixels:
        return image, 1.0
    factor = (max_pixels / pixels) ** 0.5
    size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
    return image.resize(size, Image.BILINEAR), factor
