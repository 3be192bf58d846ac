"""Request bodies of the HTTP API (responses are the library's own dataclasses as JSON)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field, Strict

from spyglass.retriever import Filters, RankingOptions
from spyglass.runtime.collections import NAME, CollectionConfig

MAX_ID = 2**63 - 1  # SQLite's INTEGER range
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="An item id from search results")]
DocumentId = Annotated[int, Path(ge=1, le=MAX_ID, description="A document id from search results")]


class FilterBody(BaseModel):
    modality: Literal["image", "text"] | None = None
    kinds: list[str] = Field(
        default_factory=list, description="image, page, figure, chunk, keyframe (or photo)"
    )
    path_prefix: str | None = None
    types: list[str] = Field(
        default_factory=list, description="extensions (jpg, pdf) or MIME prefixes (image/)"
    )
    # Strict: JSON true/false is not a date (lax validation read false as 1970-01-01).
    date_from: Annotated[float, Strict()] | None = Field(None, description="epoch seconds")
    date_to: Annotated[float, Strict()] | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)

    def to_filters(self) -> Filters:
        return Filters(
            modality=self.modality,
            kinds=tuple(self.kinds),
            path_prefix=self.path_prefix,
            types=tuple(self.types),
            date_from=self.date_from,
            date_to=self.date_to,
            tags=tuple(self.tags),
            metadata=tuple(sorted(self.metadata.items())),
        )


Collection = Annotated[str, Field(pattern=f"^({NAME.pattern}|\\*)$")]


class AcrossBody(BaseModel):
    """Several collections at once: each is searched as it would be alone, and what they found is
    merged by score (each score is relative to the query within its collection)."""

    collections: list[Collection] | None = Field(
        None,
        max_length=100,
        description='These collections at once (["*"]: every one the key reads), 404 for one it cannot '
        "read; each result or citation then names its `collection`.",
    )


class SearchBody(AcrossBody):
    text: str | None = Field(
        None, max_length=2000, description='Query; "a + b - c" adds and subtracts terms.'
    )
    item_id: int | None = Field(None, ge=1, le=MAX_ID, description="Find items similar to this indexed item.")
    negative: list[str] = Field(default_factory=list)
    text_weight: float = Field(1.0, ge=0, le=10)
    image_weight: float = Field(1.0, ge=0, le=10)
    filters: FilterBody = Field(default_factory=FilterBody)
    k: int = Field(10, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000)
    hybrid: bool = Field(True, description="BM25 joins a text query.")
    semantic: bool = Field(True, description="The text space ranks passages (when it is filled).")
    diversity: float | None = Field(None, gt=0, le=1)
    relevance_floor: bool = True

    def options(self) -> RankingOptions:
        return RankingOptions(
            hybrid=self.hybrid,
            semantic=self.semantic,
            diversity=self.diversity,
            relevance_floor=self.relevance_floor,
        )


class GenerationBody(BaseModel):
    """This request's generation controls, named and bounded as in the chat-completions API; an absent
    one keeps the server's setting (the `generator` section). The extractive backend (no model)
    honours `max_tokens` (as words) and `stop`, ignores `temperature`, `top_p` and `seed`, and refuses
    `n` > 1."""

    max_tokens: int | None = Field(None, ge=1, description="Most tokens an answer may have.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature (0: greedy).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling: in (0, 1].")
    n: int | None = Field(
        None,
        ge=1,
        description="Candidate answers, each checked and cited (at most generator.max_n; not streamed).",
    )
    stop: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, max_length=4, description="Up to 4 strings that end an answer."
    )
    seed: int | None = Field(None, description="Seed for sampling, for answers that repeat.")

    def controls(self) -> dict:
        """The controls given, as ``PromptOptions.generation`` takes them."""
        return {
            name: getattr(self, name)
            for name in GenerationBody.model_fields
            if getattr(self, name) is not None
        }


class AskBody(GenerationBody, AcrossBody):
    question: str = Field(..., min_length=1, max_length=4000)
    filters: FilterBody = Field(default_factory=FilterBody)
    step_by_step: bool = False
    few_shot: bool = False
    conversation_id: str | None = Field(
        None,
        max_length=64,
        description="Answer as the next turn of this conversation (`POST …/conversations`): the question "
        "is made standalone from the earlier turns before searching, and the turn is recorded. A "
        "conversation lives in one collection: not with `collections`.",
    )


class ModelBody(BaseModel):
    spec: str = Field(
        ..., min_length=1, max_length=4096, description="A model spec, e.g. a folder `spyglass tune` wrote."
    )


class BackupBody(BaseModel):
    name: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="A new folder of `api.backup_root` to write the backup into (a plain name, no path).",
    )


class SourceBody(BaseModel):
    path: str = Field(
        ..., min_length=1, max_length=4096, description="A folder inside the configured allowed roots."
    )
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class CollectionBody(CollectionConfig):
    name: str = Field(
        ..., pattern=f"^{NAME.pattern}$", max_length=63, description="The new collection's name."
    )
