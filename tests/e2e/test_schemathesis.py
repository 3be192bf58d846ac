"""Property-based API testing from /openapi.json with schemathesis: conformance, not just "no 5xx".

Every check runs (status codes documented, invalid input rejected, response schemas,
headers, methods, auth) except ``positive_data_acceptance``: uploads are accepted by
their content (sniffed), and sources by where they are (inside the allowed roots),
which a schema cannot express, so schema-valid bytes are rightly refused there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.live_server import LiveServer

from spyglass.api import create_app
from spyglass.encoders.clip import shapes
from spyglass.engine import Engine
from spyglass.settings import Settings


def test_generated_requests_conform_to_the_openapi_document(tmp_path, shapes_encoder):
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    if not Path(st).exists():
        pytest.skip("schemathesis is not installed (it is in the test extras)")
    folder = tmp_path / "files"
    folder.mkdir()
    for n, sample in enumerate(shapes.generate(8, seed=2)):
        sample.image.save(folder / f"{n}.png")
    # builtin:shapes as the setting too: the collections the fuzzer creates take the global model and
    # must find its weights here (a missing model's documented 503 still counts as a server error)
    settings = Settings(data_dir=tmp_path / "data", model="builtin:shapes", allowed_roots=[folder])
    engine = Engine(settings, encoder=shapes_encoder)
    engine.index(folder, progress=False)
    with LiveServer(create_app(engine)) as live:
        result = subprocess.run(
            [
                st,
                "run",
                f"{live.url}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "15",
                "--workers",
                "1",
                "--phases",
                "examples,fuzzing",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # its report folder goes there
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts and int(counts.group(1)) >= 50 and counts.group(1) == counts.group(2)  # it really ran cases
