"""PDFs through pypdfium2: per page, a rendered page image, its figures, and its text.

Figures are the page's image objects and top-level form XObjects (vector drawings)
large enough to matter, merged where they overlap, cropped from the page render so
masks and transforms come out as the reader sees them. Boxes are stored in PDF
points with the origin at the page's top-left. A scanned page without a text layer
still yields its page image, which is what CLIP and a VLM need.
"""

from __future__ import annotations

import re
import time
import unicodedata
from pathlib import Path

import pypdfium2 as pdfium

from spyglass.images import thumbnail
from spyglass.indexer.loaders.base import ItemDraft, LoadedDocument, LoadError, LoadOptions, register_loader
from spyglass.indexer.loaders.text import add_passages
from spyglass.kinds import FileKind, ItemKind
from spyglass.pages import RENDER_SCALE, render_page
from spyglass.pdfium_lock import PDFIUM

MIN_FIGURE_FRACTION = 0.01  # of the page area (small diagrams count)
MIN_FIGURE_SIDE = 40.0  # points
# PDFium keeps what it parsed for a page (its image streams among it) until the document closes,
# page closed or not: rendering a 600-page scanned PDF grew by 4.4 MB every 100 pages, ~130 MB at
# 3,000. Reopened every REOPEN_PAGES pages it stayed flat; an open costs ~16 ms at 600 pages.
REOPEN_PAGES = 100
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not \t \n \r
_FIGURE_TYPES = (pdfium.raw.FPDF_PAGEOBJ_IMAGE, pdfium.raw.FPDF_PAGEOBJ_FORM)


@register_loader("application/pdf")
def load_pdf(path: Path, mime: str, kind: FileKind, options: LoadOptions) -> LoadedDocument:
    """Pages one at a time: each page's items go to ``options.digest`` before the next is rendered.

    A page render is several MB; kept until the document was done, a 5,000-page PDF
    passed 3 GB. Pages past ``max_pages`` or ``max_seconds`` (the first page always loads)
    are left out with a note.
    """
    with PDFIUM:
        pdf = _open(path)
    try:
        with PDFIUM:
            document = LoadedDocument(path, kind, mime, metadata=_metadata(pdf))
            pages = len(pdf)
        problems = []
        deadline = time.monotonic() + options.max_seconds
        for number in range(pages):
            if number == options.max_pages or (number and time.monotonic() > deadline):
                limit = "page limit" if number == options.max_pages else "time limit"
                document.limit(f"only the first {number} of {pages} pages were indexed ({limit})")
                break
            start = len(document.items)
            try:
                with PDFIUM:  # released between pages: the digest embeds while other threads render
                    if number and number % REOPEN_PAGES == 0:
                        pdf.close()
                        pdf = _open(path)
                    _load_page(pdf, number, document.items)
            except pdfium.PdfiumError as exc:
                problems.append(f"page {number + 1}: {exc}")
            if options.digest is not None:
                options.digest(document.items[start:])
        if problems:
            document.metadata["page_errors"] = "; ".join(problems)
        if not document.items:
            raise LoadError("no readable pages" + (f" ({problems[0]})" if problems else ""))
        return document
    finally:
        with PDFIUM:
            pdf.close()


def _open(path: Path) -> pdfium.PdfDocument:
    try:  # through a Python file object: the name need not be valid UTF-8
        return pdfium.PdfDocument(open(path, "rb"), autoclose=True)  # pdfium closes it
    except pdfium.PdfiumError as exc:
        raise LoadError(f"cannot open PDF ({exc})") from None


