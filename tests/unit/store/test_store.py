"""The store with real SQLite files and real FAISS indexes, for every index type."""

from __future__ import annotations

import json
import sqlite3
import threading

import numpy as np
import pytest
from support import numpy_backend  # noqa: F401 - registers the toy "numpy" backend
from support.store_helpers import add_batch, clustered, exact_top

from spyglass.errors import ModelMismatchError, ReindexRequiredError
from spyglass.store import Store, mirror
from spyglass.store import store as store_module
from spyglass.store.migrations import LATEST, migrate

KINDS = [
    "flat",
    "ivf",
    "hnsw",
    "numpy",
    "milvus",
]  # numpy: a toy backend (tests/numpy_backend.py); milvus: Milvus Lite
DIM = 32


def recall(store: Store, vectors, ids, queries, k=10) -> float:
    found = [[h.item_id for h in row] for row in store.search(queries, k)]
    truth = [exact_top(vectors, ids, q, k) for q in queries]
    return np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)])


@pytest.mark.parametrize("kind", KINDS)
def test_add_search_delete_update(kind, tmp_path):
    store = Store(tmp_path, "model-a", DIM, index=kind)
    vectors = clustered(3000, DIM)
    ids = add_batch(store, vectors[:1500], "one") + add_batch(store, vectors[1500:], "two")
    assert store.index.kind == kind and store.index.ntotal == 3000
    queries = clustered(20, DIM, seed=9)
    assert recall(store, vectors, ids, queries) >= 0.9
    assert store.search(vectors[7], 1)[0][0].item_id == ids[7]

    # delete a document: its items vanish from results
    with store.write() as tx:
        tx.delete_document(store.items([ids[0]])[ids[0]]["document_id"])
    assert store.index.ntotal == 1500
    hits = store.search(vectors[7], 50)[0]
    assert hits and not {h.item_id for h in hits} & set(ids[:1500])

    # update: replace an item's vector (delete the row, add a new item with the new vector)
    target = ids[2000]
    moved = -vectors[2000]
    with store.write() as tx:
        tx.delete_items([target])
    new_id = add_batch(store, moved[None, :], "three")[0]
    assert store.search(moved, 1)[0][0].item_id == new_id
    assert target not in {h.item_id for h in store.search(vectors[2000], 20)[0]}
    store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_allow_lists_selective_and_broad(kind, tmp_path, monkeypatch):
    store = Store(tmp_path, "m", DIM, index=kind)
    vectors = clustered(10_000, DIM)
    ids = add_batch(store, vectors)
    query = vectors[123]
    # one allowed item among 10,000, far from the query: still found, and nothing else
    lonely = ids[int(np.argmin(vectors @ query))]
    assert [h.item_id for h in store.search(query, 5, allow=[lonely])[0]] == [lonely]
    # broad (half the collection) through the ANN path: only allowed ids, best of them first
    monkeypatch.setattr(store_module, "EXACT_ALLOW_LIMIT", 100)
    allowed = ids[::2]
    hits = store.search(query, 10, allow=allowed)[0]
    assert len(hits) == 10 and {h.item_id for h in hits} <= set(allowed)
    truth = exact_top(vectors[::2], allowed, query, 10)
    assert len({h.item_id for h in hits} & set(truth)) >= 8
    assert store.search(query, 10, allow=[])[0] == []
    store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_persistence_round_trip_loads_the_saved_index(kind, tmp_path, monkeypatch):
    store = Store(tmp_path, "m", DIM, index=kind)
    vectors = clustered(2000, DIM)
    add_batch(store, vectors)
    queries = clustered(5, DIM, seed=4)
    before = store.search(queries, 10)
    store.close()
    monkeypatch.setattr(Store, "_rebuild", lambda self: pytest.fail("reopening must not rebuild"))
    reopened = Store(tmp_path, "m", DIM, index=kind)
    assert reopened.index.kind == kind and reopened.index.ntotal == 2000
    assert [[h.item_id for h in r] for r in reopened.search(queries, 10)] == [
        [h.item_id for h in r] for r in before
    ]
    reopened.close()


