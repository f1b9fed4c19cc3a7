"""End to end: the everyday `cnnbench train` commands, each run as a user runs it, timed from the
command to the process's exit.

    python bench/e2e.py                               # every row, to bench/results/e2e.json
    python bench/e2e.py --rows mlp,default --repeat 3     # median and every value of 3 runs
    python bench/e2e.py --rows mlp --extra "trainer.device=cpu trainer.epochs=1"   # CPU smoke run
    python bench/e2e.py --data-root /data/cnnbench    # holds FashionMNIST/raw/ ($CNNBENCH_DATA)
    source .gpu/setup.sh && python3 bench/e2e.py --out bench/results/e2e_h200.json   # GPU machine

Each row is one command (`python -m cnnbench train ...` with this interpreter, so the packages
a machine put on PYTHONPATH are the ones used) started as a new process in a fresh working
directory of its own; its outputs land in that directory's outputs/, as a user's would. For each
run it reports, from the clock around the process and the run's metrics.json:

  wall            command -> process exit
  start-up        process start -> first training step: startup_seconds + compile_seconds
                  (compile_seconds: torch.compile and CUDA-graph capture, done before training)
  training        phase_seconds.training (the epochs, with their validation and checkpoints)
  after training  phase_seconds.testing (test set, evaluation, summary) plus the time from the
                  end of the run to the process's exit: wall - start-up - training
  images/s, test accuracy, device, AMP, CUDA-graph status: as metrics.json has them

The sweep row (`-m`, 9 jobs, the default launcher) reports the sweep's wall time, the first job's
start-up, the jobs' training and testing seconds summed (and their medians in the JSON) and how
many jobs completed. A row whose data is missing (Fashion-MNIST: <data root>/FashionMNIST/raw/)
is skipped with the reason, and recorded as skipped. --extra overrides are appended to every row
(a row's own override of the same key is dropped); targets are checked only for the rows as the
issue gives them (no --extra). Prints a table, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cnnbench import rundir  # noqa: E402  (stdlib only: no torch, no Hydra)

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class Row:
    name: str
    overrides: tuple[str, ...]
    target: str = ""
    max_wall: float | None = None  # seconds (the GPU targets of the issue)
    min_acc: float | None = None
    needs: str | None = None  # a dataset folder under the data root, e.g. FashionMNIST

    @property
    def sweep(self) -> bool:
        return "-m" in self.overrides or "--multirun" in self.overrides


ROWS = {row.name: row for row in (
    Row("mlp", ("model=mlp", "model.hidden=[64,128,64]", "model.init=torch", "optimizer=adam",
                "trainer.batch_size=128", "trainer.epochs=10"),
        "<= 6 s wall, >= 97.5% test acc", max_wall=6.0, min_acc=0.975),
    Row("default", (), "<= 8 s wall", max_wall=8.0),
    Row("lenet_mnist", ("experiment=lenet_mnist",)),
    Row("sweep", ("-m", "model=mlp,lenet,cnn2", "optimizer=sgd,adam,adadelta", "trainer.epochs=3"),
        "<= 30 s wall, 9 jobs", max_wall=30.0),
    Row("mnist_speedrun", ("experiment=mnist_speedrun",)),
    Row("fashion_speedrun", ("experiment=fashion_speedrun",), needs="FashionMNIST"),
)}


def override_key(arg: str) -> str:
    return arg.split("=", 1)[0].lstrip("+~")


def row_arguments(row: Row, extra: list[str]) -> list[str]:
    """The row's `train` arguments with the extra overrides appended (replacing the row's own
    value of the same key, so the command says each setting once)."""
    replaced = {override_key(e) for e in extra if "=" in e}
    kept = [a for a in row.overrides if a.startswith("-") or override_key(a) not in replaced]
    return [*kept, *extra]


def missing_data(row: Row, data_root: Path, extra: list[str]) -> str | None:
    """Why the row cannot run here (its dataset is not on disk), or None."""
    if row.needs is None or any(override_key(e) in ("dataset", "dataset.root") for e in extra):
        return None
    raw = data_root / row.needs / "raw"
    absent = [f for f in IDX_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]
    if absent:
        return (f"{row.needs} data not found: {raw} lacks {', '.join(absent)} (give --data-root "
                f"or set CNNBENCH_DATA to a folder holding {row.needs}/raw/*-ubyte.gz)")
    return None


def child_env(data_root: Path, repo: Path = REPO) -> dict[str, str]:
    """The environment of every command: this checkout (or `repo`) first on PYTHONPATH, the
    data root as $CNNBENCH_DATA (the datasets' default root)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONUNBUFFERED": "1", "CNNBENCH_DATA": str(data_root),
            "PYTHONPATH": str(repo) + (os.pathsep + path if path else "")}


