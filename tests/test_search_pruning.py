"""hydra/sweeper=cnnbench_optuna: trials that report every epoch and stop when the pruner says so,
one study shared by workers started side by side, and pruned runs that stay done."""
from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

from cnnbench import rundir

pytestmark = pytest.mark.slow

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128", "model=mlp",
        "optimizer=adam", "trainer.batch_size=64", "trainer.device=cpu",
        "trainer.progress=false", "evaluation.plots=false"]
# trial 0 draws a learning rate that learns, trial 1 one that cannot (seed 1): with one trial
# completed, the median pruner stops trial 1 after its first epoch
PRUNING = ["-m", "hydra/sweeper=cnnbench_optuna", *TINY, "trainer.epochs=3",
           "optimizer.lr=choice(0.000001,0.003)", "hydra.sweeper.seed=1",
           "hydra.sweeper.n_trials=4", "hydra.sweeper.n_startup_trials=3",
           "hydra.sweeper.pruner.name=median", "hydra.sweeper.pruner.n_startup_trials=1",
           "hydra.sweeper.study_name=pruning", "hydra.sweep.dir=search"]


def load_study(storage: Path, name: str):
    import optuna

    from cnnbench.run.study_storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{storage}"))


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("pruned_search")
    proc = run_cli("train", *PRUNING, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return cwd / "search", proc


def statuses(sweep_dir: Path) -> dict[Path, dict]:
    return {d: rundir.read_metrics(d) for d in rundir.find_run_dirs(sweep_dir)}


def test_a_search_prunes_hopeless_trials_at_an_epoch_boundary(pruned_search):
    sweep_dir, proc = pruned_search
    runs = statuses(sweep_dir)
    pruned = {d: m for d, m in runs.items() if m["status"] == rundir.PRUNED}
    completed = {d: m for d, m in runs.items() if m["status"] == rundir.COMPLETED}
    assert len(runs) == 4 and pruned and completed
    for run, metrics in pruned.items():
        assert metrics["epochs_run"] < 3 and "median pruner" in metrics["reason"]
        history = (run / rundir.HISTORY_FILE).read_text().strip().splitlines()
        assert len(history) - 1 == metrics["epochs_run"]  # the epochs it ran, no more
        assert rundir.last_checkpoint(run).is_file() and (run / ".hydra" / "config.yaml").is_file()
        assert metrics["lr"] == 1e-06
    for metrics in completed.values():
        assert metrics["epochs_run"] == 3
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("sweep: "))
    assert f"{len(completed)} completed" in summary and f"{len(pruned)} pruned" in summary
    assert "did not complete" not in proc.stdout
    study = load_study(sweep_dir / "optuna.db", "pruning")
    assert sorted(t.state.name for t in study.trials) == sorted(
        ["PRUNED"] * len(pruned) + ["COMPLETE"] * len(completed))


def test_a_search_prints_its_own_lines_and_not_its_libraries_log(pruned_search):
    _, proc = pruned_search
    out = proc.stdout + proc.stderr
    assert "Study pruning in sqlite:///" in out
    for library_line in ("setup plugin alembic", "Context impl", "A new study created"):
        assert library_line not in out, out


def test_the_search_names_its_best_trial_and_its_run_directory(pruned_search):
    sweep_dir, proc = pruned_search
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = Path(results["best_run_dir"])
    assert rundir.read_metrics(best)["status"] == rundir.COMPLETED
    assert results["best_params"] == {"optimizer.lr": 0.003} and results["pruned"] >= 1
    assert f"best run: {best}" in proc.stdout


def test_compare_lists_pruned_runs_apart_from_the_ranked_ones(pruned_search):
    sweep_dir, _ = pruned_search
    pruned = [d for d, m in statuses(sweep_dir).items() if m["status"] == rundir.PRUNED]
    out = sweep_dir.parent / "compared"
    proc = run_cli("compare", str(sweep_dir), "--runs", f"out={out}", cwd=sweep_dir.parent,
                   check=True, env={"COLUMNS": "2000"})  # a trial's long name on one line
    line = next(line for line in proc.stdout.splitlines() if "pruned by a search" in line)
    assert line.startswith(f"{len(pruned)} run") and "unranked" in line
    assert all(f"{d.name} after epoch 1" in line for d in pruned)
    assert "did not complete and are left out" not in proc.stdout  # not counted as failures
    rows = (out / "comparison_runs.csv").read_text().splitlines()
    assert sum(",pruned," in row for row in rows) == len(pruned)