def test_rebuild_after_index_file_is_deleted_or_corrupt(tmp_path):
    store = Store(tmp_path, "m", DIM)
    vectors = clustered(1000, DIM)
    ids = add_batch(store, vectors)
    store.close()
    for file in (tmp_path / "index").glob("*.faiss"):
        file.unlink()
    reopened = Store(tmp_path, "m", DIM)
    assert reopened.index.ntotal == 1000 and reopened.search(vectors[5], 1)[0][0].item_id == ids[5]
    reopened.close()
    for file in (tmp_path / "index").glob("*.faiss"):
        file.write_bytes(b"garbage")
    again = Store(tmp_path, "m", DIM)
    assert again.index.ntotal == 1000 and again.search(vectors[5], 1)[0][0].item_id == ids[5]
    again.close()


def test_unsaved_changes_are_replayed_from_the_log(tmp_path):
    """Changes committed after the last save (as after a crash) reach the index on open."""
    store = Store(tmp_path, "m", DIM, autosave_changes=10**9)
    first = add_batch(store, clustered(300, DIM, seed=1))
    store.flush()
    second = add_batch(store, clustered(200, DIM, seed=2))
    with store.write() as tx:
        tx.delete_items(first[:100])
    del store  # no close(): the index file still holds only the first batch
    reopened = Store(tmp_path, "m", DIM)
    assert reopened.index.ntotal == 400
    present = {h.item_id for h in reopened.search(clustered(1, DIM, seed=2)[0], 500)[0]}
    assert set(second) <= present and not set(first[:100]) & present
    reopened.close()


def test_other_models_vectors_are_never_mixed(tmp_path):
    store = Store(tmp_path, "model-a", DIM)
    vectors = clustered(50, DIM)
    ids = add_batch(store, vectors)
    with pytest.raises(ModelMismatchError, match="refusing vectors from model-b"), store.write() as tx:
        tx.add_vectors(ids[:1], vectors[:1], "model-b")
    with pytest.raises(ModelMismatchError, match="dimension"), store.write() as tx:
        tx.add_vectors(ids[:1], np.zeros((1, DIM + 1)), "model-a")
    store.close()

    other = Store(tmp_path, "model-b", DIM)
    with pytest.raises(ReindexRequiredError, match=r"model-a \(50 items\).*model-b"):
        other.search(vectors[0], 5)
    status = other.status()
    assert status["reindex_needed"] and status["items_needing_reindex"] == 50
    assert status["vectors_by_model"] == {"model-a": 50}
    with pytest.raises(ModelMismatchError, match="query dimension"):
        other.search(np.zeros(DIM + 1), 5)
    other.close()
    assert Store(tmp_path, "model-a", DIM).status()["reindex_needed"] is False


def test_auto_index_switches_to_ivf_as_the_collection_grows(tmp_path, monkeypatch):
    import spyglass.store.index as index_module

    monkeypatch.setattr(index_module, "AUTO_FLAT_LIMIT", 1000)
    store = Store(tmp_path, "m", DIM)
    vectors = clustered(1500, DIM)
    ids = add_batch(store, vectors[:600])
    assert store.index.kind == "flat"
    ids += add_batch(store, vectors[600:])
    assert store.index.kind == "ivf" and store.index.ntotal == 1500
    assert store.search(vectors[1200], 1)[0][0].item_id == ids[1200]
    store.close()


def test_hnsw_tombstones_trigger_a_rebuild(tmp_path):
    store = Store(tmp_path, "m", DIM, index="hnsw")
    ids = add_batch(store, clustered(500, DIM))
    with store.write() as tx:
        tx.delete_items(ids[:50])
    assert store.index.ntotal == 450 and len(store.index.tombstones) == 50
    with store.write() as tx:
        tx.delete_items(ids[50:150])
    assert store.index.ntotal == 350 and not store.index.tombstones  # rebuilt without them
    store.close()


