"""Data-parallel scaling: the same run on 1 GPU and on N GPUs (torchrun), images/s and accuracy.

    python bench/ddp_scaling.py                 # vgg on CIFAR-shaped synthetic data, 1 vs 2 GPUs
    python bench/ddp_scaling.py --gpus 2 model=lenet dataset=mnist

The global batch (trainer.batch_size) is the same in both, so accuracy should match within
noise. images/s is the median over epochs after the first (warm-up). Prints a table, writes JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ["model=vgg", "dataset=synthetic", "dataset.channels=3", "dataset.image_size=32",
           "dataset.train_size=50000", "dataset.test_size=10000", "trainer.batch_size=512",
           "trainer.epochs=4", "trainer.val_split=0", "evaluation.plots=false"]


def run(nproc: int, overrides: list[str], run_dir: Path) -> dict:
    train = ["-m", "cnnbench", "train", *overrides, "trainer.progress=false",
             f"hydra.run.dir={run_dir}"]
    cmd = ([sys.executable, *train] if nproc == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", *train])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    steady = [float(r["images_per_s"]) for r in rows[1:]] or [float(rows[0]["images_per_s"])]
    return {"gpus": nproc, "exit_code": proc.returncode, "command": " ".join(cmd[1:]),
            "images_per_s": statistics.median(steady), "test_acc": metrics.get("test/acc"),
            "test_loss": metrics.get("test/loss"), "device": metrics.get("device"),
            "world_size": metrics.get("world_size"),
            "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ddp_scaling.json")
    args, overrides = parser.parse_known_args()
    overrides = overrides or DEFAULT
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = Path("outputs") / "bench" / f"ddp_{stamp}"
    results = [run(n, overrides, base / f"gpus{n}") for n in (1, args.gpus)]
    table = Table(title=f"DDP scaling on {results[0]['device']}: {' '.join(overrides)}",
                  title_justify="left")
    for col in ("GPUs", "images/s", "speed-up", "test acc", "test loss", "exit"):
        table.add_column(col)
    for r in results:
        table.add_row(str(r["gpus"]), f"{r['images_per_s']:,.0f}",
                      f"{r['images_per_s'] / results[0]['images_per_s']:.2f}x",
                      f"{100 * r['test_acc']:.2f}", f"{r['test_loss']:.4f}", str(r["exit_code"]))
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"created": stamp, "overrides": overrides,
                                    "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
