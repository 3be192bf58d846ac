"""How a search response reads in a terminal: one function, for the in-process CLI and the thin client.

It takes the JSON form (``SearchResponse.to_dict``) so a response from a running
server prints exactly as one computed in-process; stdlib only, for the same reason.
"""

from __future__ import annotations


def search_lines(body: dict) -> list[str]:
    """Numbered results (with page, timestamp and cosine), their snippets and the text read where they
    matched, or the no-match message."""
    if body["no_match"]:
        return [body["message"]]
    lines = []
    for rank, result in enumerate(body["results"], start=body["offset"] + 1):
        where = f" p.{result['page']}" if result["page"] else ""
        where += f" @{result['timestamp']:.1f}s" if result["timestamp"] is not None else ""
        # A passage found by the text space shows that similarity; anything else CLIP's.
        if result.get("semantic") is not None:
            similarity = f"meaning {result['semantic']:.3f}"
        else:
            similarity = f"cosine {result['dense']:.3f}" if result["dense"] is not None else "cosine -"
        lines.append(
            f"{rank:>3}. [{result['kind']}] {result['path']}{where}  (item {result['item_id']}, {similarity})"
        )
        if result["snippet"]:
            lines.append(f"     {result['snippet']}")
        for line in (result.get("ocr") or {}).get("lines", [])[:3]:
            lines.append(f"     reads “{line['text']}” at {tuple(line['box'])}")
    return lines