def hparams_of(run: Path) -> tuple[dict, dict]:
    """What TensorBoard's HParams dashboard reads from a run's events: its experiment summary,
    session start (options) and end (status), parsed; and the last value of each scalar."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    events = EventAccumulator(str(run / rundir.TB_DIR))
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    parsers = {metadata.EXPERIMENT_TAG: metadata.parse_experiment_plugin_data,
               metadata.SESSION_START_INFO_TAG: metadata.parse_session_start_info_plugin_data,
               metadata.SESSION_END_INFO_TAG: metadata.parse_session_end_info_plugin_data}
    parsed = {tag: parsers[tag](data) for tag, data in content.items()}
    scalars = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    return parsed, scalars


def test_pruned_trials_are_rows_of_tensorboard_s_hparams_with_their_metrics_and_status(
        pruned_search):
    from tensorboard.plugins.hparams import api_pb2, metadata

    sweep_dir, _ = pruned_search
    runs = statuses(sweep_dir)
    columns = None
    for run, metrics in runs.items():
        parsed, scalars = hparams_of(run)
        start = parsed[metadata.SESSION_START_INFO_TAG]
        assert start.hparams["lr"].number_value == metrics["lr"]
        status = parsed[metadata.SESSION_END_INFO_TAG].status
        if metrics["status"] == rundir.COMPLETED:
            assert status == api_pb2.STATUS_SUCCESS
            columns = [m.name.tag for m in parsed[metadata.EXPERIMENT_TAG].metric_infos]
            continue
        assert metrics["status"] == rundir.PRUNED and status == api_pb2.STATUS_UNKNOWN
        assert metadata.EXPERIMENT_TAG not in parsed  # the completed runs' table, one row more
        assert scalars["val/acc"] == pytest.approx(metrics["last_epoch_metrics"]["val/acc"])
        assert not any(tag.startswith("test/") for tag in scalars)  # never tested
    assert columns[:2] == ["test/acc", "test/loss"]
    assert {"val/acc", "val/loss", "train/acc", "train/loss"} <= set(columns)  # a pruned row's
    assert sorted(m["status"] for m in runs.values()).count(rundir.PRUNED) >= 1


def test_running_the_search_again_does_not_run_its_pruned_trials_again(pruned_search):
    from cnnbench.sweep.plan import SKIP, decide

    sweep_dir, _ = pruned_search
    before = statuses(sweep_dir)
    pruned = next(d for d, m in before.items() if m["status"] == rundir.PRUNED)
    assert decide(pruned).action == SKIP  # a sweep run again in its directory skips it
    stamp = rundir.metrics_file(pruned).stat().st_mtime_ns
    proc = run_cli("train", *PRUNING, cwd=sweep_dir.parent, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Launching" not in proc.stdout + proc.stderr  # the study has its trials already
    assert rundir.metrics_file(pruned).stat().st_mtime_ns == stamp
    assert statuses(sweep_dir) == before
    assert len(load_study(sweep_dir / "optuna.db", "pruning").trials) == 4


def test_two_workers_started_together_share_one_study(tmp_path):
    storage = tmp_path / "shared.db"
    args = ["train", "-m", "hydra/sweeper=cnnbench_optuna", *TINY, "trainer.epochs=1",
            "optimizer.lr=tag(log,interval(0.0001,0.01))", "hydra.sweeper.n_trials=4",
            "hydra.sweeper.pruner.name=none", "hydra.sweeper.study_name=shared",
            f"hydra.sweeper.storage=sqlite:///{storage}"]
    workers = [subprocess.Popen([sys.executable, "-m", "cnnbench", *args,
                                 f"hydra.sweep.dir=worker{i}"], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for i in (1, 2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    study = load_study(storage, "shared")
    assert len(study.trials) == 4 and sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    run_dirs = [Path(t.user_attrs["run_dir"]) for t in study.trials]
    assert len(set(run_dirs)) == 4 and all(rundir.is_run_dir(d) for d in run_dirs)
    found = [d.resolve() for i in (1, 2) for d in rundir.find_run_dirs(tmp_path / f"worker{i}")]
    assert sorted(found) == sorted(run_dirs)  # each trial ran once, in one worker
    for i in (1, 2):
        results = yaml.safe_load((tmp_path / f"worker{i}" / "optimization_results.yaml")
                                 .read_text())
        assert Path(results["best_run_dir"]) in run_dirs and results["n_trials"] == 4
    assert any(f"best run: {study.best_trial.user_attrs['run_dir']}" in out for out in outputs)


def test_a_trial_whose_job_alone_was_stopped_is_resumed_by_the_printed_command(tmp_path):
    """SIGTERM to one job of a search (a process of the parallel launcher): the search goes on
    with its other trials, then ends with that trial unfinished, exit code 1 and the command
    that resumes it; that command, run as printed, finishes the study."""
    import os

    proc = start_and_wait_for_an_epoch(tmp_path, "hydra/launcher=parallel",
                                       "hydra.launcher.n_jobs=1")
    (job,) = [d for d in rundir.find_run_dirs(tmp_path / "search") if saved_an_epoch(d)]
    os.kill(rundir.read_metrics(job)["pid"], signal.SIGTERM)
    wait_for(lambda: rundir.read_metrics(job).get("status") == rundir.INTERRUPTED,
             "the job did not stop")
    let_go(tmp_path)  # the search's other trial trains on
    out, _ = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "1 completed, 0 pruned, 0 failed, 1 unfinished" in out, out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "Run the search again to resume" in line)
    words = shlex.split(lines[at + 1])
    again = run_cli(*words[1:], cwd=tmp_path, timeout=DEADLINE)  # the advice, run as printed
    assert_resumed_and_finished(tmp_path, again)


def open_study_at(url: str, start: float) -> str:
    """In a process of its own: wait for `start`, then open (or create) the study at `url`."""
    import optuna

    from cnnbench.run.study_storage import open_storage

    while time.time() < start:
        pass
    try:
        optuna.create_study(study_name="s", storage=open_storage(url), load_if_exists=True)
    except Exception as err:  # the test reports any error of any process
        return f"{type(err).__name__}: {err}"
    return "ok"


def test_workers_that_open_a_new_sqlite_study_at_the_same_moment_all_succeed(tmp_path):
    """Four processes that create one new SQLite study at once: none finds a table or a schema
    version another one made a moment earlier (they take turns)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        for attempt in range(3):
            url = f"sqlite:///{tmp_path / f'study{attempt}.db'}"
            start = time.time() + 4  # every process imported and waiting
            assert pool.starmap(open_study_at, [(url, start)] * 4) == ["ok"] * 4


