"""Evidence: the numbered images and passages a model may use, chosen within budgets.

Each piece is labelled so both the model and the user can check it: ``[1] image
photos/cat.jpg``, ``[2] page 4 of manual.pdf``, ``[3] figure on page 2 of paper.pdf``,
``[4] passage from notes.md``, ``[5] text read from IMG_0042.jpg, top left``. Text
evidence is the chunk's parent passage (more context than the 45-word chunk), each
passage used once. A picture found by the words read in it carries that text and the
region it was read from, so the answer can quote it and the user can see where.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from spyglass.content import item_image, jpeg_bytes
from spyglass.errors import SpyglassError
from spyglass.kinds import ItemKind
from spyglass.retriever import SearchResult
from spyglass.store import Store


@dataclass
class Evidence:
    number: int
    item_id: int
    kind: str
    path: str
    label: str
    page: int | None = None
    bbox: list[float] | None = None
    timestamp: float | None = None
    text: str | None = None
    image: Image.Image | None = field(default=None, repr=False)
    score: float | None = None
    ocr: dict | None = None  # the matched lines read in the picture, with their boxes (SearchResult.ocr)
    page_item_id: int | None = None  # a passage's page render, to show the page it quotes
    page_size: list[float] | None = None  # the page in points, what ``bbox`` (the passage on it) refers to
    collection: str | None = None  # set when one answer draws on several collections (``across``)

    @property
    def is_image(self) -> bool:
        return self.image is not None

    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(self.image)).decode()

    def public(self) -> dict:
        """What an API or CLI shows for this evidence (no pixels)."""
        where = {"collection": self.collection} if self.collection is not None else {}
        return where | {
            "number": self.number,
            "item_id": self.item_id,
            "kind": self.kind,
            "path": self.path,
            "label": self.label,
            "page": self.page,
            "bbox": self.bbox,
            "timestamp": self.timestamp,
            "text": self.text,
            "score": self.score,
            "ocr": self.ocr,
            "thumbnail_url": f"/v1/items/{self.item_id}/thumbnail" if self.kind != ItemKind.CHUNK else None,
            "page_thumbnail_url": f"/v1/items/{self.page_item_id}/thumbnail" if self.page_item_id else None,
            "page_size": self.page_size,
        }


def label(result: SearchResult) -> str:
    if result.ocr and result.ocr.get("lines"):
        return f"text read from {_what(result)}, {region(result.ocr['lines'][0]['box'], result.ocr['size'])}"
    return _what(result)


def region(box: list[int], size: list[int] | None) -> str:
    """Where a box lies in its picture, in words a reader can find: "top left", "middle", "bottom"."""
    if not size:
        return "in the picture"
    x = (box[0] + box[2]) / 2 / max(1, size[0])
    y = (box[1] + box[3]) / 2 / max(1, size[1])
    row = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else "middle"
    column = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    return f"{row} {column}".strip()


def _what(result: SearchResult) -> str:
    name = Path(result.path).name
    if result.kind == ItemKind.PAGE:
        return f"page {result.page} of {name}"
    if result.kind == ItemKind.FIGURE:
        return f"figure on page {result.page} of {name}"
    if result.kind == ItemKind.KEYFRAME:
        return f"frame at {result.timestamp:.1f} s of {name}"
    if result.kind == ItemKind.CHUNK:
        return f"passage from {name}" + (f", page {result.page}" if result.page else "")
    return f"image {name}"


def select_evidence(
    results: list[SearchResult],
    store: Store,
    *,
    max_images: int = 4,
    max_chars: int = 6000,
    max_side: int = 768,
) -> list[Evidence]:
    """Number the best results, within an image count and a text budget."""
    evidence: list[Evidence] = []
    images = chars = 0
    passages_used: set[int] = set()
    chunks = store.items([r.item_id for r in results if r.kind == ItemKind.CHUNK])
    parents = store.items([row["parent_id"] for row in chunks.values() if row["parent_id"] is not None])
    for result in results:
        if result.kind == ItemKind.CHUNK:
            parent = chunks.get(result.item_id, {}).get("parent_id")
            if parent in passages_used:
                continue
            text = result.text or ""
            if parent in parents and parents[parent]["text"]:
                text = parents[parent]["text"]
                passages_used.add(parent)
            if chars + len(text) > max_chars:
                text = text[: max(0, max_chars - chars)]
            if not text:
                continue
            chars += len(text)
            evidence.append(_cite(result, len(evidence) + 1, text=text))
        elif images < max_images:
            try:
                picture = item_image(_row(result, store), max_side=max_side)
            except SpyglassError:
                continue  # the original moved or broke since indexing: offer what we can still show
            images += 1
            read = _read_text(result, store, max_chars - chars)
            chars += len(read or "")
            evidence.append(
                _cite(
                    result,
                    len(evidence) + 1,
                    timestamp=result.timestamp,
                    image=picture,
                    text=read,
                    ocr=result.ocr,
                )
            )
    return evidence


def _read_text(result: SearchResult, store: Store, budget: int) -> str | None:
    """All text read in a picture found by it (the matched lines alone lack their context)."""
    if not result.ocr or budget <= 0:
        return None
    output = store.stage_outputs("ocr", [result.item_id]).get(result.item_id)
    lines = output.get("lines", []) if isinstance(output, dict) else result.ocr["lines"]
    return "\n".join(line["text"] for line in lines)[:budget] or None


def _cite(result: SearchResult, number: int, **content) -> Evidence:
    """Evidence ``number`` for ``result``: what every citation carries, plus its text or its picture."""
    return Evidence(
        number,
        result.item_id,
        result.kind,
        result.path,
        label(result),
        page=result.page,
        score=result.dense,
        bbox=result.bbox,
        page_item_id=result.page_item_id,
        page_size=result.page_size,
        **content,
    )


def _row(result: SearchResult, store: Store) -> dict:
    row = store.item(result.item_id) or {}
    if result.kind == ItemKind.KEYFRAME:
        row = {**row, "thumbnail": store.thumbnail(result.item_id)}
    return {**row, "path": result.path, "kind": result.kind, "page": result.page}


def image_evidence(images: list[Image.Image], name: str = "your image") -> list[Evidence]:
    """Evidence for the 'look at this image' mode: the user's own pictures, no retrieval."""
    return [
        Evidence(n, 0, "upload", name, f"{name}" + (f" {n}" if len(images) > 1 else ""), image=image)
        for n, image in enumerate(images, start=1)
    ]
