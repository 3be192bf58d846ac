"""Run the toy stage over an existing data dir in its own process (the SIGKILL test kills it)."""

import sys

import toy_stages

from spyglass.indexer.stages import run_stages
from spyglass.store import Store

data_dir, model_id, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Store(data_dir, model_id, dim) as store:
    reports = run_stages(store, [toy_stages.WordCount()])
print(reports[0].processed, flush=True)
