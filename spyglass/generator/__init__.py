"""Generator: grounded answers with numbered, checked citations from pluggable VLM backends."""

from spyglass.generator.generator import NOT_FOUND, Answer, Generator
from spyglass.generator.prompt import PromptOptions

__all__ = ["NOT_FOUND", "Answer", "Generator", "PromptOptions"]