def run_process(args: list[str], workdir: Path, env: dict[str, str], timeout: float) -> dict:
    """One `python -m cnnbench train ARGS` in `workdir`: wall seconds, exit code, log."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "cnnbench", "train", *args]
    log = workdir / "console.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        try:
            code = subprocess.run(argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = None
    wall = time.perf_counter() - start
    return {"wall_seconds": round(wall, 3), "exit_code": code, "workdir": str(workdir),
            "log_tail": log.read_text(errors="replace")[-2000:] if code != 0 else ""}


def run_dirs(workdir: Path) -> list[Path]:
    """The run directories a command wrote under workdir/outputs/, in job order."""
    def job_number(path: Path) -> tuple[int, str]:
        head = path.name.split("_", 1)[0]
        return (int(head) if head.isdigit() else 1 << 30, str(path))

    found = [p.parent for p in (workdir / "outputs").rglob(rundir.METRICS_FILE)]
    return sorted(found, key=job_number)


def start_up(metrics: dict) -> tuple[float | None, str]:
    """Process start -> first training step, and where it was read from."""
    if metrics.get("startup_seconds") is not None:
        return metrics["startup_seconds"] + (metrics.get("compile_seconds") or 0.0), "metrics"
    phases = metrics.get("phase_seconds") or {}
    before = [v for k, v in phases.items() if k not in ("training", "testing", "done")]
    return (sum(before) if before else None), "phase_seconds (set-up after Hydra only)"


def single_result(proc: dict, metrics: dict) -> dict:
    phases = metrics.get("phase_seconds") or {}
    startup, source = start_up(metrics)
    training = phases.get("training", metrics.get("train_seconds"))
    testing = phases.get("testing")
    wall = proc["wall_seconds"]
    after = wall - (startup or 0.0) - (training or 0.0)
    return {**proc, "status": metrics.get("status"), "reason": metrics.get("reason"),
            "startup_seconds": _round(startup), "startup_from": source,
            "compile_seconds": _round(metrics.get("compile_seconds")),
            "training_seconds": _round(training),
            "train_seconds": _round(metrics.get("train_seconds")),
            "testing_seconds": _round(testing),
            "exit_seconds": _round(after - (testing or 0.0)),
            "after_training_seconds": _round(after),
            "images_per_s": _round(metrics.get("images_per_s"), 1),
            "test_acc": metrics.get("test/acc"), "device": metrics.get("device"),
            "amp": metrics.get("amp"), "cuda_graph": metrics.get("cuda_graph"),
            "phase_seconds": phases, "run_dir": metrics.get("run_dir")}


def sweep_result(proc: dict, jobs: list[dict]) -> dict:
    """A sweep: its wall time, the first job's start-up, the jobs' phases summed (and medians)."""
    def phase(job: dict, name: str) -> float | None:
        return (job.get("phase_seconds") or {}).get(name)

    per_phase = {}
    for name in ("setup", "data", "training", "testing"):
        values = [v for v in (phase(j, name) for j in jobs) if v is not None]
        per_phase[name] = {"sum": _round(sum(values)), "median": _round(_median(values)),
                           "values": values}
    first = jobs[0] if jobs else {}
    startup, source = start_up(first)
    accs = [j["test/acc"] for j in jobs if j.get("test/acc") is not None]
    rates = [j["images_per_s"] for j in jobs if j.get("images_per_s") is not None]
    completed = sum(j.get("status") == rundir.COMPLETED for j in jobs)
    return {**proc, "status": rundir.COMPLETED if jobs and completed == len(jobs) else "failed",
            "reason": None if jobs and completed == len(jobs) else
            f"{completed} of {len(jobs)} jobs completed",
            "jobs": len(jobs), "jobs_completed": completed,
            "startup_seconds": _round(startup), "startup_from": f"the first job's {source}",
            "training_seconds": per_phase["training"]["sum"],
            "after_training_seconds": per_phase["testing"]["sum"],
            "job_phase_seconds": per_phase,
            "images_per_s": _round(_median(rates), 1), "test_acc": _median(accs),
            "test_acc_min": min(accs, default=None), "test_acc_max": max(accs, default=None),
            "device": first.get("device"), "amp": first.get("amp"),
            "cuda_graph": first.get("cuda_graph"),
            "job_results": [{"job": Path(j.get("run_dir", "?")).name, "status": j.get("status"),
                             "test_acc": j.get("test/acc"), "phase_seconds": j.get("phase_seconds"),
                             "train_seconds": j.get("train_seconds")} for j in jobs]}


def run_row(row: Row, args: list[str], workdir: Path, env: dict, timeout: float) -> dict:
    proc = run_process(args, workdir, env, timeout)
    found = run_dirs(workdir)
    metrics = [rundir.read_metrics(d) for d in found]
    if row.sweep:
        result = sweep_result(proc, metrics)
    elif metrics:
        result = single_result(proc, metrics[-1])
    else:
        result = {**proc, "status": "failed",
                  "reason": f"no run directory with {rundir.METRICS_FILE}"}
    if proc["exit_code"] != 0 and result.get("status") == rundir.COMPLETED:
        result["status"] = "failed"
    if proc["exit_code"] != 0:
        ended = "timed out" if proc["exit_code"] is None else f"exit code {proc['exit_code']}"
        result["reason"] = "; ".join(r for r in (ended, result.get("reason")) if r)
    return result


NUMBERS = ("wall_seconds", "startup_seconds", "compile_seconds", "training_seconds",
           "train_seconds", "testing_seconds", "exit_seconds", "after_training_seconds",
           "images_per_s", "test_acc", "jobs_completed")


def summarize(row: Row, command: str, argv: list[str], runs: list[dict], checked: bool) -> dict:
    """A row's JSON: the median of each number over its runs, with every value."""
    out = {"row": row.name, "command": command, "argv": argv, "target": row.target or None,
           "status": "ok" if all(r.get("status") == rundir.COMPLETED for r in runs) else "failed",
           "runs": runs}
    for key in NUMBERS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = {"median": _median(values), "values": values}
    last = runs[-1]
    for key in ("device", "amp", "cuda_graph", "jobs", "reason"):
        if key in last:
            out[key] = last[key]
    met = None
    if checked and out["status"] == "ok" and (row.max_wall or row.min_acc):
        met = ((row.max_wall is None or out["wall_seconds"]["median"] <= row.max_wall)
               and (row.min_acc is None or out["test_acc"]["median"] >= row.min_acc)
               and (not row.sweep or last.get("jobs_completed") == 9))
    out["target_met"] = met
    return out


