"""Run the Optuna search preset and report what it found, trial by trial.

    python bench/hparams_search.py                          # hparams_search=lenet_mnist, 20 trials
    python bench/hparams_search.py hydra/launcher=parallel hydra.sweeper.n_jobs=4

Extra key=value arguments go to `cnnbench train`. Prints every trial (its parameters, best
validation accuracy, test accuracy) and the trial Optuna chose (highest validation accuracy),
and writes JSON.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    out = HERE / "results" / "hparams_search.json"
    preset = next((a for a in argv if a.startswith("hparams_search=")), "hparams_search=lenet_mnist")
    extra = [a for a in argv if not a.startswith("hparams_search=")]
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    sweep = Path("outputs") / "bench" / f"hparams_search_{stamp}"
    command = [sys.executable, "-m", "cnnbench", "train", preset, *extra,
               "trainer.progress=false", f"hydra.sweep.dir={sweep}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    trials = []
    for job in sorted(sweep.glob("*/metrics.json"), key=lambda p: int(p.parent.name.split("_")[0])):
        m = json.loads(job.read_text())
        trials.append({"trial": int(job.parent.name.split("_")[0]), "status": m.get("status"),
                       "optimizer": m.get("optimizer"), "lr": m.get("lr"),
                       "batch_size": m.get("batch_size"), "best_val_acc": m.get("best_val_acc"),
                       "test_acc": m.get("test/acc"), "device": m.get("device")})
    results_file = sweep / "optimization_results.yaml"
    optuna = yaml.safe_load(results_file.read_text()) if results_file.exists() else None
    done = [t for t in trials if t["best_val_acc"] is not None and t["test_acc"] is not None]
    chosen = max(done, key=lambda t: t["best_val_acc"]) if done else None

    table = Table(title=f"{preset}: {len(trials)} trials in {wall:.0f} s on "
                        f"{trials[0]['device'] if trials else '?'}", title_justify="left")
    for col in ("trial", "optimizer", "lr", "batch", "best val acc", "test acc", "status"):
        table.add_column(col)
    for t in trials:
        mark = " <- chosen" if t is chosen else ""
        table.add_row(str(t["trial"]), str(t["optimizer"]), f"{t['lr']:.2e}" if t["lr"] else "-",
                      str(t["batch_size"]),
                      f"{100 * t['best_val_acc']:.2f}" if t["best_val_acc"] else "-",
                      f"{100 * t['test_acc']:.2f}{mark}" if t["test_acc"] else "-",
                      str(t["status"]))
    Console().print(table)
    report = {"created": stamp, "command": " ".join(command[1:]), "exit_code": proc.returncode,
              "wall_seconds": round(wall, 1), "trials": trials, "chosen": chosen,
              "optuna": optuna, "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"chosen trial (highest validation accuracy): {chosen}")
    print(f"wrote {out}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
