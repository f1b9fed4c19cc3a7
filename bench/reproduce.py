"""Reproduce the published numbers of the MNIST / Fashion-MNIST experiment presets.

Runs every selected preset with several training seeds (each run is `python -m cnnbench train
experiment=<preset> trainer.seed=<k>` in its own process), reads `test/acc` from each run's
metrics.json, and prints preset, the course material it comes from, its published test accuracy
(the preset's `published:` block), ours (mean ± the 95% confidence interval over the seeds, std,
min, max), the verdict (`matches`: the published value lies in our interval, `above`: our
interval lies above it, `below`) and the device; the same goes to a JSON file. The statistics
and the verdict are `cnnbench compare`'s (cnnbench/commands/compare/stats.py).

    python bench/reproduce.py                          # all MNIST/Fashion presets, seeds 0 1 2
    python bench/reproduce.py --presets lenet_mnist mlp_mnist --seeds 0 1 2 3 4
    python bench/reproduce.py --epochs-scale 0.5 trainer.amp=off   # extra args go to every run
    python bench/reproduce.py --quick                  # CPU smoke run: see --help

CIFAR presets are not run by default (their files cannot be downloaded here); name them with
--presets on a machine that has the data.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "reproduce.json"
QUICK_OUT = HERE / "results" / "reproduce_quick.json"  # a smoke run never overwrites real results
MNIST_LIKE = ("mnist", "fashion_mnist")
QUICK_DATA = ["dataset.train_size=512", "dataset.test_size=256"]


@dataclass
class Preset:
    name: str
    dataset: str
    epochs: int
    seed_notebook: str
    reported_test_acc: float | None
    shape: tuple[int, int, int, int]  # channels, height, width, classes


@dataclass
class Result:
    preset: str
    seed_notebook: str
    reported_test_acc: float | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    n: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    gap_points: float | None = None  # ours (mean) minus the published, in percentage points
    ci95_low: float | None = None
    ci95_high: float | None = None
    verdict: str | None = None       # matches | above | below (None: no interval or no number)
    device: str | None = None


def preset_names() -> list[str]:
    from cnnbench.settings.config_files import group_options

    return group_options("experiment")


def load_preset(name: str) -> Preset:
    """What the run needs to know about a preset, from its composed config."""
    from cnnbench.data.shapes import input_shape
    from cnnbench.settings.config_files import compose_config

    cfg = compose_config([f"experiment={name}"])
    shape = input_shape(cfg.dataset)
    ref = cfg.get("reference") or {}
    published = cfg.get("published") or {}
    return Preset(name, cfg.dataset.name, int(cfg.trainer.epochs), str(ref.get("seed", "?")),
                  published.get("value"),
                  (shape.channels, shape.height, shape.width, shape.num_classes))


def default_presets() -> list[str]:
    """The seed reproductions (presets with a `reference`) on MNIST-like data; speed runs
    (bench/speedrun.py) are left out."""
    presets = [load_preset(n) for n in preset_names()]
    return [p.name for p in presets if p.dataset in MNIST_LIKE and p.seed_notebook != "?"]


def scaled_epochs(epochs: int, scale: float) -> int:
    return max(1, round(epochs * scale))


def train_command(preset: Preset, seed: int, run_dir: Path, epochs_scale: float, quick: bool,
                  extra: list[str]) -> list[str]:
    """The `cnnbench train` command line of one run."""
    args = [sys.executable, "-m", "cnnbench", "train", f"experiment={preset.name}",
            f"trainer.seed={seed}", "trainer.progress=false", f"hydra.run.dir={run_dir}"]
    if quick:
        c, h, w, classes = preset.shape
        args += ["trainer.epochs=1", "trainer.device=cpu", "dataset=synthetic",
                 f"dataset.channels={c}", f"dataset.image_size={h}",
                 f"dataset.num_classes={classes}", *QUICK_DATA]
    else:
        args.append(f"trainer.epochs={scaled_epochs(preset.epochs, epochs_scale)}")
    return args + extra


def read_run(run_dir: Path, seed: int, returncode: int) -> dict[str, Any]:
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return {"seed": seed, "status": metrics.get("status", f"no metrics.json (exit {returncode})"),
            "test_acc": metrics.get("test/acc"), "epochs_run": metrics.get("epochs_run"),
            "train_seconds": metrics.get("train_seconds"), "device": metrics.get("device"),
            "amp": metrics.get("amp"), "run_dir": str(run_dir), "reason": metrics.get("reason")}


def summarize(preset: Preset, runs: list[dict[str, Any]], quick: bool = False) -> Result:
    from cnnbench.commands.compare.stats import summarize as summary_of
    from cnnbench.commands.compare.stats import verdict

    result = Result(preset.name, preset.seed_notebook, preset.reported_test_acc, runs)
    accs = [r["test_acc"] for r in runs if r["status"] == "completed" and r["test_acc"] is not None]
    stats = summary_of(accs)
    result.n, result.mean, result.std = stats.n, stats.mean, stats.std
    result.ci95_low, result.ci95_high = stats.ci_low, stats.ci_high
    if accs:
        result.min, result.max = min(accs), max(accs)
        if preset.reported_test_acc is not None and not quick:  # a smoke run compares nothing
            result.gap_points = 100 * (result.mean - preset.reported_test_acc)
            result.verdict = verdict(stats, preset.reported_test_acc)
    devices = sorted({r["device"] for r in runs if r.get("device")})
    result.device = ", ".join(devices) or None
    return result


def pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def ours(r: Result) -> str:
    """'98.70 ± 0.66' (mean ± half the 95% interval), '98.70 (n=1)', or '-'."""
    if r.mean is None:
        return "-"
    if r.ci95_low is None:
        return f"{100 * r.mean:.2f} (n=1)"
    return f"{100 * r.mean:.2f} ± {100 * (r.ci95_high - r.ci95_low) / 2:.2f}"


def render(results: list[Result], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left",
                  caption="ours: mean ± half the 95% confidence interval over the seeds; verdict: "
                          "matches (the published value lies in our interval), above or below "
                          "(our whole interval lies above or below it)", caption_justify="left")
    for name, justify in [("preset", "left"), ("published test acc %", "right"),
                          ("ours % (mean ± CI95)", "right"), ("verdict", "left"),
                          ("std", "right"), ("min", "right"), ("max", "right"),
                          ("gap (pts)", "right"), ("runs", "right"), ("device", "left")]:
        table.add_column(name, justify=justify)
    for r in results:
        gap = "-" if r.gap_points is None else f"{r.gap_points:+.2f}"
        table.add_row(r.preset,
                      "not reported" if r.reported_test_acc is None else pct(r.reported_test_acc),
                      ours(r), r.verdict or ("n<2: no interval" if r.n == 1 and
                                             r.reported_test_acc is not None else "-"),
                      pct(r.std), pct(r.min), pct(r.max), gap, f"{r.n}/{len(r.runs)}",
                      r.device or "-")
    return table


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Arguments not listed here (key=value) are passed to every `cnnbench train` run.")
    parser.add_argument("--presets", nargs="+", metavar="NAME",
                        help="presets to run (default: every MNIST / Fashion-MNIST preset)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="K",
                        help="training seeds (default: 0 1 2; with --quick: 0)")
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="multiply each preset's epochs by this (at least 1 epoch)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs to execute at the same time (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="CPU smoke run of the whole pipeline: 1 epoch on a small synthetic "
                             "stand-in of each preset's dataset (same shape, 512 images), one seed; "
                             "its accuracies say nothing about the seeds")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON file to write (default: {DEFAULT_OUT.relative_to(HERE.parent)}, "
                             f"with --quick {QUICK_OUT.relative_to(HERE.parent)})")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="where the run directories go (default: runs/<time> beside --out)")
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.epochs_scale <= 0:
        parser.error("--epochs-scale must be above 0")
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    return args, extra


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    args, extra = parse_args(argv)
    console = Console()
    known = preset_names()
    names = args.presets or default_presets()
    unknown = [n for n in names if n not in known]
    if unknown:
        console.print(f"[red]error:[/] unknown preset(s) {', '.join(unknown)}; known: "
                      f"{', '.join(known)}", highlight=False)
        return 2
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    runs_dir = args.runs_dir or args.out.parent / "runs" / stamp
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    presets = [load_preset(n) for n in names]
    tasks = [(preset, seed) for preset in presets for seed in seeds]
    started = time.perf_counter()
    done = 0

    def run_one(task: tuple[Preset, int]) -> dict[str, Any]:
        nonlocal done
        preset, seed = task
        run_dir = (runs_dir / preset.name / f"seed{seed}").resolve()
        command = train_command(preset, seed, run_dir, args.epochs_scale, args.quick, extra)
        t0 = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        run = read_run(run_dir, seed, proc.returncode)
        done += 1
        acc = "-" if run["test_acc"] is None else f"{100 * run['test_acc']:.2f} %"
        console.print(f"[{done}/{len(tasks)}] {preset.name} seed {seed}: {run['status']}, test "
                      f"acc {acc} ({time.perf_counter() - t0:.0f} s)", highlight=False)
        if run["status"] != "completed":
            console.print(f"   {run.get('reason') or proc.stderr.strip()[-800:]}",
                          highlight=False, markup=False)
        return run

    # runs are independent processes; --jobs N runs N at once (small models share a GPU well)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        finished = list(pool.map(run_one, tasks))
    results = [summarize(preset, [r for (p, _), r in zip(tasks, finished) if p is preset],
                         args.quick) for preset in presets]

    title = ("QUICK SMOKE RUN (synthetic stand-in data, 1 epoch): not a reproduction"
             if args.quick else f"Published numbers vs cnnbench (epochs x{args.epochs_scale:g})")
    console.print(render(results, title))
    report = {
        "created": datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
        "epochs_scale": args.epochs_scale, "seeds": seeds, "jobs": args.jobs, "extra_overrides": extra,
        "runs_dir": str(runs_dir), "wall_seconds": round(time.perf_counter() - started, 1),
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.out}", highlight=False)
    failed = sum(r["status"] != "completed" for res in results for r in res.runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