def _load_page(pdf: pdfium.PdfDocument, number: int, items: list[ItemDraft]) -> None:
    page = pdf[number]
    try:
        width, height = page.get_size()
        render = render_page(page, RENDER_SCALE)
        page_index = len(items)
        items.append(
            ItemDraft(
                kind=ItemKind.PAGE,
                image=render,
                page=number + 1,
                bbox=(0, 0, width, height),
                thumbnail=thumbnail(render),
            )
        )
        for box in figure_boxes(page, width, height):
            crop = render.crop(tuple(round(v * RENDER_SCALE) for v in box))
            items.append(
                ItemDraft(
                    kind=ItemKind.FIGURE,
                    image=crop,
                    page=number + 1,
                    bbox=box,
                    parent=page_index,
                    thumbnail=thumbnail(crop),
                )
            )
        textpage = page.get_textpage()
        try:
            raw = textpage.get_text_range()
            text, origin = page_text(raw)
            first = len(items)
            add_passages(items, text, 0, len(text), page=number + 1)
            if len(raw) == textpage.count_chars():  # one string index per PDFium character
                for item in items[first:]:
                    item.bbox = _text_box(textpage, origin, item.char_start, item.char_end, height)
        finally:
            textpage.close()
    finally:
        page.close()


def page_text(raw: str) -> tuple[str, list[int]]:
    """A page's text as people read and search it, and for each of its characters the raw index.

    PDFium marks a hyphen it removed at a line break with U+FFFE ("multi", U+FFFE, "plicative"),
    a non-character that fonts draw as a box and that split the word for search; it is
    dropped, joining the word. NFKC turns ligatures (the one glyph of "fi") and
    compatibility forms into plain letters, and stray control characters go. The raw
    indices let a passage be found on the page again (``_text_box``).
    """
    text, origin = [], []
    for index, char in enumerate(raw):
        if char == "\ufffe" or _CONTROL.match(char):
            continue
        for piece in unicodedata.normalize("NFKC", char):
            text.append(piece)
            origin.append(index)
    return "".join(text), origin


def _text_box(
    textpage: pdfium.PdfTextPage, origin: list[int], start: int, end: int, height: float
) -> tuple[float, float, float, float] | None:
    """The rectangle (points from the top-left, like figures) around text[start:end] on the page."""
    if end <= start:
        return None
    first, last = origin[start], origin[end - 1]
    rects = [textpage.get_rect(i) for i in range(textpage.count_rects(first, last - first + 1))]
    if not rects:
        return None
    left, bottom, right, top = zip(*rects)  # PDF space: the origin is bottom-left
    return min(left), height - max(top), max(right), height - min(bottom)


def figure_boxes(
    page: pdfium.PdfPage, width: float, height: float
) -> list[tuple[float, float, float, float]]:
    """Figure rectangles (x0, y0, x1, y1) in points from the top-left, largest first, overlaps merged."""
    boxes = []
    for obj in page.get_objects(filter=_FIGURE_TYPES, max_depth=3):
        if obj.type == pdfium.raw.FPDF_PAGEOBJ_FORM and obj.level > 0:
            continue  # nested forms are parts of a larger drawing
        left, bottom, right, top = obj.get_bounds()
        box = (max(0.0, left), max(0.0, height - top), min(width, right), min(height, height - bottom))
        w, h = box[2] - box[0], box[3] - box[1]
        if w >= MIN_FIGURE_SIDE and h >= MIN_FIGURE_SIDE and w * h >= MIN_FIGURE_FRACTION * width * height:
            boxes.append(box)
    return _merge(boxes)


def _merge(boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    merged: list[tuple[float, float, float, float]] = []
    for box in sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
        for i, other in enumerate(merged):
            if _overlap(box, other) > 0.5:
                merged[i] = (
                    min(box[0], other[0]),
                    min(box[1], other[1]),
                    max(box[2], other[2]),
                    max(box[3], other[3]),
                )
                break
        else:
            merged.append(box)
    return [tuple(round(v, 1) for v in box) for box in merged]


def _overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def _metadata(pdf: pdfium.PdfDocument) -> dict:
    found = {"pages": len(pdf)}
    for key, value in pdf.get_metadata_dict(skip_empty=True).items():
        if key in ("Title", "Author", "Subject", "Keywords", "CreationDate"):
            found[key.lower()] = value
    return found
