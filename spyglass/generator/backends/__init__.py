"""Generator backends, one per file, chosen by settings."""

from __future__ import annotations

import os

from spyglass.generator.backends.base import Backend, GenerationParams, Request
from spyglass.settings import Settings

__all__ = ["Backend", "GenerationParams", "Request", "make_backend"]


def make_backend(settings: Settings) -> Backend:
    kind = settings.generator
    if kind == "openai":
        from spyglass.generator.backends.openai import OpenAIBackend

        if not settings.generator_model:
            raise ValueError("generator=openai needs generator_model (SPYGLASS_GENERATOR_MODEL)")
        key = os.environ.get("SPYGLASS_GENERATOR_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return OpenAIBackend(settings.generator_base_url, settings.generator_model, api_key=key,
                             timeout=settings.generator_timeout, retries=settings.generator_retries)
    if kind == "transformers":
        from spyglass.generator.backends.transformers import TransformersBackend

        if not settings.generator_model:
            raise ValueError("generator=transformers needs generator_model (a hub id or a local directory)")
        return TransformersBackend(settings.generator_model)
    from spyglass.generator.backends.extractive import ExtractiveBackend

    return ExtractiveBackend()
