"""Speed runs: an experiment preset over several seeds; test accuracy and training time, mean/min/max.

    python bench/speedrun.py mnist_speedrun --seeds 5
    python bench/speedrun.py fashion_speedrun --seeds 3
    python bench/speedrun.py fashion_speedrun --seeds 2 --variant "trainer.epochs=16" --variant "optimizer.lr=0.3"

Each run is `cnnbench train experiment=<name> trainer.seed=<seed> <overrides>`: the same config
composition and the same TrainingRun as the command line, run in this process (torch.compile's
caches are reset between runs, so each compiles as a new process would, helped by the on-disk
cache; compile and start-up time are reported apart from training time);
--cli runs each as a separate `python -m cnnbench train` process instead.
Training time is metrics.json's train_seconds: the fit loop with the data already on the device,
after compilation, before the test evaluation. Prints a table, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import io
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_inprocess(overrides: list[str], run_dir: Path) -> dict:
    from omegaconf import open_dict
    from rich.console import Console

    from cnnbench.run.lifecycle import TrainingRun
    from cnnbench.settings.config_files import (
        compose_config,  # installed package or source checkout alike
    )

    cfg = compose_config(overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    console = Console(file=io.StringIO())
    import torch

    # each run compiles afresh, as its own process would: compiled code of earlier runs would
    # otherwise pile up to torch._dynamo's recompile limit and fall back to eager
    torch._dynamo.reset()
    return TrainingRun(cfg, run_dir, choices, console).execute()


def run_cli(overrides: list[str], run_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "cnnbench", "train", *overrides, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    metrics = run_dir / "metrics.json"
    if proc.returncode != 0 or not metrics.exists():
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(metrics.read_text())


def epoch_seconds(run_dir: Path) -> list[float]:
    """Each epoch's training seconds, from the run's history.csv."""
    import csv

    try:
        with open(run_dir / "history.csv") as f:
            return [round(float(row["epoch_seconds"]), 4) for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return []


def summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", help="a preset of conf/experiment/, e.g. mnist_speedrun")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--variant", action="append", default=None,
                        help="a set of overrides (space-separated), one row each; repeatable")
    parser.add_argument("--cli", action="store_true", help="one `python -m cnnbench` per run")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/<exp>.json)")
    args = parser.parse_args()
    variants = args.variant or [""]
    runner = run_cli if args.cli else run_inprocess
    out_root = Path(tempfile.mkdtemp(prefix=f"speedrun_{args.experiment}_"))
    device = None
    results = []
    for variant in variants:
        extra = shlex.split(variant)
        runs = []
        for seed in range(args.seeds):
            overrides = [f"experiment={args.experiment}", f"trainer.seed={seed}", *args.set, *extra]
            t0 = time.perf_counter()
            m = runner(overrides, out_root / f"{len(results)}_{seed}")
            device = m.get("device")
            run = {"seed": seed, "test_acc": m["test/acc"], "test_acc_tta": m.get("test/acc_tta"),
                   "train_seconds": m["train_seconds"],
                   "compile_seconds": m.get("compile_seconds"), "startup_seconds": m.get("startup_seconds"),
                   "epochs": m.get("epochs_run"), "status": m["status"],
                   "cuda_graph": m.get("cuda_graph"),
                   "epoch_seconds": epoch_seconds(out_root / f"{len(results)}_{seed}"),
                   "wall_seconds": time.perf_counter() - t0}
            runs.append(run)
            tta = f" (flip TTA {100 * run['test_acc_tta']:.2f}%)" if run["test_acc_tta"] else ""
            print(f"  [{variant or 'preset'}] seed {seed}: test acc {100 * run['test_acc']:.2f}%{tta}  "
                  f"train {run['train_seconds']:.3f} s  compile {run['compile_seconds'] or 0:.1f} s  "
                  f"(wall {run['wall_seconds']:.1f} s, cuda_graph {run['cuda_graph']})", flush=True)
        results.append({"overrides": [*args.set, *extra], "runs": runs,
                        "test_acc": summary([r["test_acc"] for r in runs]),
                        "train_seconds": summary([r["train_seconds"] for r in runs]),
                        "compile_seconds": summary([r["compile_seconds"] or 0.0 for r in runs])})
        if all(r["test_acc_tta"] for r in runs):
            results[-1]["test_acc_tta"] = summary([r["test_acc_tta"] for r in runs])
    print()
    print(f"experiment={args.experiment} on {device}, {args.seeds} seeds (0..{args.seeds - 1})")
    print("| overrides | test acc mean | min | max | flip-TTA acc mean (min-max) | train s mean | min | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        a, t, tta = r["test_acc"], r["train_seconds"], r.get("test_acc_tta")
        tta_s = (f"{100 * tta['mean']:.2f}% ({100 * tta['min']:.2f}-{100 * tta['max']:.2f})"
                 if tta else "-")
        print(f"| {' '.join(r['overrides']) or '(preset)'} | {100 * a['mean']:.2f}% | {100 * a['min']:.2f}% | "
              f"{100 * a['max']:.2f}% | {tta_s} | {t['mean']:.3f} | {t['min']:.3f} | {t['max']:.3f} |")
    out = Path(args.out or REPO / "bench" / "results" / f"{args.experiment}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"experiment": args.experiment, "device": device, "seeds": args.seeds,
                               "mode": "cli" if args.cli else "in-process",
                               "command": " ".join(sys.argv), "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
