"""Encoder throughput: images/s and texts/s for an open_clip architecture with random weights.

Prints, per precision and batch size, the measured rate and the fraction of this
machine's matmul peak (measured here, same dtype) that the model's FLOPs reach, and how
far each precision's vectors of the export's probe pictures are from the first
precision's (lowest cosine). Random weights run at the same speed as pretrained ones.

    python benchmarks/encode.py --arch ViT-B-32 --batches 1 16 64 --precisions fp32 bf16
    python benchmarks/encode.py --device cuda --precisions fp32 bf16 fp16   # on a GPU
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from spyglass._compat import ensure_torchvision_importable

ensure_torchvision_importable()
import open_clip  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from spyglass.encoders.clip.openclip import OpenClipEncoder  # noqa: E402
from spyglass.encoders.fast.image_export import probe_images  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CAPTIONS = [
    "a dog running on the beach",
    "two people riding bicycles down a city street at night",
    "a red car",
]


def matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 1.5) -> float:
    size = 8192 if device.type == "cuda" else 2048  # a GPU needs big products to reach its peak
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()  # the products above were only queued
    return 2 * size**3 * count / (time.perf_counter() - start)


def rate(fn, items: int, seconds: float) -> float:
    fn()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        fn()
        done += items
    return done / (time.perf_counter() - start)


def image_flops(encoder: OpenClipEncoder) -> float:
    pixels = torch.zeros(
        1, 3, encoder.image_size, encoder.image_size, dtype=encoder.dtype, device=encoder.device
    )
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        encoder.model.encode_image(pixels)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    device = torch.device(args.device)

    model, _, transform = open_clip.create_model_and_transforms(args.arch)
    tokenizer = open_clip.get_tokenizer(args.arch)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"{args.arch}, random weights, {where}, torch {torch.__version__}")
    print(f"{'precision':>9} {'batch':>5} {'images/s':>9} {'texts/s':>9} {'% matmul peak':>14}")
    baseline, reference = None, None
    for name in args.precisions:
        dtype = DTYPES[name]
        peak = matmul_peak(dtype, device)
        for batch in args.batches:
            encoder = OpenClipEncoder(
                model,
                transform,
                tokenizer,
                f"random:{args.arch}",
                device=device,
                dtype=dtype,
                batch_size=batch,
            )
            pixels = torch.randn(batch, 3, encoder.image_size, encoder.image_size)
            texts = (CAPTIONS * batch)[:batch]
            images_per_s = rate(partial(encoder.encode_pixels, pixels), batch, args.seconds)
            texts_per_s = rate(partial(encoder.encode_texts, texts), batch, args.seconds)
            fraction = images_per_s * image_flops(encoder) / peak
            if baseline is None:
                baseline = images_per_s
            print(
                f"{name:>9} {batch:>5} {images_per_s:>9.1f} {texts_per_s:>9.1f} {100 * fraction:>13.1f}%"
                f"   ({images_per_s / baseline:.2f}x images/s vs {args.precisions[0]} batch {args.batches[0]})"
            )
        probes = encoder.encode_images(probe_images())
        reference = probes if reference is None else reference
        lowest = float((probes * reference).sum(axis=1).min())
        print(
            f"{'':>9} matmul peak {name}: {peak / 1e9:.0f} GFLOP/s; probe vectors: lowest cosine to "
            f"{args.precisions[0]} {lowest:.4f}"
        )


if __name__ == "__main__":
    main()
