"""The backend interface: turn a prepared request into answer text, whole or streamed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from spyglass.generator.evidence import Evidence


@dataclass
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.2
    top_p: float = 1.0
    stop: list[str] | None = None
    seed: int | None = None


@dataclass
class Request:
    question: str
    evidence: list[Evidence]
    messages: list[dict]  # OpenAI chat format, built by prompt.build_messages
    params: GenerationParams = field(default_factory=GenerationParams)


class Backend(ABC):
    name: str

    @abstractmethod
    def generate(self, request: Request) -> str: ...

    def stream(self, request: Request) -> Iterator[str]:
        """Text pieces as they are produced; backends that cannot stream yield everything at once."""
        yield self.generate(request)
