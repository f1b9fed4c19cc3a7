"""The same seeded search with pruner none, median and hyperband: what pruning saves and costs.

    python bench/search_pruning.py                                   # 8 trials of 4 epochs each
    python bench/search_pruning.py --trials 20 --epochs 15 --train-size 0   # the preset's budget

Runs hparams_search=lenet_mnist_pruned (LeNet-5 on MNIST, cnnbench's own sweeper) once per
pruner, each in its own sweep directory and study, with the same sampler seed, and compares wall
time, trials completed and pruned, epochs trained, and the best trial's validation and test
accuracy. --train-size N uses the first N training images of MNIST (and --test-size of its test
set), written as IDX files into a scratch data folder, so that a CPU finishes in minutes; 0 uses
all of it. Prints a table and writes JSON (bench/results/search_pruning_cpu.json by default).
Extra key=value arguments go to every `cnnbench train`.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
EMBEDDED = HERE.parent / "cnnbench" / "data" / "embedded_mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def write_subset(root: Path, sizes: dict[str, int]) -> Path:
    """The first sizes[split] images (and labels) of each MNIST split, as IDX files under
    root/MNIST/raw; returns root."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in FILES.items():
        n = sizes[split]
        data = gzip.decompress((EMBEDDED / images).read_bytes())
        count = n.to_bytes(4, "big")
        (raw / images).write_bytes(gzip.compress(data[:4] + count + data[8:16]
                                                 + data[16:16 + n * 28 * 28]))
        data = gzip.decompress((EMBEDDED / labels).read_bytes())
        (raw / labels).write_bytes(gzip.compress(data[:4] + count + data[8:8 + n]))
    return root


def run_search(pruner: str, args: argparse.Namespace, data: list[str], extra: list[str],
               out_dir: Path) -> dict:
    sweep = out_dir / pruner
    command = [sys.executable, "-m", "cnnbench", "train", "hparams_search=lenet_mnist_pruned",
               f"hydra.sweeper.pruner.name={pruner}", f"hydra.sweeper.n_trials={args.trials}",
               f"hydra.sweeper.n_startup_trials={args.startup}", f"hydra.sweeper.seed={args.seed}",
               "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=1",
               f"trainer.epochs={args.epochs}", "trainer.progress=false",
               "evaluation.plots=false", *data, *extra, f"hydra.sweep.dir={sweep}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    runs = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    found_file = sweep / "optimization_results.yaml"
    found = yaml.safe_load(found_file.read_text()) if found_file.exists() else {}
    best_dir = found.get("best_run_dir")
    best = json.loads((Path(best_dir) / "metrics.json").read_text()) if best_dir else {}
    return {"pruner": pruner, "exit_code": proc.returncode, "wall_seconds": round(wall, 1),
            "completed": sum(r.get("status") == "completed" for r in runs),
            "pruned": sum(r.get("status") == "pruned" for r in runs),
            "failed": sum(r.get("status") not in ("completed", "pruned") for r in runs),
            "epochs_trained": sum(r.get("epochs_run") or 0 for r in runs),
            "best_val_acc": found.get("best_value"), "best_test_acc": best.get("test/acc"),
            "best_params": found.get("best_params"), "best_run_dir": best_dir,
            "device": best.get("device"), "command": " ".join(command[3:]),
            "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}


def pct(value: float | None) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "-"


def main(argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--startup", type=int, default=4, help="TPE's random trials")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=6000, help="0: all of MNIST")
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--pruners", default="none,median,hyperband")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "search_pruning_cpu.json")
    args, extra = parser.parse_known_args(argv)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out_dir = Path("outputs") / "bench" / f"search_pruning_{stamp}"
    data = []
    if args.train_size:
        root = write_subset(out_dir / "data", {"train": args.train_size, "t10k": args.test_size})
        data = [f"dataset.root={root.resolve()}", "dataset.download=false"]
    rows = [run_search(p, args, data, extra, out_dir) for p in args.pruners.split(",")]
    table = Table(title=f"LeNet-5 on MNIST ({args.train_size or 'all'} training images): "
                        f"{args.trials} trials of {args.epochs} epochs, TPE seed {args.seed}",
                  title_justify="left")
    for col in ("pruner", "wall s", "completed", "pruned", "epochs trained", "best val acc",
                "its test acc"):
        table.add_column(col, justify="left" if col == "pruner" else "right")
    for r in rows:
        table.add_row(r["pruner"], f"{r['wall_seconds']:.0f}", str(r["completed"]),
                      str(r["pruned"]), str(r["epochs_trained"]), pct(r["best_val_acc"]),
                      pct(r["best_test_acc"]))
    Console().print(table)
    report = {"created": stamp, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
              "load_average_at_end": os.getloadavg(), "trials": args.trials,
              "epochs": args.epochs, "train_size": args.train_size or "all",
              "test_size": args.test_size if args.train_size else "all", "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return max(r["exit_code"] for r in rows)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
