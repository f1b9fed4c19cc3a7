"""Batched augmentation speed: cnnbench's hand-written BatchAugment against kornia.augmentation.

    python bench/augment_speed.py            # needs kornia (pip install kornia) for its rows

For each pipeline of conf/augmentation/ (flip_crop, affine, keras_like, cutout) and each shape
(1x28x28 MNIST, 3x32x32 CIFAR) at batch size 512, the time per batch of the same operations with
per-sample random parameters: BatchAugment (what cnnbench uses) and the equivalent kornia
AugmentationSequential (RandomHorizontalFlip, RandomCrop with padding, RandomAffine, RandomErasing).
Timed with the device synchronized, mean of --iters calls after warm-up calls.
Prints a table and writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnbench.engine.augment import BatchAugment

PIPELINES = {
    "flip_crop": dict(flip=True, crop_padding=4),
    "affine": dict(rotation=10.0, translate=0.143, scale=0.1, shear=0.1),
    "keras_like": dict(flip=True, rotation=15.0, translate=0.1, scale=0.2),
    "cutout": dict(flip=True, crop_padding=4, erasing=0.5),
}
SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32)}


def kornia_pipeline(aug: BatchAugment, size: tuple[int, int]):
    import kornia.augmentation as K

    ops = []
    if aug.flip:
        ops.append(K.RandomHorizontalFlip(p=0.5))
    if aug.crop_padding:
        ops.append(K.RandomCrop(size, padding=aug.crop_padding, p=1.0))
    if aug.rotation or aug.translate or aug.scale or aug.shear:
        ops.append(K.RandomAffine(
            degrees=aug.rotation,
            translate=(aug.translate, aug.translate) if aug.translate else None,
            scale=(1 - aug.scale, 1 + aug.scale) if aug.scale else None,
            shear=math.degrees(math.atan(aug.shear)) if aug.shear else None,
            padding_mode="zeros", p=1.0))
    if aug.erasing:
        ops.append(K.RandomErasing(scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, p=aug.erasing))
    return K.AugmentationSequential(*ops)


def time_call(fn, x: torch.Tensor, iters: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench/results/augment_speed.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    try:
        import kornia
        kornia_version = kornia.__version__
    except ImportError:
        kornia_version = None
        print("kornia is not installed: only the hand-written rows")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {name} | torch {torch.__version__} | kornia {kornia_version} | bs {args.batch_size}")
    rows = []
    for shape_name, shape in SHAPES.items():
        x = torch.rand(args.batch_size, *shape, device=device)
        for pipe, kwargs in PIPELINES.items():
            aug = BatchAugment(**kwargs)
            gen = torch.Generator(device=device).manual_seed(0)
            row = {"shape": shape_name, "pipeline": pipe, "batch_size": args.batch_size,
                   "handwritten_ms": 1e3 * time_call(lambda t, aug=aug, gen=gen: aug(t, gen), x, args.iters)}
            if kornia_version:
                k = kornia_pipeline(aug, shape[1:]).to(device)
                row["kornia_ms"] = 1e3 * time_call(k, x, args.iters)
                row["kornia_over_handwritten"] = row["kornia_ms"] / row["handwritten_ms"]
            rows.append(row)
            print(f"  {shape_name:5} {pipe:10} hand-written {row['handwritten_ms']:7.3f} ms"
                  + (f"   kornia {row['kornia_ms']:7.3f} ms  ({row['kornia_over_handwritten']:.1f}x)"
                     if kornia_version else ""), flush=True)
    print()
    print("| shape | pipeline | hand-written ms/batch | kornia ms/batch | kornia / hand-written |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        k = f"{r['kornia_ms']:.3f} | {r['kornia_over_handwritten']:.1f}x" if "kornia_ms" in r else "- | -"
        print(f"| {r['shape']} | {r['pipeline']} | {r['handwritten_ms']:.3f} | {k} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": name, "torch": torch.__version__, "kornia": kornia_version,
                               "command": " ".join(sys.argv), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
