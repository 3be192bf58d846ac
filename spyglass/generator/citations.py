"""Find, check and clean the numbered citations in a model's answer.

Accepted forms: ``[1]``, ``[1, 3]``, ``[2-4]`` (and en dashes), with any spacing.
Numbers that point at no evidence are removed from the text and reported; repeats
are listed once; anything else in brackets (``[a]``, ``[1a]``) is left alone.
``renumber`` then makes the numbers a reader sees run 1, 2, 3 in reading order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CITATION = re.compile(r"\[\s*(\d+(?:\s*(?:,|-|–)\s*\d+)*)\s*\]")


@dataclass
class ParsedAnswer:
    text: str  # the answer with invalid citations removed
    cited: list[int] = field(default_factory=list)  # valid evidence numbers, in order of first use
    invalid: list[int] = field(default_factory=list)  # numbers that pointed at no evidence

    @property
    def supported(self) -> bool:
        return bool(self.cited)


def _numbers(group: str) -> list[int]:
    numbers = []
    for part in re.split(r"\s*,\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and int(bounds[0]) <= int(bounds[1]) and int(bounds[1]) - int(bounds[0]) < 50:
            numbers.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        else:
            numbers.extend(int(b) for b in bounds)
    return numbers


def parse_citations(text: str, evidence_count: int) -> ParsedAnswer:
    cited: list[int] = []
    invalid: list[int] = []

    def replace(match: re.Match) -> str:
        numbers = _numbers(match.group(1))
        good = [n for n in numbers if 1 <= n <= evidence_count]
        invalid.extend(n for n in numbers if not 1 <= n <= evidence_count and n not in invalid)
        for n in good:
            if n not in cited:
                cited.append(n)
        return "[" + ", ".join(str(n) for n in dict.fromkeys(good)) + "]" if good else ""

    cleaned = _CITATION.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return ParsedAnswer(cleaned, cited, invalid)


def renumber(text: str, numbers: dict[int, int]) -> str:
    """``text`` (as ``parse_citations`` left it) with each citation number replaced by ``numbers[n]``."""

    def replace(match: re.Match) -> str:
        return "[" + ", ".join(str(numbers.get(n, n)) for n in _numbers(match.group(1))) + "]"

    return _CITATION.sub(replace, text)
