"""Stepwise schema migrations, tracked in SQLite's ``user_version``.

Each step is plain SQL run in one transaction, so a database at any earlier version
is brought forward one step at a time (rclip's approach); ``schema.py`` mirrors the
result for queries, and a test checks the two agree. Never edit a shipped step: add one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from spyglass.words import document_names

FORGET_FLAG = "words_forgotten"  # meta key: deleted words may still sit in the FTS5 segments

V1 = """
CREATE TABLE sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    uri TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    content_hash TEXT,
    size INTEGER,
    mtime REAL,
    mime TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    indexed_at REAL,
    UNIQUE (source_id, path)
);
CREATE INDEX documents_hash ON documents(content_hash);
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    page INTEGER,
    bbox TEXT,
    char_start INTEGER,
    char_end INTEGER,
    timestamp REAL,
    text TEXT,
    parent_id INTEGER REFERENCES items(id) ON DELETE SET NULL,
    content_hash TEXT,
    thumbnail BLOB
);
CREATE INDEX items_document ON items(document_id);
CREATE INDEX items_kind ON items(kind);
CREATE TABLE metadata (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    number REAL,
    PRIMARY KEY (document_id, key)
);
CREATE INDEX metadata_value ON metadata(key, value);
CREATE INDEX metadata_number ON metadata(key, number);
CREATE TABLE tags (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (document_id, tag)
);
CREATE INDEX tags_tag ON tags(tag);
CREATE TABLE vectors (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    dtype TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (item_id, model_id)
);
CREATE INDEX vectors_model ON vectors(model_id);
-- Every vector insert/delete is logged (cascaded deletes fire triggers too), so the
-- derived FAISS index can catch up from its last saved position after any crash.
CREATE TABLE vector_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    op TEXT NOT NULL
);
CREATE INDEX vector_log_model ON vector_log(model_id, seq);
CREATE TRIGGER vectors_logged_add AFTER INSERT ON vectors BEGIN
    INSERT INTO vector_log (model_id, item_id, op) VALUES (new.model_id, new.item_id, 'a');
END;
CREATE TRIGGER vectors_logged_delete AFTER DELETE ON vectors BEGIN
    INSERT INTO vector_log (model_id, item_id, op) VALUES (old.model_id, old.item_id, 'd');
END;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
"""

# v2: BM25 over item text (chunks now; captions/OCR later) through an external-content
# FTS5 table kept in step with ``items`` by triggers, back-filled from existing rows.
V2 = """
CREATE VIRTUAL TABLE items_fts USING fts5(text, content='items', content_rowid='id', tokenize='porter unicode61');
INSERT INTO items_fts (rowid, text) SELECT id, text FROM items WHERE text IS NOT NULL;
CREATE TRIGGER items_fts_insert AFTER INSERT ON items WHEN new.text IS NOT NULL BEGIN
    INSERT INTO items_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items WHEN old.text IS NOT NULL BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF text ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL;
    INSERT INTO items_fts (rowid, text) SELECT new.id, new.text WHERE new.text IS NOT NULL;
END;
"""

# v3: which version of each ingest stage has processed each item (and what it produced), so
# a new or upgraded stage catches up on existing items and a crash resumes where it stopped.
V3 = """
CREATE TABLE stage_runs (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    version INTEGER NOT NULL,
    output TEXT,
    ran_at REAL NOT NULL,
    PRIMARY KEY (item_id, stage)
);
CREATE INDEX stage_runs_stage ON stage_runs(stage, version);
"""

# v4: the exact bytes of a path that is not valid UTF-8 (``path`` holds it with the odd bytes
# escaped, so it can be a key, shown and matched by folder prefix; see spyglass/paths.py).
V4 = """
ALTER TABLE documents ADD COLUMN raw_path BLOB;
"""

# v5: ingest jobs of the API (an accepted upload or folder), so one accepted before a crash is
# resumed at the next start instead of lost with the process that held it in memory.
V5 = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    options TEXT,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    report TEXT,
    error TEXT
);
CREATE INDEX jobs_state ON jobs(state);
"""

