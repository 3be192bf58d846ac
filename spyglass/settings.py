"""One settings object for every entry point.

Precedence, highest first: explicit arguments (the CLI's flags, ``Settings(...)``),
``SPYGLASS_*`` environment variables, the TOML config file, defaults. The config
file is ``$SPYGLASS_CONFIG`` if set, else ``./spyglass.toml`` if present, else
``config.toml`` in the default data directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_MODEL = "open_clip:ViT-B-32/laion2b_s34b_b79k"


def default_data_dir() -> Path:
    """XDG data home, so a user's index survives across working directories."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "spyglass"


def config_file() -> Path:
    explicit = os.environ.get("SPYGLASS_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path("spyglass.toml")
    return local if local.is_file() else default_data_dir() / "config.toml"


class Settings(BaseSettings):
    """Runtime configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="SPYGLASS_", extra="ignore", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="Where the catalog, index and caches live.")
    model: str = Field(DEFAULT_MODEL, description="Model spec: open_clip:ARCH/TAG, hf:ORG/NAME, a path, builtin:shapes.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Where the encoder runs.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Encoder weight precision; auto picks bf16 where it is fast, else fp32."
    )
    batch_size: int = Field(64, ge=1, description="Images or texts per encoder call.")
    threads: int = Field(0, ge=0, description="Torch CPU threads; 0 keeps torch's default.")
    prompt_ensemble: bool = Field(False, description="Average text queries over prompt templates.")
    index: str = Field(
        "auto", description="Vector index backend: auto (exact below 50k items, IVF above), flat, ivf, hnsw, or a registered one."
    )
    index_options: dict[str, int] = Field(
        default_factory=dict, description="Index knobs: nprobe, nlist (ivf); m, ef_construction, ef_search (hnsw)."
    )
    generator: Literal["extractive", "openai", "transformers"] = Field(
        "extractive", description="Answer backend: extractive (no model), openai (any compatible server), transformers."
    )
    generator_model: str = Field("", description="VLM name on the server, or a hub id / local dir for transformers.")
    generator_base_url: str = Field("http://127.0.0.1:11434/v1", description="OpenAI-compatible base URL (Ollama's default).")
    generator_timeout: float = Field(120.0, gt=0, description="Seconds per generation request.")
    generator_retries: int = Field(3, ge=0, description="Retries on 429/5xx and connection errors.")
    max_answer_tokens: int = Field(512, ge=1, description="Generation length limit.")
    temperature: float = Field(0.2, ge=0, description="Sampling temperature (0: greedy).")
    ask_max_images: int = Field(4, ge=0, description="Images shown to the VLM per question.")
    ask_max_chars: int = Field(6000, ge=0, description="Characters of passages shown to the VLM per question.")
    ask_image_side: int = Field(768, ge=64, description="Longest side of each image sent to the VLM.")
    host: str = Field("127.0.0.1", description="Address `spyglass serve` binds to (0.0.0.0 needs API keys or --insecure).")
    port: int = Field(8077, ge=1, le=65535, description="Port of `spyglass serve`.")
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys allowed to read (search, ask, items).")
    admin_keys: list[str] = Field(default_factory=list, description="Bearer keys allowed to read and write (upload, index, delete).")
    allowed_roots: list[Path] = Field(default_factory=list, description="Server folders POST /v1/sources may index.")
    max_upload_mb: float = Field(200.0, gt=0, description="Largest accepted uploaded file (each file of a request).")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (none: same origin only).")
    max_image_pixels: int = Field(
        178_956_970, ge=1, description="Images with more pixels are refused (decompression-bomb guard)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file())

    @property
    def models_dir(self) -> Path:
        """Cache for models Spyglass builds itself (e.g. ``builtin:shapes``)."""
        return self.data_dir / "models"
