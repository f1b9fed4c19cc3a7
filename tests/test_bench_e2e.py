"""bench/e2e.py: a tiny CPU run of one row as a separate process, and a row skipped for its data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import load_script

REPO = Path(__file__).resolve().parents[1]
E2E = REPO / "bench" / "e2e.py"
TINY = ("trainer.device=cpu trainer.epochs=1 dataset=synthetic dataset.train_size=256 "
        "dataset.test_size=128 trainer.progress=false evaluation.plots=false")


def load_e2e():
    return load_script(E2E, "bench_e2e")


def test_cpu_row_records_timings_and_command(tmp_path):
    out = tmp_path / "e2e.json"
    proc = subprocess.run([sys.executable, str(E2E), "--rows", "mlp", "--extra", TINY,
                           "--workdir", str(tmp_path / "runs"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cnnbench train model=mlp" in proc.stdout and "device: cpu" in proc.stdout
    data = json.loads(out.read_text())
    assert data["device"] == "cpu" and data["extra"] == TINY.split()
    [row] = data["rows"]
    assert row["row"] == "mlp" and row["status"] == "ok"
    assert row["command"].startswith("cnnbench train model=mlp ")
    assert row["command"].endswith(TINY) and "trainer.epochs=10" not in row["command"]
    assert row["argv"][:4] == [sys.executable, "-m", "cnnbench", "train"]
    assert row["target_met"] is None  # targets hold for the issue's own commands only
    [run] = row["runs"]
    assert run["exit_code"] == 0 and run["status"] == "completed"
    assert run["device"] == "cpu" and run["amp"] == "off" and run["cuda_graph"] is not None
    assert 0.0 <= run["test_acc"] <= 1.0 and run["images_per_s"] > 0
    assert run["startup_from"] == "metrics" and run["startup_seconds"] > 0
    assert run["training_seconds"] > 0 and run["testing_seconds"] >= 0
    assert run["wall_seconds"] >= run["startup_seconds"] + run["training_seconds"]
    assert run["after_training_seconds"] >= run["testing_seconds"]
    assert abs(run["startup_seconds"] + run["training_seconds"] + run["after_training_seconds"]
               - run["wall_seconds"]) < 0.01
    assert row["wall_seconds"] == {"median": run["wall_seconds"], "values": [run["wall_seconds"]]}
    assert Path(run["run_dir"]).is_relative_to(tmp_path / "runs" / "mlp_0")


def test_row_without_its_data_is_skipped(tmp_path, capsys):
    e2e = load_e2e()
    out = tmp_path / "e2e.json"
    code = e2e.main(["--rows", "fashion_speedrun", "--data-root", str(tmp_path / "none"),
                     "--workdir", str(tmp_path / "runs"), "--out", str(out)])
    assert code == 0
    assert "skipped: FashionMNIST data not found" in capsys.readouterr().out
    [row] = json.loads(out.read_text())["rows"]
    assert row["status"] == "skipped" and "FashionMNIST" in row["reason"]
    assert "runs" not in row and "wall_seconds" not in row
    assert not (tmp_path / "runs").exists()


def test_extra_overrides_replace_the_rows_own():
    e2e = load_e2e()
    args = e2e.row_arguments(e2e.ROWS["sweep"], ["trainer.epochs=1", "trainer.device=cpu"])
    assert args == ["-m", "model=mlp,lenet,cnn2", "optimizer=sgd,adam,adadelta",
                    "trainer.epochs=1", "trainer.device=cpu"]
