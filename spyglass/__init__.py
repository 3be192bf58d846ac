"""Spyglass: self-hosted multimodal search and grounded answers over your own files."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Engine", "Settings", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import spyglass` (and `spyglass --help`) does not import torch.
    if name == "Engine":
        from spyglass.engine import Engine

        return Engine
    if name == "Settings":
        from spyglass.settings import Settings

        return Settings
    raise AttributeError(name)