def test_concurrent_searches_never_see_half_a_batch(tmp_path):
    """Each batch puts 40 items around its own direction; a search sees 0 or 40 of them, never some."""
    store = Store(tmp_path, "m", DIM)
    directions = np.eye(DIM, dtype=np.float32)[:12]  # orthogonal: batches cannot be confused
    rng = np.random.default_rng(0)
    errors, done = [], threading.Event()

    def writer():
        try:
            for n, direction in enumerate(directions):
                noisy = direction + 0.01 * rng.standard_normal((40, DIM))
                add_batch(
                    store, (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32), f"b{n}"
                )
        except Exception as exc:  # noqa: BLE001 - any failure in the writer thread is reported below
            errors.append(exc)
        finally:
            done.set()

    def reader():
        while not done.is_set():
            for direction in directions:
                close = sum(h.score > 0.99 for h in store.search(direction, 80)[0])
                if close not in (0, 40):
                    errors.append(AssertionError(f"saw {close} of a 40-item batch"))

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert store.index.ntotal == 480
    store.close()


def test_bm25_ranks_a_rare_word_first(tmp_path):
    store = Store(tmp_path, "m", DIM)
    texts = ["the cat sat on the mat"] * 20 + ["a quokka smiles at the camera", "cats and dogs"]
    ids = add_batch(store, clustered(len(texts), DIM), kind="passage", texts=texts)  # sections hold the words
    hits = store.bm25("quokka")
    assert hits[0][0] == ids[20] and hits[0][1] > 0 and len(hits) == 1
    assert store.bm25('quokka" OR *') and store.bm25("") == []  # no FTS syntax injection
    store.close()


def test_migration_from_version_1_keeps_data_and_backfills_fts(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    assert migrate(connection, target=1) == 1
    connection.execute("INSERT INTO sources (kind, uri, created_at) VALUES ('folder', '/x', 0)")
    connection.execute(
        "INSERT INTO documents (source_id, path, status) VALUES (1, '/x/FieldNotes/platypusSightings.txt', 'indexed')"
    )
    connection.execute("INSERT INTO items (document_id, kind, text) VALUES (1, 'passage', 'platypus facts')")
    connection.execute(
        "INSERT INTO items (document_id, kind, text, parent_id) VALUES (1, 'chunk', 'platypus facts', 1)"
    )
    connection.close()
    store = Store(tmp_path, "m", DIM)
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert store.counts()["items"] == 2
    assert [item for item, _ in store.bm25("platypus")] == [1]  # v9: the section, not its chunk too
    # Later steps: the lead item is named after its file and folder (camelCase split), substrings match.
    assert [item for item, _ in store.bm25("field notes sightings")] == [1]
    assert [item for item, _ in store.bm25("atypu")] == [1]
    store.close()


def test_schema_mirror_matches_the_migrated_database(tmp_path):
    from spyglass.store.schema import metadata

    store = Store(tmp_path, "m", DIM)
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as check:
        for table in metadata.tables.values():
            columns = [row[1] for row in check.execute(f"PRAGMA table_info({table.name})")]
            assert columns == [c.name for c in table.columns], table.name
    store.close()


def test_saved_manifest_is_tied_to_its_catalog(tmp_path):
    store = Store(tmp_path, "m", DIM)
    add_batch(store, clustered(100, DIM))
    store.close()
    manifest = next((tmp_path / "index").glob("*.json"))
    data = json.loads(manifest.read_text())
    data["store_id"] = "someone-else"
    manifest.write_text(json.dumps(data))
    rebuilt = []
    original = Store._rebuild
    Store._rebuild = lambda self: rebuilt.append(1) or original(self)
    try:
        reopened = Store(tmp_path, "m", DIM)
    finally:
        Store._rebuild = original
    assert rebuilt and reopened.index.ntotal == 100
    reopened.close()


def test_a_second_process_writes_are_seen_by_searches(tmp_path, monkeypatch):
    """Two stores on one data dir stand for `spyglass serve` and `spyglass index` in two processes."""
    monkeypatch.setattr(mirror, "REFRESH_INTERVAL_S", 0.0)
    server = Store(tmp_path, "m", DIM)
    indexer = Store(tmp_path, "m", DIM)
    vectors = clustered(300, DIM, seed=8)
    first = add_batch(indexer, vectors[:100], "a")
    assert server.search(vectors[5], 1)[0][0].item_id == first[5]
    indexer.flush()  # saves the index and trims the log the server has not read past
    second = add_batch(indexer, vectors[100:], "b")
    with indexer.write() as tx:
        tx.delete_items(first[:10])
    indexer.flush()
    assert server.search(vectors[150], 1)[0][0].item_id == second[50]
    assert server.index.ntotal == 290
    assert first[3] not in {h.item_id for h in server.search(vectors[3], 20)[0]}
    third = add_batch(indexer, vectors[:5], "c")
    indexer.flush()
    server.flush()  # a store that is behind catches up before it saves, never saving an older index
    server.close()
    indexer.close()
    with Store(tmp_path, "m", DIM) as reopened:
        assert reopened.index.ntotal == 295 and reopened.search(vectors[0], 2)[0][0].item_id in (
            first[0],
            third[0],
        )


@pytest.mark.parametrize("index_type", ["FLAT", "HNSW"])
def test_milvus_top_10_matches_faiss_flat(index_type, tmp_path):
    """Milvus (Lite, a local file) answers as exact FAISS does: the same top 10 (HNSW: nearly)."""
    vectors = clustered(5000, DIM)
    queries = clustered(20, DIM, seed=7)
    stores = {
        "flat": Store(tmp_path / "flat", "m", DIM, index="flat"),
        "milvus": Store(
            tmp_path / "milvus", "m", DIM, index="milvus", index_options={"index_type": index_type, "ef": 128}
        ),
    }
    found = {}
    for name, store in stores.items():
        add_batch(store, vectors)
        found[name] = [[h.item_id for h in row] for row in store.search(queries, 10)]
        store.close()
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found["flat"], found["milvus"])])
    assert overlap == 1.0 if index_type == "FLAT" else overlap >= 0.95
    assert (tmp_path / "milvus" / "index" / "milvus.db").is_dir()  # Milvus Lite inside the data dir


