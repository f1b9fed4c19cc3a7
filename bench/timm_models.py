"""timm's models against cnnbench's own, each trained by the everyday command on CIFAR-shaped data.

    python bench/timm_models.py                              # every row, 3 epochs each
    python bench/timm_models.py --rows own_resnet18,timm_resnet18 --epochs 2 --out results.json
    source .gpu/setup.sh && python3 bench/timm_models.py     # GPU machine

CIFAR-10 is not on these machines, so the script writes a stand-in in the real format (the
python pickles: 50,000 + 10,000 random 3x32x32 uint8 images, random labels) and every row is the
whole command a user types, `python -m cnnbench train model=... dataset=cifar10
dataset.root=<stand-in>`, with the defaults: data held on the device, the training step captured
as a CUDA graph, bf16 autocast and channels_last on a GPU. Accuracy on random labels means
nothing, so only speed is reported: the median images/s of the epochs after the first (from
history.csv), the run's CUDA-graph status, parameters and the command's wall time. Prints a
table and writes JSON.

Rows:
  own_resnet18        model=resnet18: cnnbench's CIFAR ResNet-18 (3x3 stem, no max-pool)
  timm_resnet18       model=timm model.name=resnet18: timm's ImageNet ResNet-18 (7x7 stride-2
                      stem and max-pool: a 32x32 image is 8x8 after the stem, ~1/16 the FLOPs)
  timm_resnet18_128   the same at dataset.image_size=128, resized on the device: after the stem
                      the maps are 32x32 as in cnnbench's net, so the FLOPs are about the same
  timm_convnext_atto  model=timm model.name=convnext_atto
  timm_vit_tiny_224   model=timm model.name=vit_tiny_patch16_224 dataset.image_size=224
  timm_pretrained     timm_resnet18 from a weights file (model.pretrained=<file>.safetensors
                      written here from timm's random start): the loading path on this device
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROWS = {
    "own_resnet18": ["model=resnet18"],
    "timm_resnet18": ["model=timm", "model.name=resnet18"],
    "timm_resnet18_128": ["model=timm", "model.name=resnet18", "dataset.image_size=128"],
    "timm_convnext_atto": ["model=timm", "model.name=convnext_atto"],
    "timm_vit_tiny_224": ["model=timm", "model.name=vit_tiny_patch16_224",
                          "dataset.image_size=224"],
    "timm_pretrained": ["model=timm", "model.name=resnet18", "model.pretrained={weights}"],
}


def write_cifar10(root: Path, train: int = 50_000, test: int = 10_000, seed: int = 0) -> None:
    """A CIFAR-10 stand-in in the layout and format of the real python version."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    sizes = [train // 5] * 5 + [test]
    for name, n in zip(names, sizes):
        entry = {"data": rng.integers(0, 256, (n, 3072), np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f, protocol=2)


def write_weights(path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    save_file(timm.create_model("resnet18").state_dict(), str(path))


def run_row(name: str, args: argparse.Namespace, work: Path) -> dict:
    run_dir = work / name
    overrides = [o.format(weights=work / "resnet18.safetensors") for o in ROWS[name]]
    command = [sys.executable, "-m", "cnnbench", "train", *overrides, "dataset=cifar10",
               f"dataset.root={work / 'data'}", "dataset.download=false",
               f"trainer.epochs={args.epochs}", "trainer.progress=false",
               "evaluation.plots=false", "evaluation.shifts=[]", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    row = {"row": name, "command": " ".join(command[1:]), "returncode": proc.returncode,
           "wall_s": round(wall, 1)}
    if proc.returncode != 0:
        row["error"] = (proc.stdout + proc.stderr)[-1500:]
        return row
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = list(csv.DictReader(open(run_dir / "history.csv")))
    rates = [float(e["images_per_s"]) for e in epochs[1:]] or [metrics["images_per_s"]]
    row.update(images_per_s=round(statistics.median(rates)), params=metrics["params"],
               cuda_graph=metrics.get("cuda_graph"), amp=metrics.get("amp"),
               device=metrics.get("device"), data_path=metrics.get("data_path"),
               startup_s=round(metrics.get("startup_seconds") or 0, 1),
               compile_s=round(metrics.get("compile_seconds") or 0, 1),
               pretrained=(metrics.get("pretrained") or {}).get("sha256"))
    return row


def table(rows: list[dict]) -> str:
    head = f"{'row':<20} {'params':>11} {'img/s':>9} {'graph':<10} {'wall s':>7} {'start-up s':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["returncode"] != 0:
            lines.append(f"{r['row']:<20} failed: {r['error'].strip().splitlines()[-1][:80]}")
            continue
        lines.append(f"{r['row']:<20} {r['params']:>11,} {r['images_per_s']:>9,} "
                     f"{str(r['cuda_graph'])[:10]:<10} {r['wall_s']:>7} {r['startup_s']:>10}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=50_000, help="(a quick check: 500)")
    parser.add_argument("--work", default="outputs/bench/timm_models")
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    write_cifar10(work / "data", train=args.train_size, test=max(100, args.train_size // 5))
    names = args.rows.split(",")
    if "timm_pretrained" in names:
        write_weights(work / "resnet18.safetensors")
    rows = []
    for name in names:
        rows.append(run_row(name, args, work))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    result = {"device": device, "torch": torch.__version__, "epochs": args.epochs,
              "command": " ".join([sys.executable, *sys.argv]), "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
