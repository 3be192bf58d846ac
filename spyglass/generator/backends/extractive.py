"""No model: a short answer assembled from the evidence itself, with citations.

The sentences of the text evidence that answer the question best are quoted; the
best image evidence is named with what we know about it (file, page, capture date,
camera). It is the default, so ``ask`` always works, and every claim it makes is a
citation of retrieved evidence by construction.

"Best" is meaning when the text space is there: each sentence's cosine to the
question under the sentence-embedding model, with shared words only breaking ties.
Without it, shared words decide. Either way, headings and fragments (too few words
to state anything) are never quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from spyglass.generator.backends.base import Backend, Request

_STOP = set(
    "a an the of in on at to for and or is are was were be been what which who whom where when why how "
    "does do did this that these those it its with from by as about into show shows picture pictures image "
    "images photo photos find me my i you your there their".split()
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
MIN_WORDS = 6  # "3.2.2 Multi-Head Attention" is a heading, not an answer
WORD_WEIGHT = 0.01  # per shared word, added to a cosine: a tie-breaker

Embed = Callable[[Sequence[str]], np.ndarray]
TextSpaceModel = Callable[[], Embed | None]  # asked per answer: the text space may be filled later


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


def sentences(text: str) -> list[str]:
    """The sentences of a passage worth quoting, whitespace tidied."""
    pieces = (" ".join(piece.split()) for piece in _SENTENCE.split(text))
    return [piece for piece in pieces if len(piece.split()) >= MIN_WORDS]


class ExtractiveBackend(Backend):
    """Honours ``max_tokens`` (as words; ``stop`` the generator applies to every backend's answer);
    ``temperature``, ``top_p`` and ``seed`` mean nothing to a quotation, and it has one answer (``n`` = 1)."""

    name = "extractive"
    max_n = 1
    condenses = False  # quotes, cannot write: conversation.standalone carries subject words instead

    def __init__(
        self, max_sentences: int = 2, max_images: int = 2, *, text_space: TextSpaceModel | None = None
    ) -> None:
        """``text_space`` returns the text space's encoder (L2-normalised rows), or None while there is none."""
        self.max_sentences, self.max_images, self.text_space = max_sentences, max_images, text_space

    def generate(self, request: Request) -> str:
        lines = [f"“{sentence}” [{number}]" for sentence, number in self.best_sentences(request)]
        pictures = [p for p in request.evidence if p.is_image][: self.max_images]
        if pictures:
            names = ", ".join(
                f"{Path(p.path).name}" + (f" (page {p.page})" if p.page else "") + f" [{p.number}]"
                for p in pictures
            )
            lines.insert(
                0, f"The closest matching {'picture is' if len(pictures) == 1 else 'pictures are'} {names}."
            )
        if not lines:
            return "I could not find the answer in the collection."
        return " ".join(" ".join(lines).split()[: request.params.max_tokens])

    def best_sentences(self, request: Request) -> list[tuple[str, int]]:
        """Up to ``max_sentences`` (sentence, evidence number), best first."""
        wanted = _words(request.question)
        candidates = [
            (sentence, piece.number)
            for piece in request.evidence
            if piece.text
            for sentence in sentences(piece.text)
        ]
        overlap = np.array([len(wanted & _words(s)) for s, _ in candidates], np.float64)
        embed = self.text_space() if self.text_space and candidates else None
        if embed is not None:
            vectors = embed([request.question, *(s for s, _ in candidates)])
            scores = vectors[1:] @ vectors[0] + WORD_WEIGHT * overlap
        else:
            scores = np.where(overlap > 0, overlap, -np.inf)  # no shared word: nothing to go on
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i][1]))
        return [candidates[i] for i in order[: self.max_sentences] if np.isfinite(scores[i])]
