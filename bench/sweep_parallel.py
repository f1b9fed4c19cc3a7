"""A 9-job sweep run one job after another, then with jobs side by side (the parallel
launcher, which forks each job from a parent that has imported torch already).

    python bench/sweep_parallel.py                    # model=mlp,lenet,cnn2 x optimizer=sgd,adam,adadelta
    python bench/sweep_parallel.py --jobs 3 --epochs 3 --out bench/results/sweep_parallel.json
    python bench/sweep_parallel.py --jobs 2,3,4,9     # one side-by-side row per number of jobs

Prints the wall time of each (the whole command, start-up included) and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWEEP = ["model=mlp,lenet,cnn2", "optimizer=sgd,adam,adadelta", "dataset=mnist"]


def run_sweep(extra: list[str], sweep_dir: Path) -> dict:
    command = [sys.executable, "-m", "cnnbench", "train", "-m", *SWEEP, *extra,
               "trainer.progress=false", f"hydra.sweep.dir={sweep_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    return {"command": " ".join(command[1:]), "exit_code": proc.returncode,
            "wall_seconds": round(wall, 2), "jobs": len(jobs),
            "completed": sum(j.get("status") == "completed" for j in jobs),
            "device": next((j.get("device") for j in jobs if j.get("device")), None),
            "test_acc": {f"{j.get('model')}/{j.get('optimizer')}": j.get("test/acc") for j in jobs},
            # a job's start: from its process (or fork) to its first training step
            "job_startup_seconds": [round(j["startup_seconds"], 2) for j in jobs
                                    if j.get("startup_seconds") is not None],
            "job_train_seconds": [round(j["train_seconds"], 2) for j in jobs
                                  if j.get("train_seconds") is not None],
            "job_phase_seconds": [j.get("phase_seconds") for j in jobs],
            "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--jobs", default=None,
                        help="jobs side by side, or a comma-separated list of such numbers, one "
                             "row each (default: the parallel launcher's own default)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sweep_parallel.json")
    args = parser.parse_args()
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = Path("outputs") / "bench" / f"sweep_parallel_{stamp}"
    common = [f"trainer.epochs={args.epochs}"]
    parallel = ["hydra/launcher=parallel"]
    load_before = os.getloadavg()
    results = {"sequential": run_sweep(common, base / "sequential")}
    for jobs in (args.jobs.split(",") if args.jobs else [None]):
        name = f"parallel, {jobs} jobs" if jobs else "parallel"
        extra = [f"hydra.launcher.n_jobs={jobs}"] if jobs else []
        results[name] = run_sweep(common + parallel + extra,
                                  base / name.replace(", ", "_").replace(" ", "_"))
    machine = {"cpus": os.cpu_count(), "load_before": [round(v, 2) for v in load_before],
               "load_after": [round(v, 2) for v in os.getloadavg()]}
    table = Table(title=f"9-job sweep, {args.epochs} epochs each, on "
                        f"{results['sequential']['device']}", title_justify="left")
    for col in ("launcher", "wall seconds", "jobs completed", "speed-up", "job start s (max)"):
        table.add_column(col)
    for name, r in results.items():
        speedup = results["sequential"]["wall_seconds"] / r["wall_seconds"]
        starts = r["job_startup_seconds"]
        start = f"{sum(starts) / len(starts):.2f} ({max(starts):.2f})" if starts else "-"
        table.add_row(name, f"{r['wall_seconds']:.1f}", f"{r['completed']}/{r['jobs']}",
                      f"{speedup:.2f}x", start)
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"created": stamp, "machine": machine, **results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