# v6: the words an item is found by beyond its body text. ``names``: what its file is called and
# described as (on a document's lead item, see spyglass/words.py); ``ocr``: text read in its pixels.
# BM25 covers all three columns; a second, trigram index finds substrings (``RE16`` in ``ARE160``).
_WORD_COLUMNS = "text, names, ocr"
# How BM25's words are split and stemmed; queries are tokenized the same way (catalog/postings.py).
WORD_TOKENIZER = "porter unicode61 remove_diacritics 2"
# An update trigger's body: the row's old words out of both indexes, its new words in.
_REINDEX_WORDS = f"""    INSERT INTO items_fts (items_fts, rowid, {_WORD_COLUMNS}) SELECT 'delete', old.id, old.text, old.names, old.ocr
        WHERE coalesce(old.text, old.names, old.ocr) IS NOT NULL;
    INSERT INTO items_grams (items_grams, rowid, {_WORD_COLUMNS}) SELECT 'delete', old.id, old.text, old.names, old.ocr
        WHERE coalesce(old.text, old.names, old.ocr) IS NOT NULL;
    INSERT INTO items_fts (rowid, {_WORD_COLUMNS}) SELECT new.id, new.text, new.names, new.ocr
        WHERE coalesce(new.text, new.names, new.ocr) IS NOT NULL;
    INSERT INTO items_grams (rowid, {_WORD_COLUMNS}) SELECT new.id, new.text, new.names, new.ocr
        WHERE coalesce(new.text, new.names, new.ocr) IS NOT NULL;
"""
V6 = f"""
ALTER TABLE items ADD COLUMN names TEXT;
ALTER TABLE items ADD COLUMN ocr TEXT;
DROP TRIGGER items_fts_insert;
DROP TRIGGER items_fts_delete;
DROP TRIGGER items_fts_update;
DROP TABLE items_fts;
CREATE VIRTUAL TABLE items_fts USING fts5({_WORD_COLUMNS}, content='items', content_rowid='id', tokenize='{WORD_TOKENIZER}');
CREATE VIRTUAL TABLE items_grams USING fts5({_WORD_COLUMNS}, content='items', content_rowid='id', tokenize='trigram');
INSERT INTO items_fts (items_fts) VALUES ('rebuild');
INSERT INTO items_grams (items_grams) VALUES ('rebuild');
CREATE TRIGGER items_words_insert AFTER INSERT ON items WHEN coalesce(new.text, new.names, new.ocr) IS NOT NULL BEGIN
    INSERT INTO items_fts (rowid, {_WORD_COLUMNS}) VALUES (new.id, new.text, new.names, new.ocr);
    INSERT INTO items_grams (rowid, {_WORD_COLUMNS}) VALUES (new.id, new.text, new.names, new.ocr);
END;
CREATE TRIGGER items_words_delete AFTER DELETE ON items WHEN coalesce(old.text, old.names, old.ocr) IS NOT NULL BEGIN
    INSERT INTO items_fts (items_fts, rowid, {_WORD_COLUMNS}) VALUES ('delete', old.id, old.text, old.names, old.ocr);
    INSERT INTO items_grams (items_grams, rowid, {_WORD_COLUMNS}) VALUES ('delete', old.id, old.text, old.names, old.ocr);
END;
CREATE TRIGGER items_words_update AFTER UPDATE OF {_WORD_COLUMNS} ON items BEGIN
{_REINDEX_WORDS}END;
"""


def _name_documents(connection: sqlite3.Connection) -> None:
    """v7: every indexed document's lead item gets its ``names`` (new documents get them when written)."""
    for document_id, path in connection.execute("SELECT id, path FROM documents").fetchall():
        metadata = dict(
            connection.execute("SELECT key, value FROM metadata WHERE document_id = ?", (document_id,))
        )
        connection.execute(
            "UPDATE items SET names = ? WHERE id = (SELECT min(id) FROM items WHERE document_id = ?)",
            (document_names(path, metadata), document_id),
        )


# v8: who set each tag. ``origin`` is 'person', or the labeller that chose it ('labels:VOCAB@MODEL', see
# spyglass/indexer/labels.py) with its ``probability``: automatic tags are replaced when the vocabulary,
# the model or the file changes, and a person's tags never are.
V8 = """
ALTER TABLE tags ADD COLUMN origin TEXT NOT NULL DEFAULT 'person';
ALTER TABLE tags ADD COLUMN probability REAL;
CREATE INDEX tags_origin ON tags(origin);
"""

# v9: words are searched by section, not by chunk. A text document's BM25 evidence is its passages
# (a few hundred words: documents as the unit, see spyglass/retriever/ranking.py); its 45-word chunks
# are shown through them and no longer indexed twice, which also makes a long query's scoring ~5x
# cheaper. Every chunk has had its section since the first ingest; the rule is the kind alone, so the
# delete trigger always agrees with the insert trigger about a row (FTS5 must never delete a row it lacks).


def _sectioned(row: str) -> str:
    """SQL: ``row`` is a chunk, whose words its section holds."""
    return f"{row}.kind = 'chunk'"


