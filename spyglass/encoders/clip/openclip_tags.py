"""open_clip's table of pretrained tags, readable without importing torch.

``spyglass models`` must answer on a machine with no weights and without the seconds
torch takes to import, but the tag -> hub repo table lives in ``open_clip.pretrained``,
and importing it through the package runs ``open_clip/__init__`` (torch, timm,
transformers). The module itself needs only the standard library, tqdm and
huggingface_hub (``safetensors.torch`` is optional there), so it is loaded from
open_clip's own folder under a private package name. Once torch is loaded anyway,
open_clip itself answers.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path

_PRIVATE = "_spyglass_open_clip_tables"


def pretrained_cfg(arch: str, tag: str) -> dict:
    """open_clip's pretrained config for ``arch``/``tag`` ({} when there is none)."""
    return _module().get_pretrained_cfg(arch, tag)


@functools.cache
def _module() -> types.ModuleType:
    if "torch" in sys.modules:
        from spyglass._compat import ensure_torchvision_importable

        ensure_torchvision_importable()
        import open_clip

        return open_clip.pretrained
    spec = importlib.util.find_spec("open_clip")  # locates the package without running it
    package = types.ModuleType(_PRIVATE)
    package.__path__ = [str(Path(spec.origin).parent)]
    sys.modules[_PRIVATE] = package
    blocked = sys.modules.setdefault("safetensors.torch", None) is None  # its optional torch import
    try:
        return importlib.import_module(f"{_PRIVATE}.pretrained")
    finally:
        if blocked:
            sys.modules.pop("safetensors.torch", None)
