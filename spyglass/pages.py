"""Rendering PDF pages: shared by the PDF loader (at index time) and ``content`` (crops shown later).

Both must agree on the scale an indexed page was rendered at, since item boxes of figures are
stored in that render's pixels; so the scale and the render live here, below both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

RENDER_SCALE = 1.5  # 108 dpi: figure crops stay legible, pages render in tens of ms


def render_page(page: pypdfium2.PdfPage, scale: float) -> Image.Image:
    """The page as an RGB picture of its own; the PDFium bitmap is freed now, under the caller's lock,
    not by the garbage collector on whatever thread it runs."""
    bitmap = page.render(scale=scale)
    try:
        return bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()
