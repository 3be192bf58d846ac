"""Milvus as the vector index: Milvus Lite (a local file) for small setups, a Milvus server or
cluster when the vectors outgrow one machine's memory.

Like every backend it is derived: SQLite keeps the vectors, the store replays its vector log
into the collection, and a collection that is missing or doubtful is rebuilt from SQLite. Adds
are upserts and deletes ignore unknown ids, so replaying a log the collection already holds
(after a crash between Milvus persisting and the store saving its position) changes nothing.
Filters arrive as allow-lists of item ids and run inside Milvus's search as an ``id in [...]``
expression (the store scores small allow-lists exactly itself, before asking any backend).

Each index is one collection, named when it is created; a rebuild fills a new collection and
drops the old one once it has been swapped out. Milvus Lite opens its file in one process at a
time: a data directory using it is used by one process (a server, or a script); a Milvus server
has no such limit.

    [index]
    kind = "milvus"
    options = { uri = "http://milvus:19530", index_type = "HNSW", M = 16, ef = 64 }

A server's token is read from ``SPYGLASS_MILVUS_TOKEN``, so it never lands in a saved file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from spyglass.errors import SpyglassError
from spyglass.store.index.base import VectorIndex, as_ids, as_vectors

log = logging.getLogger(__name__)

BATCH = 2_000  # rows per insert call: bounded request sizes for large rebuilds
INDEX_PARAMS = {  # build parameters each Milvus index type takes from the options
    "FLAT": (),
    "HNSW": ("M", "efConstruction"),
    "IVF_FLAT": ("nlist",),
    "IVF_SQ8": ("nlist",),
    "AUTOINDEX": (),
}
SEARCH_PARAMS = {"HNSW": ("ef",), "IVF_FLAT": ("nprobe",), "IVF_SQ8": ("nprobe",)}


class MilvusIndex(VectorIndex):
    kind = "milvus"
    options = ("uri", "index_type", "M", "efConstruction", "ef", "nlist", "nprobe", "home", "prefix")
    file_suffix = ".milvus.json"  # what the store saves: where the collection is, not the vectors
    external = True

    def __init__(
        self,
        dim: int,
        uri: str | None = None,
        index_type: str = "FLAT",
        home: str | None = None,
        collection: str | None = None,
        prefix: str = "",
        **params: int,
    ) -> None:
        """``prefix``: the Spyglass collection's name, leading its Milvus collections' names."""
        super().__init__(dim)
        if index_type not in INDEX_PARAMS:
            raise ValueError(f"Milvus index type {index_type!r}; choose one of {', '.join(INDEX_PARAMS)}")
        if uri is None:  # Milvus Lite, beside the FAISS files
            Path(home or ".").mkdir(parents=True, exist_ok=True)
            uri = str(Path(home or ".") / "milvus.db")
        self.uri, self.index_type, self.params = uri, index_type, params
        self.client = _connect(uri)
        named = f"{prefix.replace('-', '_')}_" if prefix else ""
        self.collection = collection or f"spyglass_{named}{secrets.token_hex(6)}"
        if collection is None:
            self._create()
        elif self.client.has_collection(collection):
            self._load(collection)
        else:
            _release(self.client, uri)  # the store rebuilds, into a collection of its own
            raise ValueError(f"Milvus collection {collection} at {self.uri} is gone")
        self._count, self._unflushed = self._counted(), False

    def _load(self, collection: str) -> None:
        """Load a saved collection into memory, as Milvus has not after a restart.

        A process killed while Milvus Lite wrote can leave the collection's files torn ("file
        seems not fully written"). SQLite holds every vector, so the torn collection is dropped
        and the ValueError makes the store rebuild into a new one. A server's error is raised
        as it is: it may pass, and the collection on the server may be whole.
        """
        from pymilvus import MilvusException

        try:
            self.client.load_collection(collection)
        except MilvusException as exc:
            if not _local(self.uri):
                raise
            try:
                self.client.drop_collection(collection)
            except MilvusException:
                log.warning("could not drop the unreadable Milvus collection %s", collection)
            _release(self.client, self.uri)
            raise ValueError(
                f"Milvus collection {collection} at {self.uri} cannot be loaded: {exc.message}"
            ) from exc

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index = self.client.prepare_index_params()
        build = {key: self.params[key] for key in INDEX_PARAMS[self.index_type] if key in self.params}
        index.add_index("vector", index_type=self.index_type, metric_type="IP", params=build)
        self.client.create_collection(self.collection, schema=schema, index_params=index)

    @property
    def ntotal(self) -> int:
        return self._count

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = as_ids(ids), as_vectors(vectors)
        for start in range(0, len(ids), BATCH):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[start : start + BATCH], vectors[start : start + BATCH])
            ]
            self.client.upsert(self.collection, rows)
        self._count, self._unflushed = self._counted(), True

    def remove(self, ids: np.ndarray) -> None:
        ids = as_ids(ids)
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.collection, ids=ids[start : start + BATCH].tolist())
        self._count, self._unflushed = self._counted(), True

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = as_vectors(queries)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        if not len(queries) or not self._count:
            return scores, ids
        if self._unflushed:  # searching unsealed rows is a brute-force scan: seal them first, once
            self.client.flush(self.collection)
            self._unflushed = False
        params = {
            key: self.params[key] for key in SEARCH_PARAMS.get(self.index_type, ()) if key in self.params
        }
        found = self.client.search(
            self.collection,
            data=queries.tolist(),
            limit=min(k, self._count),
            filter="" if allow is None else f"id in {as_ids(allow).tolist()}",
            search_params={"metric_type": "IP", "params": params},
            output_fields=["id"],
        )
        for row, hits in enumerate(found):
            for column, hit in enumerate(hits[:k]):
                ids[row, column], scores[row, column] = int(hit["id"]), float(hit["distance"])
        return scores, ids

    def settings(self) -> dict:
        return {
            "uri": self.uri,
            "collection": self.collection,
            "index_type": self.index_type,
            "params": self.params,
        }

    def save(self, path: Path) -> None:
        """Milvus keeps the vectors; the file says which collection the saved log position belongs to."""
        self.client.flush(self.collection)
        path.write_text(json.dumps(self.settings()))

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict) -> MilvusIndex:
        saved = json.loads(path.read_text())
        return cls(
            dim,
            uri=saved["uri"],
            index_type=saved["index_type"],
            collection=saved["collection"],
            **saved.get("params", {}),
        )

    def close(self) -> None:
        """Let go of the connection (and Milvus Lite of its file, for the next process)."""
        _release(self.client, self.uri)

    def discard(self) -> None:
        """Drop the collection: a rebuilt index replaced it."""
        self.client.drop_collection(self.collection)
        self.close()

    def _counted(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0


_LITE_USERS: Counter[str] = Counter()  # Milvus Lite files open in this process, by how many indexes
_LITE_LOCK = threading.Lock()


class _Unimplemented(logging.Filter):
    """Milvus Lite's in-process server lacks ``AllocTimestamp``, which pymilvus asks for while it waits
    for a new index and then does without; gRPC would log each such call with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], NotImplementedError))


