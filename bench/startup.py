"""Start-up time: from the command to the first training step of `cnnbench train` (lenet, MNIST).

    python bench/startup.py                              # this checkout, 5 runs
    python bench/startup.py --repo /path/to/other/checkout --label main
    python bench/startup.py --env CNNBENCH_NO_PRELOAD=1 --runs 3

Each run is `python -m cnnbench train model=lenet dataset=mnist trainer.epochs=1
trainer.progress=false`, a new process in a fresh working directory (bench/e2e.py's runner, with
the checkout first on PYTHONPATH), left to finish as a user's run does. The times come from the
run's metrics.json, nothing is patched: start-up is `startup_seconds + compile_seconds` (the
process's age from /proc, so the interpreter's own start counts, when the first training step
begins), of which `phase_seconds` says how long the run's set-up and data loading took; the rest
is the interpreter, imports and Hydra. Prints the means, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from e2e import REPO, child_env, run_dirs, run_process  # bench/e2e.py, beside this file

from cnnbench import rundir

COMMAND = ["model=lenet", "dataset=mnist", "trainer.epochs=1", "trainer.progress=false"]


def run_once(repo: Path, extra_env: dict, data_root: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**child_env(data_root, repo), **extra_env}
        proc = run_process(COMMAND, Path(tmp), env, timeout=600)
        found = run_dirs(Path(tmp))
        metrics = rundir.read_metrics(found[-1]) if found else {}
        if proc["exit_code"] != 0 or metrics.get("startup_seconds") is None:
            raise RuntimeError(f"no start-up time: exit code {proc['exit_code']}\n"
                               f"{proc['log_tail']}")
    phases = metrics.get("phase_seconds") or {}
    startup = metrics["startup_seconds"] + (metrics.get("compile_seconds") or 0.0)
    spans = {"set-up (device, model, optimizer, loaders)": phases.get("setup", 0.0),
             "data (read + decompress)": phases.get("data", 0.0),
             "compile and capture": metrics.get("compile_seconds") or 0.0}
    spans = {"interpreter, imports, Hydra (before the run's record)":
             startup - sum(spans.values()), **spans}
    return {"startup_seconds": startup, "wall_seconds": proc["wall_seconds"], "spans": spans,
            "device": metrics.get("device")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", action="append", default=None,
                        help="checkout(s) to measure (default: this one)")
    parser.add_argument("--label", action="append", default=None)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the runs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm", type=int, default=1, help="untimed runs first (0 or 1)")
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="dataset root (MNIST falls back to the packaged copy)")
    parser.add_argument("--out", default="bench/results/startup.json")
    args = parser.parse_args()
    repos = [Path(r).resolve() for r in (args.repo or [REPO])]
    labels = args.label or [r.name for r in repos]
    extra_env = dict(e.split("=", 1) for e in args.env)
    data_root = args.data_root.resolve()
    results = []
    for repo, label in zip(repos, labels):
        if args.warm:
            run_once(repo, extra_env, data_root)  # fills the OS file cache and the bytecode caches
        measured = [run_once(repo, extra_env, data_root) for _ in range(args.runs)]
        times = [m["startup_seconds"] for m in measured]
        spans = {k: statistics.fmean(m["spans"][k] for m in measured) for k in measured[0]["spans"]}
        results.append({"label": label, "repo": str(repo), "env": extra_env, "runs": times,
                        "mean": statistics.fmean(times), "min": min(times), "max": max(times),
                        "wall_seconds": [m["wall_seconds"] for m in measured],
                        "device": measured[0]["device"], "spans": spans})
        print(f"{label} on {measured[0]['device']}: command -> first training step "
              f"{statistics.fmean(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}, "
              f"{args.runs} runs)")
        print("  of which (mean):")
        for name, seconds in spans.items():
            print(f"    {name:56} {seconds:6.2f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "cnnbench train " + " ".join(COMMAND),
                               "bench_command": " ".join(sys.argv), "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
