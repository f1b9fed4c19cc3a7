"""Start-up time: from the command to the first training step of `cnnbench train` (lenet, MNIST).

    python bench/startup.py                              # this checkout, 5 runs
    python bench/startup.py --repo /path/to/other/checkout --label main

Each run starts `python -m cnnbench train model=lenet dataset=mnist trainer.epochs=1 ...` as a new
process through a small wrapper that notes the process's age (from /proc, so the interpreter's
own start counts) when the first training step begins, and exits there. One more run under
cProfile splits the time into phases. Prints a table, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
COMMAND = ["model=lenet", "dataset=mnist", "trainer.epochs=1", "trainer.progress=false"]

# Run as `python startup.py --child OUT ARGS...`: hook the first training step, then run the CLI.
CHILD = r'''
import os, sys, json
profiler = None
if os.environ.get("STARTUP_PROFILE"):
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()

def age():
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")

out = sys.argv[1]
import cnnbench.train as T
imported = age()  # interpreter start + import torch (+ cnnbench.train)

def first_step(*args, **kwargs):
    with open(out, "w") as f:
        json.dump({"startup_seconds": age(), "torch_imported": imported}, f)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.environ["STARTUP_PROFILE"])
    sys.stdout.flush()
    os._exit(0)

T.train_one_epoch = first_step
from cnnbench.cli import main
sys.exit(main(["train", *sys.argv[2:]]))
'''

PHASES = [  # (label, file suffix, function name) read from the cProfile run
    ("Hydra: parse, compose, job set-up (total)", "hydra/_internal/utils.py", "_run_hydra"),
    ("TrainingRun.execute until the first step", "cnnbench/run.py", "execute"),
    ("  make_runtime (device, CUDA init)", "cnnbench/runtime.py", "make_runtime"),
    ("  load_dataset (read + decompress)", "cnnbench/data/sources.py", "load_dataset"),
    ("  build_model", "cnnbench/run.py", "build_model"),
    ("  build_optimizer (imports torch._dynamo)", "cnnbench/run.py", "build_optimizer"),
    ("  make_loaders (data to the device)", "cnnbench/run.py", "make_loaders"),
    ("  TensorBoard writer", "cnnbench/sinks.py", "__init__"),
]


def run_once(repo: Path, extra_env: dict, profile: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "startup.json"
        child = Path(tmp) / "child.py"
        child.write_text(CHILD)
        env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               **extra_env}
        if profile:
            env["STARTUP_PROFILE"] = str(profile)
        cmd = [sys.executable, str(child), str(out), *COMMAND, f"hydra.run.dir={tmp}/run"]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if not out.exists():
            raise RuntimeError(f"no first step: {proc.returncode}\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def phases(profile: Path) -> list[tuple[str, float | None]]:
    stats = pstats.Stats(str(profile)).stats
    rows = []
    for label, suffix, func in PHASES:
        times = [v[3] for (file, _line, name), v in stats.items()
                 if file.endswith(suffix) and name == func]
        rows.append((label, max(times) if times else None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", action="append", default=None,
                        help="checkout(s) to measure (default: this one)")
    parser.add_argument("--label", action="append", default=None)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the runs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="bench/results/startup.json")
    args = parser.parse_args()
    repos = [Path(r).resolve() for r in (args.repo or [HERE.parents[1]])]
    labels = args.label or [r.name for r in repos]
    extra_env = dict(e.split("=", 1) for e in args.env)
    results = []
    for repo, label in zip(repos, labels):
        run_once(repo, extra_env)  # fills the OS file cache and the bytecode caches
        measured = [run_once(repo, extra_env) for _ in range(args.runs)]
        times = [m["startup_seconds"] for m in measured]
        imports = statistics.fmean(m["torch_imported"] for m in measured)
        with tempfile.TemporaryDirectory() as tmp:
            prof = Path(tmp) / "startup.prof"
            profiled = run_once(repo, extra_env, prof)["startup_seconds"]
            split = [("interpreter start + import torch (mean, not profiled)", imports)] + phases(prof)
        results.append({"label": label, "repo": str(repo), "env": extra_env, "runs": times,
                        "mean": statistics.fmean(times), "min": min(times), "max": max(times),
                        "profiled_run": profiled, "phases": dict(split)})
        print(f"{label}: command -> first training step {statistics.fmean(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)")
        print(f"  phases (one run under cProfile, which slows Python code; total {profiled:.2f} s):")
        for name, seconds in split:
            print(f"    {name:56} {seconds:.3f} s" if seconds is not None else f"    {name:56} -")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "cnnbench train " + " ".join(COMMAND),
                               "bench_command": " ".join(sys.argv), "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
