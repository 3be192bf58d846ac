"""One settings object for every entry point, in sections each factory receives alone.

Sections: ``encoder``, ``text``, ``ocr``, ``labels``, ``index``, ``ingest``, ``ray``, ``generator``, ``api`` (plus ``data_dir``).
Precedence, highest first: explicit arguments (the CLI's flags, ``Settings(...)``),
``SPYGLASS_*`` environment variables, the TOML config file, defaults. Nested values
use ``__`` in the environment (``SPYGLASS_ENCODER__MODEL``) and tables in TOML
(``[encoder] model = ...``). The config file is ``$SPYGLASS_CONFIG`` if set, else
``./spyglass.toml`` if present, else ``config.toml`` in the default data directory.

The flat names of the first releases (``SPYGLASS_MODEL``, ``model = ...``,
``Settings(model=...)``) remain shortcuts into their section (``SHORTCUTS``): they are
in every user's shell profile and compose file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from spyglass.defaults import (
    DEFAULT_MODEL,
    DEFAULT_TEXT_MODEL,
    LABEL_TEMPLATES,
    config_file,
    default_cache_dir,
    default_data_dir,
)


class EncoderSettings(BaseModel):
    model: str = Field(
        DEFAULT_MODEL, description="Model spec: open_clip:ARCH/TAG, hf:ORG/NAME, a path, builtin:shapes."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Where the encoder runs.")
    precision: Literal["auto", "fp32", "int8", "bf16", "fp16"] = Field(
        "auto",
        description="Image encoder precision. On the CPU, auto is the fastest of the ONNX exports that "
        "passed their checks here (fp32, int8); int8 vectors form their own space, and a collection "
        "keeps the precision it was indexed in until `spyglass models use` switches it. bf16 and fp16 "
        "run the torch model (auto means bf16 on GPUs).",
    )
    batch_size: int = Field(64, ge=1, description="Images or texts per encoder call.")
    threads: int = Field(0, ge=0, description="CPU threads for the encoders; 0 keeps the runtime's default.")
    prompt_ensemble: bool = Field(False, description="Average text queries over prompt templates.")
    fast_text: bool = Field(
        True,
        description="Answer text queries with an ONNX export of the text tower, made once per model "
        "after its first ingest and cached, so a search need not load torch or the image tower.",
    )
    fast_load: bool = Field(
        True,
        description="Ingest and serve with the model's ONNX exports (image tower in fp32 and, where "
        "its check passes, int8; text tower), made once per model on its first use and cached: no "
        "torch, open_clip or transformers import.",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where models Spyglass builds itself (builtin:shapes, model exports) are cached.",
    )

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"


class TextSettings(BaseModel):
    """The text space: passages embedded by a sentence-embedding model beside the CLIP space."""

    model: str = Field(
        DEFAULT_TEXT_MODEL,
        description="Sentence-embedding model for passages: a hub id or a local directory; "
        "empty turns the text space off.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Weight precision; auto is fp32 on CPUs (faster for this small model) and bf16 on GPUs.",
    )
    batch_size: int = Field(64, ge=1, description="Passages per call of the text model.")


class OcrSettings(BaseModel):
    """Reading text in photos, scans, figures and keyframes (RapidOCR; see spyglass/indexer/ocr)."""

    enabled: bool = Field(True, description="Read text in visual items after they are embedded.")
    language: str = Field(
        "ch",
        description="Recognition model: 'ch' (shipped in the wheel) reads Chinese and English; "
        "en, latin, japan, korean, cyrillic, arabic and others download once.",
    )
    max_pixels: int = Field(
        40_000_000, ge=10_000, description="Larger images are shrunk to this many pixels before reading."
    )
    sparse_page_chars: int = Field(
        200, ge=0, description="PDF pages with fewer text-layer characters are read as images."
    )
    threads: int = Field(
        0,
        ge=0,
        description="Cores OCR uses, one small picture each at a time (big ones one at a time on all of "
        "them); 0 uses every core (at most 8).",
    )


class LabelSettings(BaseModel):
    """Zero-shot labels: each picture's likeliest words of a vocabulary, as automatic tags."""

    vocabulary: list[str] = Field(
        default_factory=list,
        description="Labels given to pictures as they are indexed (empty: no labelling stage).",
    )
    templates: list[str] = Field(
        default_factory=lambda: list(LABEL_TEMPLATES),
        description="Prompt templates each label is embedded through and averaged over ('{}': the label).",
    )
    top_k: int = Field(3, ge=1, description="Labels kept per picture at most.")
    min_probability: float = Field(
        0.2, ge=0, le=1, description="Labels below this probability are not kept (the first one always is)."
    )


