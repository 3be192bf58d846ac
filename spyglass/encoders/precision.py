"""Choose device and weight dtype.

bf16 *weights* (``model.to(torch.bfloat16)``) are ~5x faster than fp32 on CPUs with
AMX tiles and keep embeddings within cosine 0.999 of fp32. AVX512-BF16 alone is not a
promise: on an Intel CPU with it ViT-B-32 encoded images 0.63x as fast in bf16 as in fp32
(``benchmarks/encode.py``; its bf16 matmul peak was 163 GFLOP/s against 270 in fp32),
and MiniLM passages 0.77x; on an AMD EPYC with it, 2.17x. Without AMX, though, ingest and
serve run the ONNX int8 tower, with no torch: on that EPYC a whole ``spyglass index`` of
200 photos was as fast that way as with torch's bf16 and 260 MB lighter (README, "Precision
and speed"). ``auto`` therefore means bf16 only with AMX. bf16 *autocast* is slow on CPU
(per-op casts), so it is never used.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a torch model is loaded: the CPU checks here need none
    import torch


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when this CPU runs bf16 matmuls faster than fp32 (see the module docstring)."""
    try:
        return fast_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def fast_bf16(cpuinfo: str) -> bool:
    """Whether the CPU described by ``/proc/cpuinfo`` text has AMX bf16 tiles."""
    return any(
        "amx_bf16" in line.split(":", 1)[1].split()
        for line in cpuinfo.splitlines()
        if line.startswith("flags")
    )


def set_threads(threads: int) -> None:
    """Torch's CPU thread count for this process (0 keeps torch's default); entry points call it once."""
    import torch

    if threads:
        torch.set_num_threads(threads)


def resolve_device(setting: str) -> torch.device:
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was requested but torch sees no CUDA device.")
    return torch.device(setting)


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The torch weight dtype for a precision setting (int8 exists only as an ONNX export, whose
    full model is fp32)."""
    import torch

    if setting == "int8":
        return torch.float32
    if setting == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_fast_bf16():
            return torch.bfloat16
        return torch.float32
    if setting == "fp16" and device.type == "cpu":
        raise ValueError("precision=fp16 is not supported on CPU; use bf16 or fp32.")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[setting]