def test_a_pruned_run_ends_with_exit_code_zero_and_its_status():
    from cnnbench.endings import ending_of
    from cnnbench.errors import RunPruned

    ending = ending_of(RunPruned("pruned after epoch 1"))
    assert (ending.status, ending.exit_code) == (rundir.PRUNED, 0)
    assert rundir.PRUNED in rundir.FINAL_STATUSES


def test_the_pruned_preset_composes_with_cnnbench_s_sweeper_and_its_pruner():
    from cnnbench.settings.config_files import compose_config

    cfg = compose_config(["hparams_search=lenet_mnist_pruned", "hydra.sweeper.pruner.name="
                          "hyperband"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("cnnbench_search.optuna_search.OptunaSearch")
    assert (sweeper.pruner.name, sweeper.pruner.max_resource, sweeper.n_trials) == (
        "hyperband", None, 20)  # None: the search gives hyperband trainer.epochs
    assert cfg.hydra.runtime.choices.model == "lenet" and "optimizer.lr" in sweeper.params


# a search of two trials, stopped in its first one's second epoch (`start_and_wait_for_an_epoch`)
EPOCHS = 3
STOPPABLE = ["train", "-m", "hydra/sweeper=cnnbench_optuna", *TINY, f"trainer.epochs={EPOCHS}",
             "optimizer.lr=choice(0.001,0.003)", "hydra.sweeper.n_trials=2",
             "hydra.sweeper.pruner.name=none", "hydra.sweeper.study_name=stopped",
             "hydra.sweep.dir=search"]
# A sitecustomize.py for the search: while the file HOLD_MARKER names exists, a training run
# holds at the start of its second epoch (its first one saved in last.pt), so that the test
# stops it in the middle however slow a loaded machine is; deleting the file lets it go on.
HOLD_AFTER_AN_EPOCH = """
import os
import time
import cnnbench.engine.epoch as epoch
real_epoch, started = epoch.train_one_epoch, []
def held(*args, **kwargs):
    while started and os.path.exists(os.environ["HOLD_MARKER"]):
        time.sleep(0.05)
    started.append(True)
    return real_epoch(*args, **kwargs)
epoch.train_one_epoch = held
"""
DEADLINE = 600  # seconds for what a loaded machine does in seconds when idle


def wait_for(condition, failure: str) -> None:
    deadline = time.time() + DEADLINE
    while not condition():
        assert time.time() < deadline, failure
        time.sleep(0.05)


def saved_an_epoch(run: Path) -> bool:
    """The run's last.pt holds a finished epoch: a run killed now resumes from it."""
    return (rundir.last_checkpoint(run).is_file()
            and rundir.read_metrics(run).get("epochs_run", 0) >= 1)


def start_and_wait_for_an_epoch(cwd: Path, *extra: str) -> subprocess.Popen:
    """The search, started and held once its first run has saved an epoch (`let_go` ends the
    hold: the search's runs then train on as usual)."""
    import os

    from helpers import stop_signals_as_in_a_terminal

    hook = cwd / "hold"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_AFTER_AN_EPOCH)
    (cwd / "held").touch()
    env = {**os.environ, "HOLD_MARKER": str(cwd / "held"),
           "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "cnnbench", *STOPPABLE, *extra], cwd=cwd,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, preexec_fn=stop_signals_as_in_a_terminal)

    def saved() -> bool:
        assert proc.poll() is None, proc.communicate()[0]
        return any(saved_an_epoch(d) for d in rundir.find_run_dirs(cwd / "search"))

    wait_for(saved, "no epoch finished in time")
    return proc


def let_go(cwd: Path) -> None:
    (cwd / "held").unlink()


def trials_of(cwd: Path) -> list[tuple[str, int]]:
    """Each trial's state and how many epochs it reported."""
    study = load_study(cwd / "search" / "optuna.db", "stopped")
    return [(t.state.name, len(t.intermediate_values)) for t in study.trials]


def assert_resumed_and_finished(cwd: Path, again: subprocess.CompletedProcess) -> None:
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "resumed 1 job from its last.pt" in out, out
    assert "search: study stopped has 2 trials: 2 completed" in out, out
    assert [state for state, _ in trials_of(cwd)] == ["COMPLETE", "COMPLETE"]  # none replaced
    first = min(rundir.find_run_dirs(cwd / "search"), key=lambda d: d.name)
    assert rundir.read_metrics(first)["epochs_run"] == EPOCHS
    assert rundir.read_metrics(first)["resumed_from_epoch"] == 1, rundir.read_metrics(first)
    assert "sweep: 2 jobs in search: 2 completed" in " ".join(out.split())


def test_a_search_stopped_by_ctrl_c_resumes_its_trial_with_the_printed_command(tmp_path):
    proc = start_and_wait_for_an_epoch(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=DEADLINE)
    let_go(tmp_path)
    assert proc.returncode == 130 and "Traceback" not in out, out
    assert [state for state, _ in trials_of(tmp_path)] == ["RUNNING"]  # stopped, not ended
    assert "unfinished: 1" in (tmp_path / "search" / "optimization_results.yaml").read_text()
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "Continue the search with" in line)
    words = shlex.split(lines[at + 1])
    assert words[:2] == ["cnnbench", "train"], lines[at + 1]
    again = run_cli(*words[1:], cwd=tmp_path, timeout=DEADLINE)  # the advice, run as printed
    assert_resumed_and_finished(tmp_path, again)


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel", "hydra.launcher.n_jobs=1"]],
                         ids=["in-process", "parallel"])