def test_a_torn_milvus_lite_collection_is_dropped_and_rebuilt(tmp_path):
    """A process killed while Milvus Lite wrote leaves a file short ("file seems not fully written")."""
    store = Store(tmp_path, "m", DIM, index="milvus")
    vectors = clustered(700, DIM)
    ids = add_batch(store, vectors)
    torn = store.index.collection
    store.close()
    (segment,) = (tmp_path / "index" / "milvus.db").rglob("*.idx")
    segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])
    reopened = Store(tmp_path, "m", DIM, index="milvus")
    assert reopened.index.ntotal == 700 and reopened.search(vectors[5], 1)[0][0].item_id == ids[5]
    assert reopened.index.collection != torn and not reopened.index.client.has_collection(torn)
    reopened.close()


def test_milvus_lite_is_released_when_the_store_closes_and_dropped_when_pruned(tmp_path):
    store = Store(tmp_path, "m", DIM, index="milvus")
    add_batch(store, clustered(100, DIM))
    other = Store(tmp_path, "other-model", DIM, index="milvus")  # the same Lite file, in this process
    store.close()
    assert other.index.ntotal == 0  # its own collection, still open after the first store closed
    with pytest.raises(ReindexRequiredError):
        other.search(clustered(1, DIM), 3)
    dropped = other.prune("m")
    assert dropped == 100
    other.close()
    again = Store(tmp_path, "m", DIM, index="milvus")  # a fresh process could open the file now
    assert again.index.ntotal == 0
    again.close()


def test_a_collection_on_milvus_lite_end_to_end(tmp_path, shapes_encoder):
    """Index, search and reopen through the Engine with Milvus Lite as the vector index."""
    from conftest import write_shapes

    from spyglass.engine import Engine
    from spyglass.settings import Settings

    folder = write_shapes(tmp_path / "pics", 24, seed=2)
    settings = Settings(data_dir=tmp_path / "data", index={"kind": "milvus"})
    with Engine(settings, encoder=shapes_encoder) as engine:
        engine.index(folder, progress=False)
        first = [h.path for h in engine.search("a red circle", k=5).results]
        assert engine.status()["index"] == "milvus" and "red-circle" in first[0]
    with Engine(settings, encoder=shapes_encoder) as reopened:  # the Lite folder was let go of
        assert [h.path for h in reopened.search("a red circle", k=5).results] == first
