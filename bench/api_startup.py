"""What a call of cnnbench from Python adds above its training, against the command line.

    python bench/api_startup.py                      # CPU, 3 repeats, bench/results/api_startup_cpu.json
    python bench/api_startup.py --device cuda        # on a GPU: bench/results/api_startup_cuda.json
    python bench/api_startup.py --device cuda --task mnist_mlp   # the everyday MLP task, end to end

The same run (by default a tiny one: MLP on the synthetic dataset, one epoch; `--task mnist_mlp`:
the MLP 64-128-64 on MNIST, Adam 1e-3, batch 128, 10 epochs) three ways, each in a fresh working
directory:

  cli          `python -m cnnbench train ...`: a new process, timed from the command to its exit
  api, 1st     `cnnbench.train(...)` in a new Python process: its first call (pays import torch
               and the rest of the start-up), timed around the call (`import cnnbench` apart)
  api, 2nd     the second call of the same run in that process

For each: the wall time, the run's training (phase_seconds.training in metrics.json: the epochs
with their validation and checkpoints) and what the call adds above it (wall - training). The
median of --repeat runs, every value in the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["dataset=synthetic", "model=mlp", "dataset.train_size=512", "dataset.test_size=128",
        "trainer.epochs=1", "trainer.batch_size=64"]
MNIST_MLP = ["dataset=mnist", "model=mlp", "model.hidden=[64,128,64]", "optimizer=adam",
             "optimizer.lr=0.001", "trainer.batch_size=128", "trainer.epochs=10"]
TASKS = {"tiny": TINY, "mnist_mlp": MNIST_MLP}

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import cnnbench
imported = time.perf_counter() - t0
args = json.loads(sys.argv[1])
out = {"import_s": imported, "calls": []}
for i in range(2):
    start = time.perf_counter()
    run = cnnbench.train(*args, hydra={"run": {"dir": f"api{i}"}})
    out["calls"].append({"wall_s": time.perf_counter() - start,
                         "training_s": run.metrics["phase_seconds"]["training"],
                         "status": run.status})
print("RESULT " + json.dumps(out))
"""


def run_cli(args: list[str], cwd: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnbench", "train", *args, "hydra.run.dir=cli"],
                   cwd=cwd, check=True, capture_output=True, env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - start
    metrics = json.loads((cwd / "cli" / "metrics.json").read_text())
    return {"wall_s": wall, "training_s": metrics["phase_seconds"]["training"],
            "status": metrics["status"]}


def run_api(args: list[str], cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], cwd=cwd, check=True,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def median_row(name: str, samples: list[dict]) -> dict:
    walls = [s["wall_s"] for s in samples]
    trains = [s["training_s"] for s in samples]
    adds = [w - t for w, t in zip(walls, trains)]
    return {"row": name, "wall_s": statistics.median(walls),
            "training_s": statistics.median(trains), "added_s": statistics.median(adds),
            "samples": samples, "statuses": sorted({s["status"] for s in samples})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--task", default="tiny", choices=sorted(TASKS))
    parser.add_argument("--out", type=Path, default=None)
    ns = parser.parse_args()
    args = [*TASKS[ns.task], f"trainer.device={ns.device}"]
    cli, first, second, imports = [], [], [], []
    for _ in range(ns.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cli.append(run_cli(args, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            result = run_api(args, Path(tmp))
            imports.append(result["import_s"])
            first.append(result["calls"][0])
            second.append(result["calls"][1])
    rows = [median_row("cli (new process)", cli), median_row("api, 1st call", first),
            median_row("api, 2nd call", second)]
    print(f"cnnbench from Python vs the command line, {ns.device}, median of {ns.repeat} "
          f"({' '.join(args)}); import cnnbench: {1000 * statistics.median(imports):.1f} ms")
    print(f"{'':<20}{'wall s':>9}{'training s':>12}{'added s':>9}")
    for row in rows:
        print(f"{row['row']:<20}{row['wall_s']:>9.2f}{row['training_s']:>12.2f}"
              f"{row['added_s']:>9.2f}")
    suffix = "" if ns.task == "tiny" else f"_{ns.task}"
    out = ns.out or REPO / "bench" / "results" / f"api_startup_{ns.device}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": ns.device, "task": ns.task, "args": args, "repeat": ns.repeat,
                               "machine": platform.platform(), "cpus": os.cpu_count(),
                               "import_cnnbench_s": imports, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
