"""Search results: everything a UI or the generator needs about each hit."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from spyglass.kinds import ItemKind
from spyglass.store import PERSON, Store
from spyglass.words import STOP_WORDS, fold, holds

SNIPPET_CHARS = 240


@dataclass
class SearchResult:
    item_id: int
    kind: str
    score: float  # in [0, 1]: the fused score that ordered the results (see retriever/ranking.py)
    dense: float | None  # CLIP cosine similarity to the query vector
    bm25: float | None  # BM25 score of the words matched (a chunk's: its section's)
    dense_rank: int | None
    bm25_rank: int | None
    document_id: int
    path: str
    mime: str | None
    page: int | None = None
    bbox: list[float] | None = None
    timestamp: float | None = None
    text: str | None = None
    snippet: str | None = None
    highlights: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in the snippet
    has_thumbnail: bool = False
    semantic: float | None = None  # cosine similarity in the text space (passages)
    semantic_rank: int | None = None
    # Text read in the picture that holds query words: {"size": [w, h], "lines": [{"text", "box", "confidence"}]},
    # boxes (x0, y0, x1, y1) in the item's own pixels of that size.
    ocr: dict | None = None
    page_item_id: int | None = None  # a passage's page render (PDFs): its picture, to show where it is
    page_size: list[float] | None = None  # that page's size in points, what a passage's ``bbox`` refers to

    @property
    def thumbnail_url(self) -> str | None:
        return f"/v1/items/{self.item_id}/thumbnail" if self.has_thumbnail else None


@dataclass
class SearchResponse:
    results: list[SearchResult]
    no_match: bool = False
    message: str | None = None
    floors: dict[str, float] = field(default_factory=dict)
    offset: int = 0
    k: int = 10
    hidden: int = (
        0  # candidates the relevance floor left out (RankingOptions(relevance_floor=False) shows them)
    )

    def to_dict(self) -> dict:
        """The JSON form the API returns and ``spyglass search --json`` prints (the same bytes either way)."""
        body = asdict(self)
        for result, original in zip(body["results"], self.results):
            result["thumbnail_url"] = original.thumbnail_url
            result["content_url"] = (
                f"/v1/items/{original.item_id}/content" if original.has_thumbnail else None
            )
            result["page_thumbnail_url"] = (
                f"/v1/items/{original.page_item_id}/thumbnail" if original.page_item_id else None
            )
        return body


def snippet(text: str | None, words: list[str]) -> tuple[str | None, list[tuple[int, int]]]:
    """A window of ``text`` around the first query word found, and where the words are in it."""
    if not text:
        return None, []
    terms = [re.escape(_stem(w)) for w in words if len(w) > 1]
    pattern = re.compile(r"\b(" + "|".join(terms) + r")\w*", re.IGNORECASE) if terms else None
    first = pattern.search(text) if pattern else None
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    window = text[start : start + SNIPPET_CHARS]
    prefix = "…" if start else ""
    window = prefix + window + ("…" if start + SNIPPET_CHARS < len(text) else "")
    spans = [(m.start(), m.end()) for m in pattern.finditer(window)] if pattern else []
    return window, spans


def _stem(word: str) -> str:
    """A crude suffix strip so highlights match what FTS5's porter stemmer matched (Berbers ~ Berber)."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.lower().endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def read_lines(output: object) -> dict | None:
    """An OCR stage output as the API shows it: {"size": [w, h], "lines": [...]}; None when nothing was read."""
    if isinstance(output, dict) and output.get("lines"):
        return {"size": output.get("size"), "lines": output["lines"]}
    return None


def matched_lines(output: object, terms: list[str]) -> dict | None:
    """The lines of an OCR stage output that hold any of ``terms`` (a word or phrase, inside a word,
    or nearly spelled; case and accents ignored)."""
    read = read_lines(output)
    wanted = [term for term in terms if len(term) > 1 and fold(term) not in STOP_WORDS]
    lines = [line for line in read["lines"] if holds(line["text"], wanted)] if read else []
    return {**read, "lines": lines} if lines else None


def parse_bbox(raw: str | None) -> list[float] | None:
    return json.loads(raw) if raw else None


def item_view(store: Store, item_id: int) -> dict | None:
    """An item as the API and MCP show it: where it is, its text, its document's metadata and tags,
    and the lines read in it."""
    row = store.item(item_id)
    if row is None:
        return None
    visual = ItemKind(row["kind"]).visual
    tags = store.tags(row["document_id"])
    return {
        "item_id": row["id"],
        "kind": row["kind"],
        "document_id": row["document_id"],
        "path": row["path"],
        "mime": row["mime"],
        "page": row["page"],
        "bbox": parse_bbox(row["bbox"]),
        "timestamp": row["timestamp"],
        "text": row["text"],
        "char_start": row["char_start"],
        "char_end": row["char_end"],
        "parent_id": row["parent_id"],
        "metadata": store.metadata(row["document_id"]),
        "tags": [tag["tag"] for tag in tags],
        # Tags a labeller chose: {"tag", "probability", "origin": "labels:VOCABULARY@MODEL"}.
        "labels": [tag for tag in tags if tag["origin"] != PERSON],
        # Lines read in the picture: {"size": [w, h], "lines": [{"text", "box": [x0, y0, x1, y1], "confidence"}]}.
        "ocr": read_lines(store.stage_outputs("ocr", [item_id]).get(item_id)) if visual else None,
    }