V9 = f"""
CREATE INDEX items_parent ON items(parent_id);
INSERT INTO items_fts (items_fts, rowid, {_WORD_COLUMNS}) SELECT 'delete', id, text, names, ocr FROM items
    WHERE {_sectioned("items")} AND coalesce(text, names, ocr) IS NOT NULL;
INSERT INTO items_grams (items_grams, rowid, {_WORD_COLUMNS}) SELECT 'delete', id, text, names, ocr FROM items
    WHERE {_sectioned("items")} AND coalesce(text, names, ocr) IS NOT NULL;
DROP TRIGGER items_words_insert;
DROP TRIGGER items_words_delete;
DROP TRIGGER items_words_update;
CREATE TRIGGER items_words_insert AFTER INSERT ON items
    WHEN NOT ({_sectioned("new")}) AND coalesce(new.text, new.names, new.ocr) IS NOT NULL BEGIN
    INSERT INTO items_fts (rowid, {_WORD_COLUMNS}) VALUES (new.id, new.text, new.names, new.ocr);
    INSERT INTO items_grams (rowid, {_WORD_COLUMNS}) VALUES (new.id, new.text, new.names, new.ocr);
END;
CREATE TRIGGER items_words_delete AFTER DELETE ON items
    WHEN NOT ({_sectioned("old")}) AND coalesce(old.text, old.names, old.ocr) IS NOT NULL BEGIN
    INSERT INTO items_fts (items_fts, rowid, {_WORD_COLUMNS}) VALUES ('delete', old.id, old.text, old.names, old.ocr);
    INSERT INTO items_grams (items_grams, rowid, {_WORD_COLUMNS}) VALUES ('delete', old.id, old.text, old.names, old.ocr);
END;
CREATE TRIGGER items_words_update AFTER UPDATE OF {_WORD_COLUMNS} ON items WHEN NOT ({_sectioned("old")}) BEGIN
{_REINDEX_WORDS}END;
"""

# v10: forgetting. FTS5 keeps a deleted row's words in its segments until they are merged, so
# every deletion or rewrite of an item's words raises a flag that ``FullText.forget_deleted_words``
# answers by merging them out (see there).
V10 = f"""
CREATE TRIGGER items_words_forgotten AFTER DELETE ON items
    WHEN coalesce(old.text, old.names, old.ocr) IS NOT NULL BEGIN
    INSERT OR REPLACE INTO meta (key, value) VALUES ('{FORGET_FLAG}', '1');
END;
CREATE TRIGGER items_words_rewritten AFTER UPDATE OF {_WORD_COLUMNS} ON items
    WHEN coalesce(old.text, old.names, old.ocr) IS NOT NULL BEGIN
    INSERT OR REPLACE INTO meta (key, value) VALUES ('{FORGET_FLAG}', '1');
END;
"""

# v11: conversations (``generator.conversation``): follow-up questions, owned by a key's fingerprint.
V11 = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX conversations_owner ON conversations(owner, updated);
CREATE TABLE turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    standalone TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
"""

# v12: the items each stored turn showed or cited. A turn quotes its evidence (the answer, the
# citations' text): when one of them is deleted, with its document or a re-index of a changed file,
# the turn forgets everything it quoted and says a source was deleted. A trigger, so that every
# way an item goes (cascades included) forgets alike.
V12 = """
CREATE TABLE turn_sources (
    item_id INTEGER NOT NULL,
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (item_id, conversation_id, position),
    FOREIGN KEY (conversation_id, position) REFERENCES turns(conversation_id, position) ON DELETE CASCADE
);
CREATE INDEX turn_sources_turn ON turn_sources(conversation_id, position);
CREATE TRIGGER turns_forget_deleted_sources AFTER DELETE ON items
    WHEN EXISTS (SELECT 1 FROM turn_sources WHERE item_id = old.id) BEGIN
    UPDATE turns SET answer = json_set(
        answer, '$.answer', '', '$.supported', json('false'), '$.citations', json('[]'),
        '$.uncited', json('[]'), '$.candidates', json('[]'), '$.source_deleted', json('true')
    ) WHERE (conversation_id, position) IN (
        SELECT conversation_id, position FROM turn_sources WHERE item_id = old.id
    );
    DELETE FROM turn_sources WHERE item_id = old.id;
END;
"""

Step = str | Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Step, ...] = (V1, V2, V3, V4, V5, V6, _name_documents, V8, V9, V10, V11, V12)
LATEST = len(MIGRATIONS)


def version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA user_version").fetchone()[0]


def migrate(connection: sqlite3.Connection, target: int = LATEST) -> int:
    """Apply the missing steps up to ``target``, each atomically; returns the new version."""
    current = version(connection)
    if current > LATEST:
        from spyglass.errors import SpyglassError

        raise SpyglassError(
            f"The catalog's schema version {current} is newer than this Spyglass understands ({LATEST}); upgrade Spyglass."
        )
    for step in range(current, target):
        # executescript would COMMIT on its own; run statements inside one explicit transaction instead.
        connection.execute("BEGIN IMMEDIATE")
        try:
            script = MIGRATIONS[step]
            if callable(script):  # a step that needs Python (words split the way new rows are)
                script(connection)
            else:
                for statement in _statements(script):
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {step + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return version(connection)


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (triggers contain semicolons)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s]
