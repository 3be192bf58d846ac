"""Writer process for the crash test: adds 100-item documents forever, saving the index now and then.

Each document's items lie around one basis direction (document n -> axis n % dim),
so the checker can tell complete batches from partial ones. Prints "committed N"
after each transaction returns.
"""

import sys
from pathlib import Path

import numpy as np

from spyglass.store import Store

data_dir, dim = Path(sys.argv[1]), int(sys.argv[2])
store = Store(data_dir, "crash-model", dim, index=sys.argv[3], autosave_changes=700)
rng = np.random.default_rng()
start = store.counts()["documents"]
for n in range(start, start + 10_000):
    batch = np.eye(dim, dtype=np.float32)[n % dim] + 0.05 * rng.standard_normal((100, dim)).astype(np.float32)
    batch /= np.linalg.norm(batch, axis=1, keepdims=True)
    with store.write() as tx:
        source = tx.ensure_source("folder", "/crash")
        document = tx.upsert_document(source, f"doc-{n}", status="indexed")
        ids = tx.add_items(document, [{"kind": "image"}] * 100)
        tx.add_vectors(ids, batch, "crash-model")
    print(f"committed {n}", flush=True)
