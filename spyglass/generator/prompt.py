"""The prompt: an instruction to answer only from numbered evidence, then the evidence, then the question.

Messages use the OpenAI chat format (text and ``image_url`` parts), which the HTTP
backend sends as is and the transformers backend maps onto a processor's chat template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spyglass.generator.evidence import Evidence

SYSTEM = (
    "You answer questions about the user's own files using only the numbered evidence provided. "
    "Cite the evidence you rely on with its number in square brackets, like [1] or [2, 3], right after each claim. "
    "If the evidence does not contain the answer, say that you could not find it in the collection. "
    "Do not use outside knowledge and do not cite numbers that are not in the evidence."
)
LOOK_SYSTEM = "Describe or answer questions about the image(s) the user provides. Be concise and accurate."
STEP_BY_STEP = " Think step by step before you answer, then give the answer with citations."
FEW_SHOT = [
    {
        "role": "user",
        "content": "Evidence:\n[1] passage from trip.md: We reached Oslo on 3 May and left on 9 May.\n"
        "[2] image IMG_0042.jpg\n\nQuestion: When did we arrive in Oslo?",
    },
    {"role": "assistant", "content": "You arrived in Oslo on 3 May [1]."},
]


@dataclass
class PromptOptions:
    """How a question is put to the model: the prompt's extras, and this request's generation
    controls (``GenerationParams`` fields; None or absent keeps the setting)."""

    step_by_step: bool = False
    few_shot: bool = False
    generation: dict[str, Any] = field(default_factory=dict)


def build_messages(
    question: str,
    evidence: list[Evidence],
    options: PromptOptions | None = None,
    *,
    retrieval: bool = True,
    history: list[dict] | None = None,
) -> list[dict]:
    """``history``: a conversation's last turns as chat messages, between the instructions and the
    evidence with the (standalone) question."""
    options = options or PromptOptions()
    system = (SYSTEM if retrieval else LOOK_SYSTEM) + (STEP_BY_STEP if options.step_by_step else "")
    messages: list[dict] = [{"role": "system", "content": system}]
    if options.few_shot and retrieval:
        messages.extend(FEW_SHOT)
    messages.extend(history or [])
    parts: list[dict] = [{"type": "text", "text": "Evidence:" if retrieval else "Image(s):"}]
    for piece in evidence:
        if piece.is_image:
            caption = f"[{piece.number}] {piece.label}:" if retrieval else piece.label
            if piece.text:  # words read in the picture: quotable, and a check on what the model sees
                caption += f" {piece.text}"
            parts.append({"type": "text", "text": caption})
            parts.append({"type": "image_url", "image_url": {"url": piece.data_url()}})
        else:
            parts.append({"type": "text", "text": f"[{piece.number}] {piece.label}: {piece.text}"})
    parts.append({"type": "text", "text": f"Question: {question}"})
    messages.append({"role": "user", "content": parts})
    return messages
