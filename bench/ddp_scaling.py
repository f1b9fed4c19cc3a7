"""Data-parallel scaling: the same run on 1 GPU and on N GPUs (torchrun), images/s and accuracy.

    python bench/ddp_scaling.py                 # vgg on CIFAR-shaped synthetic data, 1 vs 2 GPUs
    python bench/ddp_scaling.py --gpus 2 model=lenet dataset=mnist
    python bench/ddp_scaling.py --gpus 2 --seeds 3 model=lenet dataset=mnist trainer.epochs=5 trainer.batch_size=256

The global batch (trainer.batch_size) is the same in both, so accuracy should match within
noise. Every GPU count runs seeds 0..N-1 (`--seeds N`, `trainer.seed=<s>` appended); per GPU
count the table gives the median images/s over the runs (each run's images/s is the median over
its epochs after the first, the warm-up), the mean/min/max test accuracy over the seeds and their
seed-to-seed standard deviation, and the difference of mean accuracies against 1 GPU: a
difference within about twice its standard error (from the seed-to-seed spread) is noise. Works
from a checkout without installation (the runs are `python -m cnnbench` with the checkout on
PYTHONPATH). Prints a table, writes JSON (every run, and the summary).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT = ["model=vgg", "dataset=synthetic", "dataset.channels=3", "dataset.image_size=32",
           "dataset.train_size=50000", "dataset.test_size=10000", "trainer.batch_size=512",
           "trainer.epochs=4", "trainer.val_split=0", "evaluation.plots=false"]


def run(nproc: int, seed: int, overrides: list[str], run_dir: Path) -> dict:
    train = ["-m", "cnnbench", "train", *overrides, f"trainer.seed={seed}",
             "trainer.progress=false", f"hydra.run.dir={run_dir}"]
    cmd = ([sys.executable, *train] if nproc == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", *train])
    # the checkout first on the path: `python bench/ddp_scaling.py` needs no installation
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})
    metrics_file, history_file = run_dir / "metrics.json", run_dir / "history.csv"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    rows = list(csv.DictReader(open(history_file))) if history_file.exists() else []
    steady = [float(r["images_per_s"]) for r in rows[1:]] or [float(r["images_per_s"])
                                                              for r in rows[:1]]
    return {"gpus": nproc, "seed": seed, "exit_code": proc.returncode,
            "status": metrics.get("status"), "command": " ".join(cmd[1:]),
            "images_per_s": statistics.median(steady) if steady else None,
            "test_acc": metrics.get("test/acc"), "test_loss": metrics.get("test/loss"),
            "device": metrics.get("device"), "world_size": metrics.get("world_size"),
            "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}


def summarize(rows: list[dict]) -> dict:
    """One GPU count over its seeds (runs without a result left out, and counted)."""
    done = [r for r in rows if r["exit_code"] == 0 and r["test_acc"] is not None]
    accs = [r["test_acc"] for r in done]
    speeds = [r["images_per_s"] for r in done if r["images_per_s"] is not None]
    losses = [r["test_loss"] for r in done if r["test_loss"] is not None]
    return {"gpus": rows[0]["gpus"], "runs": len(rows), "failed": len(rows) - len(done),
            "images_per_s_median": statistics.median(speeds) if speeds else None,
            "test_acc_mean": statistics.fmean(accs) if accs else None,
            "test_acc_min": min(accs, default=None), "test_acc_max": max(accs, default=None),
            "test_acc_stdev": statistics.stdev(accs) if len(accs) > 1 else None,
            "test_loss_mean": statistics.fmean(losses) if losses else None}


def compare(one: dict, many: dict) -> dict:
    """N GPUs against 1 GPU: difference of mean accuracies and its standard error (seeds)."""
    diff = (many["test_acc_mean"] - one["test_acc_mean"]
            if None not in (many["test_acc_mean"], one["test_acc_mean"]) else None)
    n1, nn = one["runs"] - one["failed"], many["runs"] - many["failed"]
    se = (math.sqrt(one["test_acc_stdev"] ** 2 / n1 + many["test_acc_stdev"] ** 2 / nn)
          if None not in (one["test_acc_stdev"], many["test_acc_stdev"]) else None)
    within = None if diff is None or se is None else abs(diff) <= 2 * se
    return {"gpus": many["gpus"], "test_acc_mean_diff": diff,
            "test_acc_stdev_1gpu": one["test_acc_stdev"],
            "test_acc_stdev_ngpu": many["test_acc_stdev"], "diff_standard_error": se,
            "within_noise": within,
            "speedup": (many["images_per_s_median"] / one["images_per_s_median"]
                        if many["images_per_s_median"] and one["images_per_s_median"] else None)}


def pts(value: float | None, signed: bool = False) -> str:
    """An accuracy (fraction) in percentage points, or '-'."""
    return "-" if value is None else f"{100 * value:{'+' if signed else ''}.2f}"


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1 on every GPU count")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ddp_scaling.json")
    args, overrides = parser.parse_known_args()
    if args.seeds < 1 or args.gpus < 2:
        parser.error("--seeds must be at least 1 and --gpus at least 2")
    if any(o.lstrip("+~").startswith("trainer.seed=") for o in overrides):
        parser.error("the seeds come from --seeds (0..N-1): leave trainer.seed= out")
    overrides = overrides or DEFAULT
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = Path("outputs") / "bench" / f"ddp_{stamp}"
    counts = (1, args.gpus)
    results = []
    for seed in range(args.seeds):  # seeds outside: a drift in the machine hits both counts
        for n in counts:
            results.append(run(n, seed, overrides, base / f"gpus{n}_seed{seed}"))
            r = results[-1]
            print(f"gpus={n} seed={seed}: exit {r['exit_code']}, test acc {pts(r['test_acc'])}, "
                  f"{r['images_per_s'] or 0:,.0f} images/s", flush=True)
    summary = [summarize([r for r in results if r["gpus"] == n]) for n in counts]
    comparison = compare(*summary)

    device = next((r["device"] for r in results if r["device"]), "?")
    table = Table(title=f"DDP scaling on {device}, seeds 0..{args.seeds - 1}: "
                        f"{' '.join(overrides)}", title_justify="left")
    for col in ("GPUs", "runs", "images/s (median)", "speed-up", "test acc mean",
                "min", "max", "stdev (seeds)", "diff vs 1 GPU", "test loss mean", "failed"):
        table.add_column(col, justify="right")
    for s in summary:
        speed = s["images_per_s_median"]
        base_speed = summary[0]["images_per_s_median"]
        table.add_row(str(s["gpus"]), str(s["runs"]), "-" if speed is None else f"{speed:,.0f}",
                      f"{speed / base_speed:.2f}x" if speed and base_speed else "-",
                      pts(s["test_acc_mean"]), pts(s["test_acc_min"]), pts(s["test_acc_max"]),
                      pts(s["test_acc_stdev"]),
                      pts(comparison["test_acc_mean_diff"], signed=True) if s is summary[1]
                      else "", "-" if s["test_loss_mean"] is None else f"{s['test_loss_mean']:.4f}",
                      str(s["failed"]))
    console = Console(width=max(Console().width, 150))  # the table whole, also in a log
    console.print(table)
    c = comparison
    if c["test_acc_mean_diff"] is None:
        verdict = "no accuracy to compare (failed runs: see stderr_tail in the JSON)"
    elif c["diff_standard_error"] is None:
        verdict = "one seed: no seed-to-seed spread to judge it against (use --seeds 3 or more)"
    else:
        verdict = (f"seed-to-seed stdev {pts(c['test_acc_stdev_1gpu'])} (1 GPU) and "
                   f"{pts(c['test_acc_stdev_ngpu'])} ({args.gpus} GPUs), standard error of the "
                   f"difference {pts(c['diff_standard_error'])}: "
                   + ("within noise (|diff| <= 2 x SE)" if c["within_noise"]
                      else "larger than the seed noise (|diff| > 2 x SE)"))
    console.print(f"test accuracy, {args.gpus} GPUs - 1 GPU: "
                  f"{pts(c['test_acc_mean_diff'], signed=True)} points; {verdict}",
                  highlight=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"created": stamp, "overrides": overrides,
                                    "gpus": args.gpus, "seeds": list(range(args.seeds)),
                                    "results": results, "summary": summary,
                                    "comparison": comparison}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
