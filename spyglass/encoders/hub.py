"""Find model weights locally first, download only when the network is really there.

Without this, a missing checkpoint on an offline machine means a long DNS/connect
hang inside huggingface_hub followed by a stack trace. We look in the caches with
``local_files_only``; if that misses, a sub-second reachability probe decides
between downloading and one clear :class:`WeightsUnavailableError`.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from spyglass.errors import WeightsUnavailableError

PROBE_TIMEOUT_S = 1.5
_TRUTHY = {"1", "true", "yes", "on"}


def offline_by_env() -> bool:
    return any(os.environ.get(v, "").lower() in _TRUTHY for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


@functools.cache
def _reachable(host: str, port: int = 443) -> bool:
    """Resolve and connect within PROBE_TIMEOUT_S; getaddrinfo has no timeout, so it runs in a thread."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


def is_offline() -> bool:
    """Offline when the environment says so or the hub does not answer quickly."""
    return offline_by_env() or not _reachable(hub_host())


def unavailable(spec: str, where: str, *, setting: str = "") -> WeightsUnavailableError:
    """The one sentence a user sees for missing weights; ``setting`` names the variable that picks the model."""
    if setting:
        remedy = f"or point {setting} at a local copy of the model directory (empty turns it off)."
    else:
        remedy = (
            "or point SPYGLASS_MODEL (or --model) at a local copy, e.g. SPYGLASS_MODEL=/path/to/model-dir, "
            "or try Spyglass offline now with --model builtin:shapes (a tiny model trained on this machine)."
        )
    return WeightsUnavailableError(
        f"Weights for model {spec!r} are not on this machine (looked in {where}) and the model hub is "
        f"unreachable; download them once on a connected machine into that cache, {remedy}"
    )


def hf_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_file(repo_id: str, filenames: list[str]) -> str | None:
    """Path of the first of ``filenames`` already in the local hub cache, without any network."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return found
    return None


def hub_file(repo_id: str, filenames: list[str], spec: str) -> str:
    """Path of the first of ``filenames`` in ``repo_id``: from the cache, else downloaded."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    found = cached_file(repo_id, filenames)
    if found:
        return found
    if is_offline():
        raise unavailable(spec, f"{hf_cache_dir()} for {repo_id}")
    for filename in filenames[:-1]:
        try:
            return hf_hub_download(repo_id, filename)
        except EntryNotFoundError:
            continue
    return hf_hub_download(repo_id, filenames[-1])
