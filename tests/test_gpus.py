"""The parallel launcher spreads a sweep's jobs over the GPUs: each job sees one GPU alone
(CUDA_VISIBLE_DEVICES, set in its own process), more jobs than GPUs share them in turn.

On a machine without GPUs the GPU list comes from CUDA_VISIBLE_DEVICES (which the launcher reads
as CUDA does) or from an NVML count replaced through a sitecustomize; the jobs run on the CPU and
say in their metrics.json which GPU they were given."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydra_plugins.cnnbench_launcher._gpus import (
    gives_its_own_gpu,
    pick_gpu,
    use_gpu,
    visible_gpus,
)

TINY = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "trainer.epochs=1", "model=mlp"]


def started_one_after_another(gpus: list[str], jobs: int) -> list[str | None]:
    """The GPU of each job when each starts while all the earlier ones still run."""
    busy: list[str | None] = []
    for _ in range(jobs):
        busy.append(pick_gpu(gpus, busy))
    return busy


def test_jobs_take_the_gpus_in_turn():
    assert started_one_after_another(visible_gpus({}, count=lambda: 2), 9) == \
        ["0", "1", "0", "1", "0", "1", "0", "1", "0"]
    assert started_one_after_another(visible_gpus({"CUDA_VISIBLE_DEVICES": "3,5"}), 5) == \
        ["3", "5", "3", "5", "3"]


def test_a_new_job_goes_where_fewest_jobs_run():
    assert pick_gpu(["0", "1"], ["0", "0", "1"]) == "1"  # job 1 on GPU 1 ended early
    assert pick_gpu(["0", "1"], ["1"]) == "0"


@pytest.mark.parametrize("listed,gpus", [
    ("3,5", ["3", "5"]), (" 2 , 0 ", ["2", "0"]), ("GPU-8a1b,GPU-77ff", ["GPU-8a1b", "GPU-77ff"]),
    ("", []), ("-1", []), ("0,-1,2", ["0"]),  # CUDA stops at the first invalid entry
])
def test_cuda_visible_devices_is_the_list_when_set(listed, gpus):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": listed}, count=lambda: 8) == gpus


def test_no_gpu_leaves_the_environment_as_it_was(monkeypatch):
    assert visible_gpus({}, count=lambda: 0) == []
    assert pick_gpu([], []) is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    use_gpu(None)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_a_job_that_names_its_gpu_keeps_it():
    assert gives_its_own_gpu("cuda:1") and gives_its_own_gpu("CUDA:0")
    assert not any(gives_its_own_gpu(d) for d in ("auto", "cuda", "cpu", None))


def visible_devices(sweep: Path) -> list[str | None]:
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()),
                  key=lambda p: int(p.name.partition("_")[0]))
    return [json.loads((j / "metrics.json").read_text())["visible_devices"] for j in jobs]


def test_forked_jobs_see_the_listed_gpus(tmp_path, cli):
    proc = cli("train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *TINY,
               "trainer.seed=1,2,3", "hydra.sweep.dir=sw", cwd=tmp_path,
               env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = visible_devices(tmp_path / "sw")
    assert seen[:2] == ["3", "5"] and seen[2] in ("3", "5"), seen
    assert "jobs spread over 2 GPUs, one each (CUDA_VISIBLE_DEVICES=3,5)" in proc.stdout + proc.stderr


TWO_GPUS = """
import hydra_plugins.cnnbench_launcher._gpus as gpus
gpus.nvml_gpu_count = lambda: 2
"""


def test_forked_jobs_see_one_of_the_counted_gpus(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(TWO_GPUS)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "cnnbench", "train", "-m",
                           "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *TINY,
                           "trainer.seed=1,2,3", "hydra.sweep.dir=sw"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = visible_devices(tmp_path / "sw")
    assert seen[:2] == ["0", "1"] and seen[2] in ("0", "1"), seen