_UNIMPLEMENTED = _Unimplemented()


def _local(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _release(client, uri: str) -> None:
    """Close a client; the last index of a Milvus Lite file also stops its in-process server (its lock)."""
    client.close()
    if not _local(uri):
        return
    with _LITE_LOCK:
        _LITE_USERS[uri] -= 1
        last = _LITE_USERS[uri] <= 0
        if last:
            del _LITE_USERS[uri]
    if last:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def _connect(uri: str):
    """A client for ``uri``; a server's token comes from ``SPYGLASS_MILVUS_TOKEN`` (never saved)."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise SpyglassError(
            "the milvus index needs pymilvus (and milvus-lite for a local file): "
            "pip install 'spyglass[scale]'"
        ) from None
    try:
        client = MilvusClient(uri=uri, token=os.environ.get("SPYGLASS_MILVUS_TOKEN", ""))
    except Exception as exc:  # noqa: BLE001 - pymilvus raises its own types for every connection failure
        hint = " (Milvus Lite opens a file in one process at a time)" if _local(uri) else ""
        raise SpyglassError(f"cannot open Milvus at {uri}{hint}: {exc}") from None
    if _local(uri):
        logging.getLogger("grpc._server").addFilter(_UNIMPLEMENTED)  # one filter, however often added
        with _LITE_LOCK:
            _LITE_USERS[uri] += 1
    return client