def test_a_search_killed_hard_resumes_its_trial_when_run_again(tmp_path, launcher):
    """SIGKILL to the search's process: nothing could tell the study how the trial ended. The
    same command, run again, takes the trial over and resumes its job from its last.pt, instead
    of leaving it running for ever (and short of a trial)."""
    proc = start_and_wait_for_an_epoch(tmp_path, *launcher)
    proc.kill()
    proc.communicate(timeout=DEADLINE)
    assert [state for state, _ in trials_of(tmp_path)] == ["RUNNING"]
    # a job of the parallel launcher saves and stops when its parent dies
    runs = lambda: rundir.find_run_dirs(tmp_path / "search")  # noqa: E731
    wait_for(lambda: not any(rundir.RunLock(d).owner() for d in runs()),
             "the orphaned job did not stop")
    let_go(tmp_path)
    again = run_cli(*STOPPABLE, *launcher, cwd=tmp_path, timeout=DEADLINE)
    assert_resumed_and_finished(tmp_path, again)


def test_the_sweep_summary_counts_pruned_jobs_without_their_reasons():
    from cnnbench.sweep.outcome import sweep_summary

    text = sweep_summary([("pruned", "pruned after epoch 1 (trial 3)"), ("completed", None),
                          ("pruned", "pruned after epoch 2 (trial 5)")], Path("sw"))
    assert text == "sweep: 3 jobs in sw: 1 completed, 2 pruned"


def test_the_sweeper_is_a_package_of_the_distribution_in_hydra_s_namespace():
    import tomllib
    from conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "hydra_plugins.cnnbench_search" in project["tool"]["setuptools"]["packages"]
    assert not (REPO / "hydra_plugins" / "__init__.py").exists()  # Hydra scans the namespace


def test_a_pruned_trial_resumed_by_hand_shows_success_in_tensorboard_s_hparams(
        pruned_search, tmp_path):
    """TensorBoard keeps the first status a run's events hold: the resume takes the pruned
    row out of the earlier events, so the row says how the run ended now."""
    import shutil

    from tensorboard.plugins.hparams import api_pb2, metadata

    sweep_dir, _ = pruned_search
    pruned = next(d for d, m in statuses(sweep_dir).items() if m["status"] == rundir.PRUNED)
    run = tmp_path / "pruned"
    shutil.copytree(pruned, run)
    proc = run_cli("train", f"trainer.resume={run}", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rundir.read_metrics(run)["status"] == rundir.COMPLETED
    parsed, _ = hparams_of(run)
    assert parsed[metadata.SESSION_END_INFO_TAG].status == api_pb2.STATUS_SUCCESS
