"""One answer from several collections: each searched on its own, the evidence merged by score.

A key that reads a family's photos and a team's documents may ask one question of both. Each
collection keeps its own catalog, model and text space, so each is searched as it would be alone;
a result's fused score is relative to the query within its collection (1: its best candidate),
which is what lets the collections' best lead together, as a search across them does. The
evidence is then chosen from the merged list within the same budgets as one collection's, each
piece labelled with its collection so the model, the citations and the links say where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from spyglass.generator.backends import Request
from spyglass.generator.evidence import Evidence, select_evidence
from spyglass.generator.prompt import PromptOptions, build_messages
from spyglass.retriever import Filters, RankingOptions

if TYPE_CHECKING:
    from spyglass.engine import Engine


def prepare_across(
    engines: Sequence[tuple[str, Engine]],
    question: str,
    filters: Filters | None = None,
    options: PromptOptions | None = None,
    *,
    k: int = 8,
) -> Request:
    """The request for ``question`` over each (name, engine), answered by the first one's generator."""
    generator = engines[0][1].generator
    params = generator.params_for(options)  # a bad control is refused before anything is searched
    found = []
    for name, engine in engines:
        response = engine.search(question, filters, k=k, options=RankingOptions())
        found += [(result.score, name, result) for result in response.results]
    found.sort(key=lambda hit: -hit[0])
    best = found[:k]
    place = {(name, result.item_id): n for n, (_, name, result) in enumerate(best)}
    pieces: list[tuple[int, Evidence]] = []
    for name, engine in engines:
        mine = [result for _, owner, result in best if owner == name]
        for piece in select_evidence(
            mine,
            engine.store,
            max_images=generator.max_images,
            max_chars=generator.max_chars,
            max_side=generator.image_side,
        ):
            labelled = replace(piece, collection=name, label=f"{piece.label} (collection {name})")
            pieces.append((place[(name, piece.item_id)], labelled))
    evidence = _within_budget(
        [piece for _, piece in sorted(pieces, key=lambda pair: pair[0])],
        generator.max_images,
        generator.max_chars,
    )
    return Request(question, evidence, build_messages(question, evidence, options), params)


def _within_budget(evidence: list[Evidence], max_images: int, max_chars: int) -> list[Evidence]:
    """The best pieces, renumbered, while the images and the text fit one answer's budgets (each
    collection's choice was made within the whole budget)."""
    kept: list[Evidence] = []
    images = chars = 0
    for piece in evidence:
        if piece.is_image and images >= max_images:
            continue
        text = (piece.text or "")[: max(0, max_chars - chars)]
        if not (text or piece.is_image):
            continue
        images += piece.is_image
        chars += len(text)
        kept.append(replace(piece, number=len(kept) + 1, text=text or None))
    return kept
