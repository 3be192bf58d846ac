"""Defaults needed before settings load: where Spyglass keeps things, and which model it uses.

Stdlib only: the thin search client (``client``) resolves a data directory and a
model with these before, and instead of, importing pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "open_clip:ViT-B-32/laion2b_s34b_b79k"
# Small (23M parameters, 384 dimensions), Apache-2.0, and the most used English sentence model.
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_data_dir() -> Path:
    """XDG data home, so a user's index survives across working directories."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "spyglass"


def default_cache_dir() -> Path:
    """XDG cache home: models Spyglass builds itself are per user, not per data directory."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spyglass"


def config_file() -> Path:
    """``$SPYGLASS_CONFIG`` if set, else ``./spyglass.toml`` if present, else ``config.toml`` in the data dir."""
    explicit = os.environ.get("SPYGLASS_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path("spyglass.toml")
    return local if local.is_file() else default_data_dir() / "config.toml"


# Zero-shot labels name a kind of thing ("cat", "receipt"), so their templates add the article.
LABEL_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "{}",
)
