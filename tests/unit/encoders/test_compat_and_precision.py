import subprocess
import sys

import pytest
import torch

from spyglass.encoders.precision import cpu_has_fast_bf16, fast_bf16, resolve_device, resolve_dtype


def test_torchvision_imports_after_the_shim():
    """In a fresh interpreter (the shim must run before torchvision's first import)."""
    code = (
        "from spyglass._compat import ensure_torchvision_importable\n"
        "ensure_torchvision_importable()\n"
        "import torchvision.transforms, open_clip\n"
        "import spyglass._compat as c\n"
        "from torchvision.extension import _has_ops\n"
        # the schemas are defined exactly when torchvision's own extension could not load
        "assert (c._library is None) == _has_ops(), (c._library, _has_ops())\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_auto_precision_follows_the_cpu():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
    assert resolve_dtype("fp32", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="fp16 is not supported on CPU"):
        resolve_dtype("fp16", cpu)


def test_bf16_is_chosen_only_with_amx():
    """Without AMX, ``auto`` keeps the torch-free ONNX tower (see ``precision``)."""
    avx512 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
    amx = avx512.replace("avx512_vnni", "avx512_vnni amx_bf16 amx_tile amx_int8")
    assert not fast_bf16(avx512) and fast_bf16(amx)
    assert not fast_bf16("model name\t: amx_bf16 in a name is not a flag\n")


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
