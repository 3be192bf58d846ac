"""The backend interface: turn a prepared request into answer text, whole or streamed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from spyglass.errors import SpyglassError
from spyglass.generator.evidence import Evidence

MAX_STOP = 4  # stop strings a request may give, as the chat-completions API allows


class GenerationParamsError(SpyglassError, ValueError):
    """A generation control out of range; ``field`` names it (the API answers 422 with it)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"invalid {name}: {message}")
        self.field = name


@dataclass
class GenerationParams:
    """The chat-completions API's controls; each backend maps them to its own form."""

    max_tokens: int = 512
    temperature: float = 0.2
    top_p: float = 1.0
    n: int = 1  # candidate answers, each checked and cited on its own
    stop: list[str] | None = None
    seed: int | None = None

    def override(self, changes: Mapping[str, Any]) -> GenerationParams:
        """These params with a request's own values (None: keep the setting); unknown names are refused."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise GenerationParamsError(
                    name, f"not a generation control (one of {', '.join(sorted(known))})"
                )
        return replace(self, **{name: value for name, value in changes.items() if value is not None})

    def until_stop(self, text: str) -> str:
        """``text`` up to its first stop string, which is not part of the answer (as in chat completions)."""
        for marker in self.stop or ():
            text = text.split(marker, 1)[0]
        return text

    def check(self, most: int) -> None:
        """Refuse values no backend could honour; ``most``: the largest ``n`` this backend and settings allow."""
        if self.max_tokens < 1:
            raise GenerationParamsError("max_tokens", "must be at least 1")
        if self.temperature < 0:
            raise GenerationParamsError("temperature", "must be 0 or more")
        if not 0 < self.top_p <= 1:
            raise GenerationParamsError("top_p", "must be in (0, 1]")
        if not 1 <= self.n <= most:
            raise GenerationParamsError("n", f"must be between 1 and {most} here")
        if self.stop is not None and (len(self.stop) > MAX_STOP or not all(self.stop)):
            raise GenerationParamsError("stop", f"at most {MAX_STOP} non-empty strings")


@dataclass
class Request:
    question: str
    evidence: list[Evidence]
    messages: list[dict]  # OpenAI chat format, built by prompt.build_messages
    params: GenerationParams = field(default_factory=GenerationParams)


class Backend(ABC):
    name: str
    max_n: int | None = None  # candidates one request may ask for (None: as many as settings allow)
    condenses: bool = True  # can rewrite a follow-up into a standalone question (a model can)

    @abstractmethod
    def generate(self, request: Request) -> str: ...

    def candidates(self, request: Request) -> list[str]:
        """``request.params.n`` answers; backends that can give several override this."""
        return [self.generate(request)]

    def stream(self, request: Request) -> Iterator[str]:
        """Text pieces as they are produced; backends that cannot stream yield everything at once."""
        yield self.generate(request)
