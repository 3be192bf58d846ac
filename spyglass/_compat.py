"""Compatibility shims for broken-but-common installs.

The only shim today is for torchvision. PyPI's torchvision wheels are CUDA builds;
next to a CPU-only torch their C extension (``torchvision/_C.so``) cannot load.
torchvision tolerates that, except that ``torchvision._meta_registrations``
registers fake kernels for ``torchvision::nms`` and ``torchvision::qnms`` at import
time, which raises ``operator torchvision::nms does not exist``. ``open_clip`` and
parts of ``transformers`` import torchvision, so the whole encoder stack fails.

Defining the two operator *schemas* (no kernels) lets torchvision import; its
transforms, which are all we use, are pure Python/PIL. We only do this when the
extension really cannot load, so a healthy torchvision is left untouched.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library.Library alive; the schemas vanish if it is collected


def ensure_torchvision_importable() -> None:
    """Make ``import torchvision`` work even when its C extension cannot load."""
    global _library
    if _library is not None:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return  # not installed: nothing to fix
    import torch

    extension = next(Path(spec.origin).parent.glob("_C*.so"), None) or next(
        Path(spec.origin).parent.glob("_C*.pyd"), None
    )
    if extension is not None:
        try:
            torch.ops.load_library(str(extension))
            return  # healthy install: torchvision will register its own ops
        except OSError as exc:
            log.debug("torchvision extension cannot load (%s); defining op schemas", exc)
    _library = torch.library.Library("torchvision", "DEF")
    for name, schema in _SCHEMAS.items():
        if not hasattr(torch.ops.torchvision, name):
            _library.define(schema)