def _median(values: list) -> float | None:
    return statistics.median(values) if values else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _fmt(entry: dict, key: str, pattern: str = "{:.2f}") -> str:
    value = entry.get(key)
    if isinstance(value, dict):
        value = value.get("median")
    return "-" if value is None else pattern.format(value)


def print_table(results: list[dict], device: str | None, repeat: int) -> None:
    title = f"cnnbench end to end on {device or 'unknown device'}" + (
        f" (median of {repeat} runs)" if repeat > 1 else "")
    headers = ["row", "wall s", "start-up s", "training s", "after s", "images/s", "test acc",
               "amp", "cuda graph", "target"]
    rows = []
    for r in results:
        if r["status"] == "skipped":
            rows.append([r["row"], "skipped", "", "", "", "", "", "", "", "-"])
            continue
        name = r["row"] + (f" ({_fmt(r, 'jobs_completed', '{:.0f}')}/{r.get('jobs')} jobs)"
                           if "jobs" in r else "")
        target = {True: "met", False: "missed", None: "-"}[r.get("target_met")]
        if r["status"] != "ok":
            target = "FAILED"
        rows.append([name, _fmt(r, "wall_seconds"), _fmt(r, "startup_seconds"),
                     _fmt(r, "training_seconds"), _fmt(r, "after_training_seconds"),
                     _fmt(r, "images_per_s", "{:,.0f}"), _fmt(r, "test_acc", "{:.2%}"),
                     str(r.get("amp", "-")), str(r.get("cuda_graph", "-")), target])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print(" | ".join(headers))
        for cells in rows:
            print(" | ".join(cells))
    else:
        table = Table(title=title, title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if 0 < i < 7 else "left")
        for cells in rows:
            table.add_row(*cells)
        Console(width=max(130, Console().width)).print(table)
    print("start-up: process start -> first training step (compile included); after: testing + "
          "process exit; sweep: the first job's start-up, the jobs' training and testing summed")
    for r in results:
        print(f"  {r['row']:<17} {r['command']}")
        notes = [f"target {r['target']}" if r.get("target") else "",
                 f"{r['status']}: {r['reason']}" if r["status"] != "ok" else ""]
        if any(notes):
            print(f"  {'':<17} " + "; ".join(n for n in notes if n))


