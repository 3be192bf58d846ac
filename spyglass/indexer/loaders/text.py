"""Plain text, Markdown and HTML: sections (with their headings) cut into passages and chunks.

The heading a chunk sits under is prepended to the text CLIP embeds ("Etymology: ..."),
so a short chunk keeps its context; stored text stays exactly the source text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from spyglass.indexer.chunking import passages
from spyglass.indexer.loaders.base import ItemDraft, LoadedDocument, LoadError, LoadOptions, register_loader
from spyglass.kinds import FileKind, ItemKind

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)  # one line only
_ENCODINGS = ("utf-8", "utf-16", "cp1252")


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        raise LoadError("not valid UTF-8, UTF-16 or Windows-1252 text") from None


@register_loader("text/")
def load_text(path: Path, mime: str, kind: FileKind, options: LoadOptions) -> LoadedDocument:
    """At most ``max_text_bytes`` are read (a note says so): a 20 MB one-line file took 89 s and 1.5 GB."""
    size = path.stat().st_size
    data = _head(path, options.max_text_bytes)
    raw, encoding = decode(data)
    if kind == FileKind.HTML:
        text, sections, title = html_sections(raw)
    elif kind == FileKind.MARKDOWN:
        text, sections, title = raw, markdown_sections(raw), None
    else:
        text, sections, title = raw, [(None, 0, len(raw))], None
    if not text.strip():
        raise LoadError("no text content")
    document = LoadedDocument(path, kind, mime, metadata={"encoding": encoding, "characters": len(text)})
    if len(data) < size:
        document.limit(f"only the first {len(data):,} of {size:,} bytes were indexed (text size limit)")
    if title:
        document.metadata["title"] = title
    for heading, start, end in sections:
        add_passages(document.items, text, start, end, context=heading)
    _limit_chunks(document, options.max_chunks, len(text))
    if not document.items:
        raise LoadError("no text content")
    return document


def _limit_chunks(document: LoadedDocument, limit: int, characters: int) -> None:
    """Keep the first ``limit`` chunks (every chunk is embedded: the cost of a file is its chunk count).

    Bytes alone do not bound it: 4 MB of HTML made of short sections is 90,000 items.
    """
    chunks = [i for i, item in enumerate(document.items) if item.kind == ItemKind.CHUNK]
    if len(chunks) <= limit:
        return
    cut = chunks[limit]
    kept = document.items[cut - 1].char_end
    del document.items[cut:]
    document.limit(
        f"only the first {limit:,} chunks ({kept:,} of {characters:,} characters) were indexed (chunk limit)"
    )


def _head(path: Path, limit: int) -> bytes:
    """The whole file, or its first ``limit`` bytes cut after a line end so no character is split."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) <= limit:
        return data
    cut = data.rfind(b"\n", 0, limit) + 1 or limit
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        cut -= cut % 2  # UTF-16 code units are two bytes
    else:
        while cut > 0 and data[cut] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
            cut -= 1
    return data[:cut]


def add_passages(
    items: list[ItemDraft],
    text: str,
    start: int,
    end: int,
    *,
    context: str | None = None,
    page: int | None = None,
) -> None:
    """Append passage items and their chunk items for ``text[start:end]``."""
    for passage in passages(text, start, end):
        parent = len(items)
        span = passage.span
        items.append(
            ItemDraft(
                kind=ItemKind.PASSAGE,
                text=text[span.start : span.end],
                page=page,
                char_start=span.start,
                char_end=span.end,
            )
        )
        for chunk in passage.chunks:
            body = text[chunk.start : chunk.end]
            items.append(
                ItemDraft(
                    kind=ItemKind.CHUNK,
                    text=body,
                    embed_text=f"{context}: {body}" if context else body,
                    page=page,
                    char_start=chunk.start,
                    char_end=chunk.end,
                    parent=parent,
                )
            )


def markdown_sections(text: str) -> list[tuple[str | None, int, int]]:
    """(heading, start, end) for the text under each ATX heading (and before the first)."""
    sections, heading, start = [], None, 0
    for match in _MD_HEADING.finditer(text):
        sections.append((heading, start, match.start()))
        heading, start = match.group(2), match.end()
    sections.append((heading, start, len(text)))
    return [s for s in sections if text[s[1] : s[2]].strip()]


class _VisibleText(HTMLParser):
    """Collects visible text, marking where headings start sections; skips scripts, styles and head."""

    HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "svg"})
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "section",
            "article",
            "li",
            "tr",
            "br",
            "table",
            "ul",
            "ol",
            "pre",
            "blockquote",
            "header",
            "footer",
        }
    )
    HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.hidden = 0
        self.heading: list[str] | None = None
        self.sections: list[tuple[str | None, int]] = [(None, 0)]
        self.title: list[str] | None = None
        self.title_text: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "title":
            self.title = []
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.HEADINGS:
            self._break()
            self.heading = []
        elif tag in self.BLOCKS:
            self._break()

    def handle_endtag(self, tag) -> None:
        if tag == "title" and self.title is not None:
            self.title_text = " ".join("".join(self.title).split()) or None
            self.title = None
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.HEADINGS and self.heading is not None:
            heading = " ".join("".join(self.heading).split())
            self.heading = None
            self._break()
            self.sections.append((heading or None, self.length))
        elif tag in self.BLOCKS:
            self._break()

    def handle_data(self, data) -> None:
        if self.title is not None:
            self.title.append(data)
        if self.hidden:
            return
        if self.heading is not None:
            self.heading.append(data)
            return
        text = " ".join(data.split())
        if text:
            if self.parts and not self.parts[-1].endswith(("\n", " ")):
                text = " " + text
            self.parts.append(text)
            self.length += len(text)

    def _break(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n\n"):
            self.parts.append("\n\n")
            self.length += 2


def html_sections(html: str) -> tuple[str, list[tuple[str | None, int, int]], str | None]:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    bounds = [*parser.sections, (None, len(text))]
    sections = [(heading, start, bounds[i + 1][1]) for i, (heading, start) in enumerate(parser.sections)]
    return text, [s for s in sections if text[s[1] : s[2]].strip()], parser.title_text
