"""Prompt-template ensembles, shared by every text encoder (the full models and the light text tower).

Kept free of torch so the exported text tower answers a query without importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

PROMPT_TEMPLATES = (
    "{}",
    "a photo of {}.",
    "a picture of {}.",
    "an image of {}.",
    "a close-up photo of {}.",
    "a photo of the {}.",
)


def ensemble(
    encode: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    templates: Sequence[str] = PROMPT_TEMPLATES,
) -> np.ndarray:
    """Each text embedded through every template, averaged and renormalised (CLIP's zero-shot recipe)."""
    prompts = [template.format(text) for text in texts for template in templates]
    vectors = encode(prompts)
    mean = vectors.reshape(len(texts), len(templates), vectors.shape[-1]).mean(axis=1)
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
