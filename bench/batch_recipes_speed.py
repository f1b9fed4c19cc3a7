"""Batch recipes' speed: cnnbench's RandAugment, TrivialAugment, mixup and CutMix against
torchvision.transforms.v2 and kornia.augmentation on the same batch.

    python bench/batch_recipes_speed.py                  # CPU: bench/results/batch_recipes_cpu.json
    python bench/batch_recipes_speed.py --device cuda --out bench/results/batch_recipes_cuda.json

For each shape (1x28x28 MNIST, 3x32x32 CIFAR) at batch size 512, the time per batch of:
- randaugment (2 ops, magnitude 9) and trivialaugment: cnnbench's BatchAugment (per-image ops,
  one call for the batch); torchvision.transforms.v2 called on the whole batch ("tv batch": ONE
  op draw shared by every image, so cheaper work than per-image augmentation, not the same
  recipe) and called once per image ("tv per image": the same recipe as cnnbench's); kornia's
  kornia.augmentation.auto.RandAugment / TrivialAugment on the batch.
- mixup (alpha 0.8), cutmix (alpha 1.0), mixup_cutmix (switch 0.5): cnnbench's BatchMix with
  its soft targets; torchvision.transforms.v2 MixUp / CutMix / RandomChoice of both (soft targets
  too); kornia's RandomMixUpV2 / RandomCutMixV2 (labels as (y_a, y_b, lam) rows).
Timed with the device synchronized, the median of --iters calls after warm-up calls (the
per-image rows: a tenth of the calls, at least 2); --threads sets torch's CPU threads. kornia is optional (pip install kornia): without it, its columns
are empty. Prints a table and writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnbench.engine.augment import BatchAugment

SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32)}
CLASSES = 10
RECIPES = ("randaugment", "trivialaugment", "mixup", "cutmix", "mixup_cutmix")
MIX = {"mixup": dict(mixup=0.8), "cutmix": dict(cutmix=1.0),
       "mixup_cutmix": dict(mixup=0.8, cutmix=1.0, mix_switch=0.5)}


def time_call(fn: Callable[[], object], device: torch.device, iters: int, warmup: int = 3) -> float:
    """The median of `iters` calls of `fn`, in seconds, each timed with the device synchronized
    (not the fastest: a random policy's fastest call is the one that drew the fewest ops)."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(recipe: str, x: torch.Tensor, y: torch.Tensor) -> Callable[[], object]:
    gen = torch.Generator(device=x.device).manual_seed(0)
    if recipe in MIX:
        aug = BatchAugment(**MIX[recipe])
        bounds = [(0, x.shape[0])]
        return lambda: aug.mix_batches(x, y, bounds, aug.draw_mix(1, gen, x.device), CLASSES)
    aug = BatchAugment(auto_augment=recipe, auto_ops=2, auto_magnitude=9)
    return lambda: aug(x, gen)


def torchvision_calls(recipe: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable]:
    import torchvision.transforms.v2 as T

    if recipe in MIX:
        mixup, cutmix = T.MixUp(alpha=0.8, num_classes=CLASSES), T.CutMix(alpha=1.0,
                                                                          num_classes=CLASSES)
        t = {"mixup": mixup, "cutmix": cutmix,
             "mixup_cutmix": T.RandomChoice([mixup, cutmix])}[recipe]
        return {"tv batch": lambda: t(x, y)}
    t = T.RandAugment(num_ops=2, magnitude=9) if recipe == "randaugment" else T.TrivialAugmentWide()
    return {"tv batch": lambda: t(x),
            "tv per image": lambda: torch.stack([t(image) for image in x])}


def kornia_call(recipe: str, x: torch.Tensor, y: torch.Tensor) -> Callable | None:
    try:
        import kornia.augmentation as K
        from kornia.augmentation import auto
    except ImportError:
        return None
    if recipe == "randaugment":
        t = auto.RandAugment(n=2, m=9)
    elif recipe == "trivialaugment":
        t = auto.TrivialAugment()
    else:
        keys = ["input", "class"]
        mix, cut = K.RandomMixUpV2(data_keys=keys), K.RandomCutMixV2(data_keys=keys)
        if recipe != "mixup_cutmix":
            t = mix if recipe == "mixup" else cut
            return lambda: t(x, y)
        gen = torch.Generator().manual_seed(0)
        return lambda: (cut if torch.rand(1, generator=gen).item() < 0.5 else mix)(x, y)
    t = t.to(x.device)
    return lambda: t(x)


def measure(recipe: str, shape_name: str, x: torch.Tensor, y: torch.Tensor,
            iters: int) -> dict:
    dev = x.device
    row = {"shape": shape_name, "recipe": recipe, "batch_size": x.shape[0],
           "cnnbench_ms": 1e3 * time_call(ours(recipe, x, y), dev, iters)}
    for name, fn in torchvision_calls(recipe, x, y).items():
        n = max(2, iters // 10) if "per image" in name else iters
        row[name.replace(" ", "_") + "_ms"] = 1e3 * time_call(fn, dev, n, warmup=1)
    fn = kornia_call(recipe, x, y)
    if fn is not None:
        try:
            row["kornia_ms"] = 1e3 * time_call(fn, dev, iters)
        except Exception as err:  # an op kornia does not offer for this shape
            row["kornia_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
    return row


def table(rows: list[dict]) -> str:
    cols = ["cnnbench_ms", "tv_batch_ms", "tv_per_image_ms", "kornia_ms"]
    lines = ["| shape | recipe | cnnbench ms | tv batch ms | tv per image ms | kornia ms |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        cells = [f"{r[c]:.2f}" if c in r else "-" for c in cols]
        lines.append(f"| {r['shape']} | {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    parser.add_argument("--out", default="bench/results/batch_recipes_cpu.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        import kornia
        kornia_version = kornia.__version__
    except ImportError:
        kornia_version = None
    import torchvision
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {name} | torch {torch.__version__} | torchvision {torchvision.__version__} | "
          f"kornia {kornia_version} | threads {torch.get_num_threads()} | bs {args.batch_size}")
    rows = []
    for shape_name, shape in SHAPES.items():
        g = torch.Generator().manual_seed(0)
        x = torch.rand(args.batch_size, *shape, generator=g).to(device)
        y = torch.randint(0, CLASSES, (args.batch_size,), generator=g).to(device)
        for recipe in RECIPES:
            rows.append(measure(recipe, shape_name, x, y, args.iters))
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(table(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": name, "torch": torch.__version__,
                               "torchvision": torchvision.__version__, "kornia": kornia_version,
                               "threads": torch.get_num_threads(),
                               "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                               "command": " ".join(sys.argv), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
