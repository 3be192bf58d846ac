"""Choose device and weight dtype.

bf16 *weights* (``model.to(torch.bfloat16)``) are ~5x faster than fp32 on CPUs with
AMX or AVX512-BF16 and keep embeddings within cosine 0.999 of fp32; on other CPUs
bf16 matmuls are emulated and slower, so ``auto`` stays in fp32 there. bf16
*autocast* is slow on CPU (per-op casts), so it is never used.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU executes bf16 matmuls natively (AMX tiles or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def set_threads(threads: int) -> None:
    """Torch's CPU thread count for this process (0 keeps torch's default); entry points call it once."""
    if threads:
        torch.set_num_threads(threads)


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was requested but torch sees no CUDA device.")
    return torch.device(setting)


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_fast_bf16():
            return torch.bfloat16
        return torch.float32
    if setting == "fp16" and device.type == "cpu":
        raise ValueError("precision=fp16 is not supported on CPU; use bf16 or fp32.")
    return _DTYPES[setting]
