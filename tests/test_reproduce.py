"""bench/reproduce.py's pieces (no training here: the script itself is run by hand, see --quick)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "reproduce.py"
MNIST_PRESETS = {"lenet_mnist", "lenet_mnist_keras", "lenet_mnist_keras_affine", "mlp_mnist",
                 "mlp_mnist_affine", "net1_mnist", "net2_mnist"}


@pytest.fixture(scope="module")
def rep():
    yield load_script(SCRIPT, "reproduce")
    del sys.modules["reproduce"]


def test_default_presets_are_the_mnist_ones(rep):
    assert set(rep.default_presets()) == MNIST_PRESETS
    preset = rep.load_preset("lenet_mnist")
    assert (preset.dataset, preset.epochs, preset.seed_notebook) == ("mnist", 10, "004")
    assert preset.reported_test_acc == 0.988 and preset.shape == (1, 28, 28, 10)


def test_train_command(rep, tmp_path):
    preset = rep.load_preset("mlp_mnist")  # 20 epochs
    cmd = rep.train_command(preset, 2, tmp_path, 0.5, False, ["trainer.amp=off"])
    assert cmd[1:5] == ["-m", "cnnbench", "train", "experiment=mlp_mnist"]
    assert {"trainer.seed=2", "trainer.epochs=10", f"hydra.run.dir={tmp_path}"} <= set(cmd)
    assert cmd[-1] == "trainer.amp=off"
    assert "trainer.epochs=1" in rep.train_command(preset, 0, tmp_path, 0.001, False, [])
    quick = rep.train_command(rep.load_preset("net1_mnist"), 0, tmp_path, 1.0, True, [])
    assert {"dataset=synthetic", "dataset.channels=1", "dataset.image_size=28",
            "dataset.num_classes=10", "trainer.epochs=1", "trainer.device=cpu"} <= set(quick)


def test_read_and_summarize_runs(rep, tmp_path):
    accs = {0: 0.990, 1: 0.986, 2: 0.985}
    runs = []
    for seed, acc in accs.items():
        run_dir = tmp_path / f"seed{seed}"
        run_dir.mkdir()
        (run_dir / "metrics.json").write_text(json.dumps(
            {"status": "completed", "test/acc": acc, "device": "NVIDIA H100", "epochs_run": 10}))
        runs.append(rep.read_run(run_dir, seed, 0))
    runs.append(rep.read_run(tmp_path / "missing", 3, 1))
    assert runs[-1]["status"] == "no metrics.json (exit 1)" and runs[-1]["test_acc"] is None
    result = rep.summarize(rep.load_preset("lenet_mnist"), runs)
    assert result.n == 3 and result.mean == pytest.approx(0.987)
    assert result.std == pytest.approx(0.002645751, rel=1e-6)  # sample std
    assert (result.min, result.max) == (0.985, 0.990)
    assert result.gap_points == pytest.approx(-0.1)
    half = 4.302652729749464 * 0.002645751 / 3 ** 0.5  # Student t(0.975, 2) x std / sqrt(n)
    assert (result.ci95_low, result.ci95_high) == (pytest.approx(0.987 - half, rel=1e-5),
                                                   pytest.approx(0.987 + half, rel=1e-5))
    assert result.verdict == "matches"  # 0.988 lies in 0.987 ± 0.0066
    assert rep.ours(result) == "98.70 ± 0.66"
    assert result.device == "NVIDIA H100"
    assert rep.summarize(rep.load_preset("lenet_mnist"), runs, quick=True).gap_points is None


def test_arguments(rep):
    args, extra = rep.parse_args(["--quick", "trainer.amp=off"])
    assert args.out == rep.QUICK_OUT and extra == ["trainer.amp=off"]
    args, _ = rep.parse_args(["--presets", "lenet_mnist", "--seeds", "0", "1", "--epochs-scale",
                              "0.5"])
    assert args.out == rep.DEFAULT_OUT and args.seeds == [0, 1] and args.epochs_scale == 0.5
    with pytest.raises(SystemExit):
        rep.parse_args(["--epoch-scale", "2"])
