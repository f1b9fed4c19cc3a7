"""Start-up time: from the command to the first training step of `cnnbench train` (lenet, MNIST).

    python bench/startup.py                              # this checkout, 5 runs
    python bench/startup.py --repo /path/to/other/checkout --label main

Each run starts `python -m cnnbench train model=lenet dataset=mnist trainer.epochs=1 ...` as a new
process through a small wrapper that notes the process's age (from /proc, so the interpreter's
own start counts) when the first training step begins, and exits there. Timing
wrappers around the main steps split the time into phases. Prints a table, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
COMMAND = ["model=lenet", "dataset=mnist", "trainer.epochs=1", "trainer.progress=false"]

# The child: times the phases with wrappers (no profiler), notes the first training step, exits.
CHILD = r'''
import os, sys, json

def age():
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")

out = sys.argv[1]
marks, spans = {}, {}
import torch
marks["interpreter start + import torch"] = age()
import cnnbench.train as T
import cnnbench.run as R
import cnnbench.sinks as S
marks["+ import cnnbench.run (hydra.utils, rich, ...)"] = age()

def timed(owner, name, label):
    fn = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t0 = age()
        try:
            return fn(*args, **kwargs)
        finally:
            spans[label] = spans.get(label, 0.0) + age() - t0
    setattr(owner, name, wrapper)

timed(R, "make_runtime", "make_runtime (device, CUDA init)")
timed(R, "load_dataset", "load_dataset (read + decompress)")
timed(R, "build_model", "build_model")
timed(R, "build_optimizer", "build_optimizer (imports torch._dynamo)")
timed(R.TrainingRun, "make_loaders", "make_loaders (data to the device)")
timed(S.TensorBoardSink, "__init__", "TensorBoard writer")
execute = R.TrainingRun.execute

def execute_marked(self):
    marks["+ Hydra (parse, compose, run dir)"] = age()
    return execute(self)

R.TrainingRun.execute = execute_marked

def first_step(*args, **kwargs):
    marks["+ TrainingRun set-up: first training step"] = age()
    with open(out, "w") as f:
        json.dump({"startup_seconds": marks["+ TrainingRun set-up: first training step"],
                   "marks": marks, "spans": spans}, f)
    sys.stdout.flush()
    os._exit(0)

T.train_one_epoch = first_step
from cnnbench.cli import main
sys.exit(main(["train", *sys.argv[2:]]))
'''


def run_once(repo: Path, extra_env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "startup.json"
        child = Path(tmp) / "child.py"
        child.write_text(CHILD)
        env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               **extra_env}
        cmd = [sys.executable, str(child), str(out), *COMMAND, f"hydra.run.dir={tmp}/run"]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if not out.exists():
            raise RuntimeError(f"no first step: {proc.returncode}\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", action="append", default=None,
                        help="checkout(s) to measure (default: this one)")
    parser.add_argument("--label", action="append", default=None)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the runs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm", type=int, default=1, help="untimed runs first (0 or 1)")
    parser.add_argument("--out", default="bench/results/startup.json")
    args = parser.parse_args()
    repos = [Path(r).resolve() for r in (args.repo or [HERE.parents[1]])]
    labels = args.label or [r.name for r in repos]
    extra_env = dict(e.split("=", 1) for e in args.env)
    results = []
    for repo, label in zip(repos, labels):
        if args.warm:
            run_once(repo, extra_env)  # fills the OS file cache and the bytecode caches
        measured = [run_once(repo, extra_env) for _ in range(args.runs)]
        times = [m["startup_seconds"] for m in measured]
        marks = {k: statistics.fmean(m["marks"][k] for m in measured) for k in measured[0]["marks"]}
        spans = {k: statistics.fmean(m["spans"].get(k, 0.0) for m in measured)
                 for k in measured[0]["spans"]}
        results.append({"label": label, "repo": str(repo), "env": extra_env, "runs": times,
                        "mean": statistics.fmean(times), "min": min(times), "max": max(times),
                        "marks": marks, "spans": spans})
        print(f"{label}: command -> first training step {statistics.fmean(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)")
        print("  process age at each point (mean):")
        for name, seconds in marks.items():
            print(f"    {name:52} {seconds:6.2f} s")
        print("  inside the set-up (mean):")
        for name, seconds in spans.items():
            print(f"    {name:52} {seconds:6.3f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "cnnbench train " + " ".join(COMMAND),
                               "bench_command": " ".join(sys.argv), "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
