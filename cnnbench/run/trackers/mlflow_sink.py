"""A run in MLflow: its options as params, the epochs' metrics (step = epoch), the test
metrics, the pictures as artifacts and the final status as the tag `status`. A sweep's jobs
are nested runs of one parent run named after the sweep folder."""
from __future__ import annotations

import contextlib
import os
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from cnnbench.rundir import COMPLETED, INTERRUPTED, PRUNED

HEALTH_SECONDS = 5.0
SWEEP_TAG, PARENT_TAG = "sweep", "cnnbench.sweep_parent"
RUN_STATES = {COMPLETED: "FINISHED", PRUNED: "FINISHED", INTERRUPTED: "KILLED"}  # others: FAILED


def _quick_failures() -> None:
    """An unreachable server fails a call in seconds, not after minutes of retries (unless
    the user set these)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _check_reachable(uri: str) -> None:
    if uri.startswith(("http://", "https://")):
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_SECONDS):
            pass


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One job at a time creates a sweep's parent run (parallel jobs start together)."""
    try:
        import fcntl
    except ImportError:  # no file locks (Windows): jobs start one by one there
        yield
        return
    with open(folder / ".mlflow.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class MlflowSink:
    name = "MLflow"

    def __init__(self, options: Mapping[str, Any], params: Mapping[str, Any],
                 tags: Mapping[str, str], run_dir: Path, sweep: Path | None) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = str(options.get("tracking_uri") or "./mlruns")
        _quick_failures()
        _check_reachable(uri)
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment = self._experiment(str(options.get("experiment") or "cnnbench"))
        tags = {**tags, "run_dir": str(run_dir.resolve())}
        if sweep is not None:
            tags.update({SWEEP_TAG: sweep.name, "mlflow.parentRunId": self._parent(sweep)})
        self.run_id = self.client.create_run(self.experiment, run_name=run_dir.name,
                                             tags=tags).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def _experiment(self, name: str) -> str:
        """The experiment's id; created by the first run (or the first of runs starting
        together: the others find the one it made)."""
        for _ in range(3):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            try:
                return self.client.create_experiment(name)
            except Exception:  # noqa: BLE001 (another process created it meanwhile)
                continue
        raise RuntimeError(f"the experiment {name!r} could be neither found nor created")

    def _parent(self, sweep: Path) -> str:
        """The sweep's parent run: found by its tags, created by the first job."""
        with _locked(sweep):
            query = f"tags.`{PARENT_TAG}` = '{sweep.resolve()}'".replace("\\", "/")
            found = self.client.search_runs([self.experiment], query, max_results=1)
            if found:
                return found[0].info.run_id
            parent = self.client.create_run(self.experiment, run_name=sweep.name, tags={
                PARENT_TAG: str(sweep.resolve()).replace("\\", "/"), SWEEP_TAG: sweep.name})
            self.client.set_terminated(parent.info.run_id, "FINISHED")
            return parent.info.run_id

    def epoch(self, row: Mapping[str, Any]) -> None:
        self._metrics(row, int(row["epoch"]))

    def _metrics(self, values: Mapping[str, Any], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()
                   if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, metrics: Mapping[str, Any], status: str, files: Sequence[Path]) -> None:
        """The test metrics, the files, the status; then the run ends in MLflow."""
        try:
            tests = {k: v for k, v in metrics.items() if k.startswith(("test/", "shift/"))}
            self._metrics(tests, int(metrics.get("epochs_run") or 0))
            for path in files:
                self.client.log_artifact(self.run_id, str(path))
        finally:
            self.client.set_tag(self.run_id, "status", status)
            self.client.set_terminated(self.run_id, RUN_STATES.get(status, "FAILED"))
