"""Generator backends, one per file, chosen by settings."""

from __future__ import annotations

import os

from spyglass.generator.backends.base import Backend, GenerationParams, GenerationParamsError, Request
from spyglass.generator.backends.extractive import TextSpaceModel
from spyglass.settings import GeneratorSettings

__all__ = ["Backend", "GenerationParams", "GenerationParamsError", "Request", "make_backend"]


def make_backend(settings: GeneratorSettings, *, text_space: TextSpaceModel | None = None) -> Backend:
    """The configured backend; ``text_space`` (see ``extractive``) lets the extractive one pick by meaning."""
    kind = settings.backend
    if kind == "openai":
        from spyglass.generator.backends.openai import OpenAIBackend

        if not settings.model:
            raise ValueError("generator=openai needs generator.model (SPYGLASS_GENERATOR__MODEL)")
        # OPENAI_API_KEY is the variable every OpenAI-compatible client reads; honour it as a fallback.
        key = settings.api_key.get_secret_value() if settings.api_key else os.environ.get("OPENAI_API_KEY")
        return OpenAIBackend(
            settings.base_url, settings.model, api_key=key, timeout=settings.timeout, retries=settings.retries
        )
    if kind == "transformers":
        from spyglass.generator.backends.transformers import TransformersBackend

        if not settings.model:
            raise ValueError("generator=transformers needs generator.model (a hub id or a local directory)")
        return TransformersBackend(settings.model)
    from spyglass.generator.backends.extractive import ExtractiveBackend

    return ExtractiveBackend(text_space=text_space)
