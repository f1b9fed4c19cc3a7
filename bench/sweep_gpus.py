"""A 9-job sweep with the parallel launcher on one GPU, then spread over every GPU the machine has.

    python bench/sweep_gpus.py                        # model=mlp,lenet,cnn2 x optimizer=sgd,adam,adadelta
    python bench/sweep_gpus.py --epochs 3 --jobs 4 --out bench/results/sweep_gpus.json
    source .gpu/setup.sh && python3 bench/sweep_gpus.py    # GPU machine

Each sweep is the whole command (`python -m cnnbench train -m hydra/launcher=parallel ...`,
start-up included), first with CUDA_VISIBLE_DEVICES set to the first GPU, then with all of
them, so the launcher hands each forked job one GPU in turn. Prints the wall time of each, the
GPU each job saw (from its metrics.json) and the speed-up; writes JSON.
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


def gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    except OSError:
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def run_sweep(gpus: str, args: argparse.Namespace, sweep_dir: Path) -> dict:
    command = [sys.executable, "-m", "cnnbench", "train", "-m", "hydra/launcher=parallel",
               f"hydra.launcher.n_jobs={args.jobs}", *args.sweep.split(),
               f"trainer.epochs={args.epochs}",
               "trainer.progress=false", f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": gpus}
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    return {"gpus": gpus, "command": f"CUDA_VISIBLE_DEVICES={gpus} " + " ".join(command[1:]),
            "exit_code": proc.returncode, "wall_seconds": round(wall, 2), "jobs": len(jobs),
            "completed": sum(j.get("status") == "completed" for j in jobs),
            "devices_seen": sorted({str(j.get("visible_devices")) for j in jobs}),
            "device": next((j.get("device") for j in jobs if j.get("device")), None),
            "test_acc": {f"{j.get('model')}/{j.get('optimizer')}": j.get("test/acc")
                         for j in jobs},
            "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sweep", default=" ".join(SWEEP),
                        help=f"the sweep's overrides (default: {' '.join(SWEEP)})")
    parser.add_argument("--jobs", type=int, default=4, help="jobs side by side (n_jobs)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sweep_gpus.json")
    args = parser.parse_args()
    n = gpu_count()
    if n < 2:
        print(f"this machine has {n} GPU(s): the comparison needs two or more", file=sys.stderr)
        return 2
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    root = Path("outputs") / "bench_sweep_gpus" / stamp
    results = [run_sweep(gpus, args, root / f"gpus_{gpus.replace(',', '_')}")
               for gpus in ("0", ",".join(str(i) for i in range(n)))]
    table = Table(title=f"{args.sweep}: parallel launcher, {args.jobs} jobs at once, "
                        f"{args.epochs} epochs")
    for column in ("GPUs", "wall s", "completed", "GPU each job saw", "device"):
        table.add_column(column)
    for r in results:
        table.add_row(r["gpus"], f"{r['wall_seconds']:.1f}", f"{r['completed']}/{r['jobs']}",
                      ", ".join(r["devices_seen"]), str(r["device"]))
    console = Console()
    console.print(table)
    speedup = results[0]["wall_seconds"] / results[1]["wall_seconds"]
    console.print(f"{n} GPUs vs 1: {speedup:.2f}x faster")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"created": datetime.now().isoformat(timespec="seconds"),
                                    "gpus": n, "jobs": args.jobs, "epochs": args.epochs,
                                    "sweep": args.sweep,
                                    "speedup": round(speedup, 3), "runs": results}, indent=2))
    console.print(f"wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