class IndexSettings(BaseModel):
    kind: str = Field(
        "auto",
        description="Vector backend: auto (exact below 50k items, IVF above), flat, ivf, hnsw, milvus, "
        "or another registered one.",
    )
    options: dict[str, int | float | str] = Field(
        default_factory=dict,
        description="Backend knobs: nprobe, nlist (ivf); m, ef_construction, ef_search (hnsw); "
        "uri, index_type, M, efConstruction, ef, nlist, nprobe (milvus).",
    )


class IngestSettings(BaseModel):
    max_image_pixels: int = Field(
        178_956_970, ge=1, description="Images with more pixels are refused (decompression-bomb guard)."
    )
    max_pdf_pages: int = Field(2000, ge=1, description="PDF pages indexed per file; the rest are noted.")
    max_text_bytes: int = Field(
        4 << 20, ge=1024, description="Bytes of a text, Markdown or HTML file indexed; the rest are noted."
    )
    max_chunks: int = Field(
        20_000, ge=1, description="Text chunks (each one embedded) per text file; the rest are noted."
    )
    max_document_seconds: float = Field(
        900.0, gt=0, description="Loading one document stops after this (between pages), with a note."
    )
    stages: list[str] = Field(default_factory=list, description="Item stages run after embedding, by name.")
    executor: Literal["local", "ray"] = Field(
        "local", description="Where files are loaded and embedded: this process, or a Ray cluster ([ray])."
    )


class RaySettings(BaseModel):
    """Ingest on a Ray cluster (``spyglass index --executor ray``); see spyglass/indexer/ray_executor.py."""

    address: str = Field(
        "",
        description="The cluster: host:6379 or ray://host:10001; empty starts a local Ray (or joins RAY_ADDRESS).",
    )
    actors: int = Field(1, ge=1, description="Embedding actors, each holding the model once.")
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs each embedding actor reserves.")
    gpus_per_actor: float = Field(
        0.0, ge=0, description="GPUs each embedding actor reserves (fractions share one)."
    )
    cpus_per_load: float = Field(1.0, gt=0, description="CPUs each file-loading task reserves.")
    batch_size: int = Field(8, ge=1, description="Documents per embedding call of an actor.")


class GeneratorSettings(BaseModel):
    backend: Literal["extractive", "openai", "transformers"] = Field(
        "extractive",
        description="Answer backend: extractive (no model), openai (any compatible server), transformers.",
    )
    model: str = Field("", description="VLM name on the server, or a hub id / local dir for transformers.")
    base_url: str = Field(
        "http://127.0.0.1:11434/v1", description="OpenAI-compatible base URL (Ollama's default)."
    )
    api_key: SecretStr | None = Field(None, description="Bearer key for the server (else OPENAI_API_KEY).")
    timeout: float = Field(120.0, gt=0, description="Seconds per generation request.")
    retries: int = Field(3, ge=0, description="Retries on 429/5xx and connection errors.")
    max_tokens: int = Field(
        512, ge=1, description="Generation length limit (the old name max_answer_tokens still works)."
    )
    temperature: float = Field(0.2, ge=0, description="Sampling temperature (0: greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling: the probability mass sampled from.")
    n: int = Field(1, ge=1, description="Candidate answers per question, each checked and cited.")
    max_n: int = Field(4, ge=1, description="The most candidate answers one request may ask for.")
    conversation_days: float = Field(
        30, gt=0, description="Conversations not continued for this many days are deleted."
    )
    stop: list[str] = Field(
        default_factory=list, max_length=4, description="Up to 4 strings that end an answer."
    )
    seed: int | None = Field(None, description="Seed for sampling, for answers that repeat.")
    max_images: int = Field(4, ge=0, description="Images shown to the VLM per question.")
    max_chars: int = Field(6000, ge=0, description="Characters of passages shown to the VLM per question.")
    image_side: int = Field(768, ge=64, description="Longest side of each image sent to the VLM.")

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, values: Any) -> Any:
        """``max_answer_tokens`` (config files and environments written before ``max_tokens``)."""
        if isinstance(values, dict) and "max_answer_tokens" in values:
            values = dict(values)
            values.setdefault("max_tokens", values.pop("max_answer_tokens"))
        return values


