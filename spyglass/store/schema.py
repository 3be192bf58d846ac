"""SQLAlchemy Core mirror of the schema that ``migrations.py`` creates (used for queries)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String, nullable=False),
    Column("uri", String, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("path", String, nullable=False),
    Column("content_hash", String),
    Column("size", Integer),
    Column("mtime", Float),
    Column("mime", String),
    Column("status", String, nullable=False),
    Column("error", Text),
    Column("indexed_at", Float),
    Column("raw_path", LargeBinary),  # exact bytes when ``path`` had to escape some (not UTF-8)
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("document_id", Integer, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String, nullable=False),  # image, page, figure, chunk, passage, keyframe
    Column("page", Integer),
    Column("bbox", String),  # JSON [x0, y0, x1, y1] in page pixels of the render
    Column("char_start", Integer),
    Column("char_end", Integer),
    Column("timestamp", Float),
    Column("text", Text),
    Column("parent_id", Integer, ForeignKey("items.id", ondelete="SET NULL")),
    Column("content_hash", String),
    Column("thumbnail", LargeBinary),
    Column("names", Text),  # a lead item's file/folder names and descriptive metadata (spyglass/words.py)
    Column("ocr", Text),  # text read in a visual item's pixels, line by line (the OCR stage)
)

item_metadata = Table(
    "metadata",
    metadata,
    Column("document_id", Integer, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", Text),
    Column("number", Float),
)

tags = Table(
    "tags",
    metadata,
    Column("document_id", Integer, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String, primary_key=True),
    Column("origin", String, nullable=False),  # 'person', or the labeller: 'labels:VOCAB@MODEL'
    Column("probability", Float),  # an automatic tag's probability
)

vectors = Table(
    "vectors",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", String, primary_key=True),
    Column("dtype", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

vector_log = Table(
    "vector_log",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("model_id", String, nullable=False),
    Column("item_id", Integer, nullable=False),
    Column("op", String, nullable=False),
)

stage_runs = Table(
    "stage_runs",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("stage", String, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("output", Text),
    Column("ran_at", Float, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("target", String, nullable=False),
    Column("options", Text),
    Column("state", String, nullable=False),
    Column("created", Float, nullable=False),
    Column("finished", Float),
    Column("report", Text),
    Column("error", Text),
)

meta = Table(
    "meta", metadata, Column("key", String, primary_key=True), Column("value", String, nullable=False)
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String, primary_key=True),
    Column("owner", String, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

turns = Table(
    "turns",
    metadata,
    Column("conversation_id", String, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("question", Text, nullable=False),
    Column("standalone", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("created", Float, nullable=False),
)

turn_sources = Table(
    "turn_sources",
    metadata,
    Column("item_id", Integer, primary_key=True),
    Column("conversation_id", String, primary_key=True),
    Column("position", Integer, primary_key=True),
    ForeignKeyConstraint(
        ["conversation_id", "position"], ["turns.conversation_id", "turns.position"], ondelete="CASCADE"
    ),
)
