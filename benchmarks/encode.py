"""Encoder throughput: images/s and texts/s for an open_clip architecture with random weights.

Prints, per precision and batch size, the measured rate and the fraction of this
machine's matmul peak (measured here, same dtype) that the model's FLOPs reach.
Random weights run at the same speed as pretrained ones.

    python benchmarks/encode.py --arch ViT-B-32 --batches 1 16 64 --precisions fp32 bf16
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

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
CAPTIONS = [
    "a dog running on the beach",
    "two people riding bicycles down a city street at night",
    "a red car",
]


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 1.5) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start)


def rate(fn, items: int, seconds: float) -> float:
    fn()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        fn()
        done += items
    return done / (time.perf_counter() - start)


def image_flops(encoder: OpenClipEncoder) -> float:
    pixels = torch.zeros(1, 3, encoder.image_size, encoder.image_size, dtype=encoder.dtype)
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
    args = parser.parse_args()

    model, _, transform = open_clip.create_model_and_transforms(args.arch)
    tokenizer = open_clip.get_tokenizer(args.arch)
    print(f"{args.arch}, random weights, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'precision':>9} {'batch':>5} {'images/s':>9} {'texts/s':>9} {'% matmul peak':>14}")
    baseline = None
    for name in args.precisions:
        dtype = DTYPES[name]
        peak = matmul_peak(dtype)
        for batch in args.batches:
            encoder = OpenClipEncoder(
                model,
                transform,
                tokenizer,
                f"random:{args.arch}",
                device=torch.device("cpu"),
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
        print(f"{'':>9} matmul peak {name}: {peak / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
