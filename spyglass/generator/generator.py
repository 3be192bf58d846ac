"""Ask: retrieve evidence, prompt a backend, and return an answer whose citations are checked.

The answer's citations are parsed and validated against the evidence offered;
numbers that point at nothing are removed and flagged. An answer that cites no
evidence is replaced by "could not find" (its raw text is kept for inspection),
so nothing unsupported is presented as an answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from spyglass.generator.backends import Backend, GenerationParams, GenerationParamsError, Request
from spyglass.generator.citations import parse_citations, renumber
from spyglass.generator.conversation import Turn, history_messages, standalone
from spyglass.generator.evidence import Evidence, image_evidence, select_evidence
from spyglass.generator.prompt import PromptOptions, build_messages
from spyglass.images import ImageSource, open_image
from spyglass.retriever import Filters, Query, QueryError, RankingOptions, Retriever

NOT_FOUND = "I could not find the answer in the collection."


@dataclass
class Answer:
    question: str
    text: str
    supported: bool
    cited: list[Evidence] = field(default_factory=list)
    uncited: list[Evidence] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    raw: str = ""
    backend: str = ""
    renumbered: bool = False  # the text's citation numbers differ from the ones the model wrote
    candidates: list[Answer] = field(default_factory=list)  # with n > 1: all n, this one first
    # in a conversation: the question as searched and answered, and where the turn is
    standalone: str | None = None
    conversation_id: str | None = None
    turn: int | None = None

    def public(self) -> dict:
        shown = {
            "question": self.question,
            "answer": self.text,
            "supported": self.supported,
            "citations": [e.public() for e in self.cited],
            "uncited": [e.public() for e in self.uncited],
            "invalid_citations": self.invalid_citations,
            "backend": self.backend,
        }
        if self.candidates:
            shown["candidates"] = [candidate.public() for candidate in self.candidates]
        if self.conversation_id is not None:
            shown |= {
                "standalone": self.standalone,
                "conversation_id": self.conversation_id,
                "turn": self.turn,
            }
        return shown


class Generator:
    def __init__(
        self,
        retriever: Retriever,
        backend: Backend,
        *,
        max_images: int = 4,
        max_chars: int = 6000,
        image_side: int = 768,
        params: GenerationParams | None = None,
        max_n: int = 4,
    ) -> None:
        """``params``: the settings' generation controls, which a request may override; ``max_n``: the
        most candidate answers one request may ask for (the backend may allow fewer)."""
        self.retriever, self.backend = retriever, backend
        self.max_images, self.max_chars, self.image_side = max_images, max_chars, image_side
        self.params = params or GenerationParams()
        self.max_n = min(max_n, backend.max_n or max_n)

    def prepare(
        self,
        question: str,
        images: list[ImageSource] | None = None,
        filters: Filters | None = None,
        k: int = 8,
        options: PromptOptions | None = None,
        history: Sequence[Turn] = (),
    ) -> Request:
        """Retrieve evidence (the question's text, plus the user's images if given) and build the prompt;
        ``history``: a conversation's turns so far, which make the question standalone first, and
        whose cited items stay candidates."""
        params = self.params_for(options)  # a bad control is refused before anything is searched
        question = standalone(question, history, self.backend)
        cited = tuple(item for turn in history for item in turn.cited)
        query = Query(text=question, images=list(images or []), keep=cited)
        response = self.retriever.search(
            query, filters, k=k, options=RankingOptions(relevance_floor=not images)
        )
        evidence = select_evidence(
            response.results,
            self.retriever.store,
            max_images=self.max_images,
            max_chars=self.max_chars,
            max_side=self.image_side,
        )
        if images:  # the user's own picture is evidence too, shown first
            mine = image_evidence([self._picture(source) for source in images])
            for piece in evidence:
                piece.number += len(mine)
            evidence = mine + evidence
        messages = build_messages(question, evidence, options, history=history_messages(history))
        return Request(question, evidence, messages, params)

    def look(self, question: str, images: list[ImageSource], options: PromptOptions | None = None) -> Request:
        """'Look at this image': the user's images only, no retrieval."""
        if not images:
            raise QueryError("look mode needs at least one image")
        params = self.params_for(options)
        evidence = image_evidence([self._picture(source) for source in images])
        return Request(
            question, evidence, build_messages(question, evidence, options, retrieval=False), params
        )

    def answer(self, request: Request, *, retrieval: bool = True) -> Answer:
        """The checked answer; with ``n`` > 1, each candidate checked and cited on its own, the first in front."""
        if retrieval and not request.evidence:
            return self._finish(request, "", retrieval)
        answers = [self._finish(request, text, retrieval) for text in self.backend.candidates(request)]
        return replace(answers[0], candidates=answers if len(answers) > 1 else [])

    def stream(self, request: Request, *, retrieval: bool = True) -> Iterator[str | Answer]:
        """Text pieces as they are generated, then the checked :class:`Answer` (with citations) last."""
        if request.params.n > 1:
            raise GenerationParamsError("n", "several answers cannot be streamed; ask without streaming")
        return self._stream(request, retrieval)

    def _stream(self, request: Request, retrieval: bool) -> Iterator[str | Answer]:
        pieces = []
        if request.evidence or not retrieval:
            for piece in self.backend.stream(request):
                pieces.append(piece)
                yield piece
        yield self._finish(request, "".join(pieces), retrieval)

    def _finish(self, request: Request, raw: str, retrieval: bool) -> Answer:
        if not retrieval:
            text = request.params.until_stop(raw).strip()
            return Answer(
                request.question,
                text,
                bool(text),
                raw=raw,
                backend=self.backend.name,
                uncited=request.evidence,
            )
        parsed = parse_citations(request.params.until_stop(raw), len(request.evidence))
        # Numbers a reader sees run 1, 2, 3 in reading order: the cited evidence first, as first cited.
        by_number = {e.number: e for e in request.evidence}
        order = parsed.cited + [e.number for e in request.evidence if e.number not in parsed.cited]
        numbers = {old: new for new, old in enumerate(order, start=1)}
        cited = [replace(by_number[n], number=numbers[n]) for n in parsed.cited]
        uncited = [replace(by_number[n], number=numbers[n]) for n in order[len(parsed.cited) :]]
        text = renumber(parsed.text, numbers) if parsed.supported else NOT_FOUND
        renumbered = parsed.supported and any(old != new for old, new in numbers.items())
        return Answer(
            request.question,
            text,
            parsed.supported,
            cited,
            uncited,
            parsed.invalid,
            raw,
            self.backend.name,
            renumbered,
        )

    def params_for(self, options: PromptOptions | None) -> GenerationParams:
        """The settings' controls with the request's own over them, checked (a 422 names a bad one)."""
        params = self.params.override(options.generation if options else {})
        params.check(self.max_n)
        return params

    def _picture(self, source: ImageSource):
        """A user's image, capped to ``image_side`` like every image a model is shown."""
        image = open_image(source, min_side=self.image_side // 2, max_pixels=self.retriever.max_pixels)
        image.thumbnail((self.image_side, self.image_side))
        return image