FLOOR_SCRIPT = """
import time; t0 = time.perf_counter()
import torch; t1 = time.perf_counter()
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.zeros(1, device=dev); torch.cuda.synchronize() if dev.type == "cuda" else None
t2 = time.perf_counter()
model = torch.nn.Linear(784, 10).to(dev)
opt = torch.optim.Adam(model.parameters()); t3 = time.perf_counter()
model(torch.zeros(128, 784, device=dev)).sum().backward(); opt.step()
torch.cuda.synchronize() if dev.type == "cuda" else None
t4 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {t4 - t3:.3f}")
"""


def measure_floor(env: dict) -> dict:
    """What any PyTorch training process pays before its first step, measured in a bare process:
    importing torch, starting CUDA, building an optimizer (torch.optim imports torch._dynamo),
    one step; and the whole process, exit included."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    try:
        parts = [float(v) for v in proc.stdout.split()]
    except ValueError:
        return {"error": proc.stderr[-500:]}
    keys = ("import_torch", "device_init", "optimizer_build", "first_step")
    return {**dict(zip(keys, parts)), "process_wall": round(wall, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"comma-separated, from: {', '.join(ROWS)} (default: all)")
    parser.add_argument("--extra", default="",
                        help='overrides appended to every row, e.g. "trainer.device=cpu"')
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row (median + all)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset root (default: $CNNBENCH_DATA, else ./data)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where each run's working directory goes (default: "
                             "outputs/bench/e2e_<time>)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per command")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "e2e.json")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the unrecorded first run that fills the caches every later run "
                             "finds (Python bytecode, matplotlib's font list) as on a machine the "
                             "tool has run on before")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown or args.repeat < 1:
        parser.error(f"unknown row(s) {', '.join(unknown)}; rows: {', '.join(ROWS)}" if unknown
                     else "--repeat must be at least 1")
    extra = shlex.split(args.extra)
    data_root = (args.data_root or Path(os.environ.get("CNNBENCH_DATA") or "data")).resolve()
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    workdir = (args.workdir or Path("outputs") / "bench" / f"e2e_{stamp}").resolve()
    env = child_env(data_root)
    print(f"python {sys.executable} ({platform.python_version()}), data root {data_root}, "
          f"working directories under {workdir}", flush=True)

    floor = None
    if any(not missing_data(ROWS[n], data_root, extra) for n in names):
        if not args.no_warmup:
            warm = ["dataset=synthetic", "dataset.train_size=512", "dataset.test_size=256",
                    "trainer.epochs=1", *extra]
            print(f"warm-up (not recorded): cnnbench train {shlex.join(warm)}", flush=True)
            run_row(ROWS[names[0]], warm, workdir / "warmup", env, args.timeout)
        floor = measure_floor(env)
        print(f"floor (a bare PyTorch process): {floor}", flush=True)
    results = []
    for name in names:
        row = ROWS[name]
        train_args = row_arguments(row, extra)
        command = shlex.join(["cnnbench", "train", *train_args])
        reason = missing_data(row, data_root, extra)
        if reason:
            print(f"[{name}] skipped: {reason}", flush=True)
            results.append({"row": name, "command": command, "status": "skipped",
                            "reason": reason, "target": row.target or None})
            continue
        runs = []
        for i in range(args.repeat):
            print(f"[{name}] run {i + 1}/{args.repeat}: {command}", flush=True)
            run = run_row(row, train_args, workdir / f"{name}_{i}", env, args.timeout)
            runs.append(run)
            print(f"[{name}]   {run.get('status')}: wall {run['wall_seconds']:.2f} s, start-up "
                  f"{_fmt(run, 'startup_seconds')} s, training {_fmt(run, 'training_seconds')} s, "
                  f"after {_fmt(run, 'after_training_seconds')} s, test acc "
                  f"{_fmt(run, 'test_acc', '{:.2%}')}, {run.get('device')}"
                  + (f" ({run['reason']})" if run.get("reason") else ""), flush=True)
            if run["log_tail"]:
                print(run["log_tail"][-1200:], flush=True)
        argv_full = [sys.executable, "-m", "cnnbench", "train", *train_args]
        results.append(summarize(row, command, argv_full, runs, checked=not extra))

    device = next((r["device"] for r in results if r.get("device")), None)
    print()
    print_table(results, device, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "created": stamp, "device": device, "host": platform.node(), "python": sys.executable,
        "bench_command": shlex.join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "extra": extra, "repeat": args.repeat, "data_root": str(data_root),
        "workdir": str(workdir), "floor": floor, "rows": results}, indent=2) + "\n")
    print(f"device: {device}; wrote {args.out}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
