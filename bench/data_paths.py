"""The two data paths on one device: data held on the device vs streamed through a DataLoader,
and `dataset=imagefolder` from decoding to training (first run decodes and caches, later runs
read the cache).

    python bench/data_paths.py                        # writes a folder of JPEGs under a temp dir
    python bench/data_paths.py --folder ~/photos --image-size 64 --model resnet18

Each row is a `cnnbench train` run (same config composition and TrainingRun as the command line,
in this process) with trainer.data_on_device=true or false; images/s is the mean of the epochs
after the first (history.csv), `data` is the path the run took (metrics.json's data_path).
Augmentation runs on the device on both paths. Prints a table, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUIET = ["trainer.progress=false", "trainer.val_split=0", "trainer.checkpoint.save_best=false",
         "trainer.checkpoint.save_last=false", "trainer.early_stopping.restore_best=false",
         "evaluation.plots=false", "evaluation.table=false", "evaluation.shifts=[]"]


def write_folder(root: Path, images: int, classes: int, seed: int = 0) -> float:
    """`images` JPEGs of 40-72 px in `classes` subfolders; each class has its own colour and
    stripe direction, so a model can learn them. Returns the seconds it took."""
    import numpy as np
    from PIL import Image

    start = time.perf_counter()
    rng = random.Random(seed)
    jobs = [(i, i % classes, rng.randint(40, 72), rng.randint(40, 72), rng.random())
            for i in range(images)]

    def one(job):
        i, c, h, w, phase = job
        yy, xx = np.mgrid[0:h, 0:w]
        angle = np.pi * c / classes
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / 3.0 + 6.28 * phase)
        base = np.array([(37 * c) % 256, (91 * c) % 256, (173 * c) % 256], dtype=np.float32)
        pixels = base + 60.0 * stripes[..., None] + np.random.default_rng(i).normal(0, 20, (h, w, 3))
        folder = root / f"class_{c:02d}"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg",
                                                                     quality=90)

    for c in range(classes):
        (root / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor() as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - start


def cache_timings(folder: Path, image_size: int) -> dict:
    """Seconds to load the folder with no cache (decode, resize, write the cache) and again."""
    from cnnbench.data import load_dataset

    for stale in folder.glob(".cnnbench_cache_*"):
        stale.unlink()
    options = dict(path=str(folder), image_size=image_size, channels="auto", test_split=0.2,
                   split_seed=0, root=None, download=False)
    t0 = time.perf_counter()
    data = load_dataset("imagefolder", **options)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_dataset("imagefolder", **options)
    second = time.perf_counter() - t0
    return {"images": len(data.train) + len(data.test), "train": len(data.train),
            "decode_and_cache_s": first, "cached_load_s": second,
            "cache_bytes": sum(p.stat().st_size for p in folder.glob(".cnnbench_cache_*"))}


def train(overrides: list[str], run_dir: Path) -> dict:
    import torch
    from omegaconf import open_dict
    from rich.console import Console

    from cnnbench.run.lifecycle import TrainingRun
    from cnnbench.settings.config_files import compose_config

    cfg = compose_config(overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    torch._dynamo.reset()
    t0 = time.perf_counter()
    m = TrainingRun(cfg, run_dir, choices, Console(file=io.StringIO())).execute()
    with open(run_dir / "history.csv") as f:
        rates = [float(row["images_per_s"]) for row in csv.DictReader(f)]
    steady = rates[1:] or rates
    return {"overrides": overrides, "data": m.get("data_path"), "device": m.get("device"),
            "images_per_s": statistics.fmean(steady), "images_per_s_min": min(steady),
            "images_per_s_max": max(steady), "first_epoch_images_per_s": rates[0],
            "test_acc": m["test/acc"], "compile_seconds": m.get("compile_seconds"),
            "wall_seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", default=None, help="an image folder (default: write one)")
    parser.add_argument("--images", type=int, default=20000, help="images to write (no --folder)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--model", default="vgg", help="the model trained on the folder")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 8],
                        help="DataLoader workers of the streaming rows")
    parser.add_argument("--no-mnist", action="store_true", help="skip the lenet/MNIST rows")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "data_paths.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="data_paths_"))
    info: dict = {"command": " ".join(sys.argv)}
    if args.folder:
        folder = Path(args.folder).expanduser()
    else:
        folder = work / "images"
        info["write_seconds"] = write_folder(folder, args.images, classes=10)
    info["folder"] = cache_timings(folder, args.image_size)
    print(f"imagefolder: {info['folder']['images']} images -> {args.image_size}px: decode + cache "
          f"{info['folder']['decode_and_cache_s']:.2f} s, cached load "
          f"{info['folder']['cached_load_s']:.3f} s ({info['folder']['cache_bytes'] / 1e6:.1f} MB)",
          flush=True)

    base = [f"trainer.epochs={args.epochs}", *QUIET, *args.set]
    setups = []
    if not args.no_mnist:
        mnist = ["model=lenet", "dataset=mnist", "trainer.batch_size=512", *base]
        setups.append(("lenet/MNIST, batch 512", mnist))
    folder_run = [f"model={args.model}", "dataset=imagefolder", f"dataset.path={folder}",
                  f"dataset.image_size={args.image_size}", "augmentation=flip_crop",
                  "trainer.batch_size=512", "trainer.compile=true", *base]
    setups.append((f"{args.model}/imagefolder {args.image_size}px, batch 512, flip_crop",
                   folder_run))
    rows = []
    for label, overrides in setups:
        variants = [("device", ["trainer.data_on_device=true"])]
        variants += [(f"streaming, {w} workers", ["trainer.data_on_device=false",
                                                  f"trainer.num_workers={w}"])
                     for w in args.workers]
        for name, extra in variants:
            row = train([*overrides, *extra], work / f"run{len(rows)}")
            row.update(setup=label, path=name)
            rows.append(row)
            print(f"  {label} | {name}: {row['images_per_s']:,.0f} images/s "
                  f"(first epoch {row['first_epoch_images_per_s']:,.0f}; data={row['data']}; "
                  f"test acc {100 * row['test_acc']:.2f}%)", flush=True)

    device = rows[0]["device"] if rows else None
    print()
    print(f"# {device} | {args.epochs} epochs, images/s: mean (min-max) of epochs 2..{args.epochs}")
    print("| setup | data path | images/s | min | max | vs device | test acc |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ref = next(r for r in rows if r["setup"] == row["setup"] and r["path"] == "device")
        print(f"| {row['setup']} | {row['path']} | {row['images_per_s']:,.0f} | "
              f"{row['images_per_s_min']:,.0f} | {row['images_per_s_max']:,.0f} | "
              f"{row['images_per_s'] / ref['images_per_s']:.2f}x | {100 * row['test_acc']:.2f}% |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**info, "device": device, "rows": rows}, indent=2))
    print(f"wrote {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
