"""No model: a short answer assembled from the evidence itself, with citations.

The sentences of the text evidence that share the most words with the question are
quoted; the best image evidence is named with what we know about it (file, page,
capture date, camera). It is the default, so ``ask`` always works, and every claim
it makes is a citation of retrieved evidence by construction.
"""

from __future__ import annotations

import re
from pathlib import Path

from spyglass.generator.backends.base import Backend, Request

_STOP = set(
    "a an the of in on at to for and or is are was were be been what which who whom where when why how "
    "does do did this that these those it its with from by as about into show shows picture pictures image "
    "images photo photos find me my i you your there their".split()
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


class ExtractiveBackend(Backend):
    name = "extractive"

    def __init__(self, max_sentences: int = 2, max_images: int = 2) -> None:
        self.max_sentences, self.max_images = max_sentences, max_images

    def generate(self, request: Request) -> str:
        wanted = _words(request.question)
        scored = []
        for piece in request.evidence:
            if piece.text:
                for sentence in _SENTENCE.split(piece.text):
                    overlap = len(wanted & _words(sentence))
                    if overlap:
                        scored.append((overlap, -piece.number, sentence.strip(), piece.number))
        scored.sort(reverse=True)
        lines = [f"“{sentence}” [{number}]" for _, _, sentence, number in scored[: self.max_sentences]]
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
        return " ".join(lines)
