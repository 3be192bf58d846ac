"""An indexed item's visual content, read back from its document: the photo, the page, the figure.

Used when a generator shows evidence to a model and when the API serves an item's
content. Only paths recorded in the catalog are opened, never a path from a client.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from spyglass.errors import ImageLoadError
from spyglass.images import open_image
from spyglass.kinds import ItemKind
from spyglass.paths import path_text, real_path

PAGE_SCALE = 2.0  # 144 dpi: small print stays legible for a vision-language model


def item_image(row: dict, *, max_side: int = 1024) -> Image.Image:
    """The image an item stands for, at most ``max_side`` pixels on its longer side.

    ``row`` is a catalog item row with its document ``path`` (``Catalog.items``).
    Keyframes fall back to their stored thumbnail; a figure is cropped from its page.
    """
    kind, path = row["kind"], real_path(row["path"], row.get("raw_path"))
    if kind == ItemKind.IMAGE:
        image = open_image(path, min_side=max_side // 2)
    elif kind in (ItemKind.PAGE, ItemKind.FIGURE):
        bbox = json.loads(row["bbox"]) if kind == ItemKind.FIGURE and row.get("bbox") else None
        image = _render_page(path, row["page"], bbox)
    elif row.get("thumbnail"):
        image = Image.open(io.BytesIO(row["thumbnail"])).convert("RGB")
    else:
        raise ImageLoadError(f"item {row['id']} ({kind}) has no visual content")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.BICUBIC)
    return image


def _render_page(path: Path, page: int, bbox: list[float] | None) -> Image.Image:
    import pypdfium2 as pdfium

    try:  # through a Python file object: the name need not be valid UTF-8
        pdf = pdfium.PdfDocument(open(path, "rb"), autoclose=True)  # pdfium closes it
    except (pdfium.PdfiumError, OSError) as exc:
        raise ImageLoadError(f"{path_text(path)}: cannot open PDF ({exc})") from None
    try:
        render = pdf[page - 1].render(scale=PAGE_SCALE).to_pil().convert("RGB")
    finally:
        pdf.close()
    if bbox:
        render = render.crop(tuple(round(v * PAGE_SCALE) for v in bbox))
    return render


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