class ScopedKey(BaseModel):
    """A bearer key with a role over some collections (``api.keys``)."""

    key: SecretStr
    role: Literal["read", "write", "admin"] = Field(
        "read",
        description="read: search, ask, items; write: also index, upload, tag and switch models; "
        "admin: every collection, and creating and deleting them.",
    )
    collections: list[str] = Field(
        default_factory=lambda: ["*"], description="The collections it may use ('*': all of them)."
    )


class ApiSettings(BaseModel):
    host: str = Field(
        "127.0.0.1", description="Address `spyglass serve` binds to (0.0.0.0 needs API keys or --insecure)."
    )
    port: int = Field(8077, ge=1, le=65535, description="Port of `spyglass serve`.")
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="Bearer keys allowed to read (search, ask, items)."
    )
    admin_keys: list[SecretStr] = Field(
        default_factory=list, description="Bearer keys allowed to read and write (upload, index, delete)."
    )
    keys: list[ScopedKey] = Field(
        default_factory=list,
        description="Keys scoped to collections: a list of {key, role, collections} (JSON in the environment).",
    )
    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Server folders POST /v1/sources may index into the default collection "
        "(a named collection has its own, set when it is created).",
    )
    backup_root: Path | None = Field(
        None, description="The folder POST /v1/backup writes backups into (none: backups over HTTP are off)."
    )
    max_upload_mb: float = Field(
        200.0, gt=0, description="Largest accepted uploaded file (each file of a request)."
    )
    max_request_mb: float = Field(
        1024.0, gt=0, description="Largest request body (all files of an upload); cut off as it arrives."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (none: same origin only)."
    )
    public_metrics: bool = Field(False, description="Serve /metrics without a key even when keys are set.")


# Flat names from the first releases -> (section, field).
SHORTCUTS: dict[str, tuple[str, str]] = {
    **{
        name: ("encoder", name)
        for name in ("model", "device", "precision", "batch_size", "threads", "prompt_ensemble")
    },
    "index": ("index", "kind"),
    "index_options": ("index", "options"),
    "max_image_pixels": ("ingest", "max_image_pixels"),
    "generator": ("generator", "backend"),
    **{
        f"generator_{name}": ("generator", name)
        for name in ("model", "base_url", "api_key", "timeout", "retries")
    },
    "max_answer_tokens": ("generator", "max_tokens"),
    **{name: ("generator", name) for name in ("max_tokens", "temperature", "top_p", "seed")},
    **{f"ask_{name}": ("generator", name) for name in ("max_images", "max_chars", "image_side")},
    **{
        name: ("api", name)
        for name in (
            "host",
            "port",
            "api_keys",
            "admin_keys",
            "allowed_roots",
            "max_upload_mb",
            "cors_origins",
        )
    },
}


class Settings(BaseSettings):
    """Runtime configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="SPYGLASS_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where the catalog, index and uploads live."
    )
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    text: TextSettings = Field(default_factory=TextSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    labels: LabelSettings = Field(default_factory=LabelSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    def __init__(self, **values: Any) -> None:
        super().__init__(**nest_shortcuts(values))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, _ShortcutEnvSource(settings_cls), _ShortcutSource(settings_cls, toml)


def nest_shortcuts(values: Mapping[str, Any]) -> dict[str, Any]:
    """Move flat shortcut keys into their sections; a section's own keys win over shortcuts."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        target = SHORTCUTS.get(key)
        if target is None or isinstance(value, (dict, BaseModel)):  # a section itself, e.g. index = {...}
            earlier = nested.get(key)
            if isinstance(earlier, dict) and isinstance(value, dict):  # shortcuts seen first fill the gaps
                value = {**earlier, **value}
            nested[key] = value
            continue
        section, name = target
        nested.setdefault(section, {})
        if isinstance(nested[section], dict):
            nested[section].setdefault(name, value)
    return nested


class _ShortcutSource(PydanticBaseSettingsSource):
    """Another source's values with flat shortcuts nested, so each source keeps its precedence."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used instead
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return nest_shortcuts(self.inner())


class _ShortcutEnvSource(EnvSettingsSource):
    """``SPYGLASS_MODEL=x`` read as ``SPYGLASS_ENCODER__MODEL=x`` (unless that is set too)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        variables = dict(super()._load_env_vars())
        prefix = self.env_prefix.lower()
        for flat, (section, name) in SHORTCUTS.items():
            value = variables.get(f"{prefix}{flat}")
            if value is None or value.lstrip().startswith("{"):  # a whole section given as JSON
                continue
            variables.pop(f"{prefix}{flat}")
            variables.setdefault(f"{prefix}{section}__{name}", value)
        return variables
