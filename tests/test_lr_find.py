"""The learning-rate finder: the range test in the engine, its suggestion, `cnnbench lr-find`
and `cnnbench train optimizer.lr=auto`."""
from __future__ import annotations

import copy
import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from helpers import assert_png, trained_run
from omegaconf import OmegaConf
from torch import nn

from cnnbench.engine.distributed import DistInfo
from cnnbench.engine.lr_range import lr_at, range_test, set_lr
from cnnbench.engine.lr_suggestion import suggest
from cnnbench.engine.runtime import make_runtime
from cnnbench.errors import UserError
from cnnbench.run.build import assemble
from cnnbench.settings.identity import config_hash
from cnnbench.settings.learning_rate import check_lr
from cnnbench.settings.trainer import TrainerSettings

CPU = make_runtime("cpu", "off", False)
TINY = ["dataset=synthetic", "model=mlp", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.epochs=1"]


def blobs(n: int = 512, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two overlapping Gaussian classes in 10 dimensions, in batches of 32: SGD trains a small
    MLP on them at any lr from 1e-2 to 1, and lr 10 makes the loss NaN."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 10, generator=g) + (2 * y[:, None] - 1) * 0.7
    return [(x[i:i + 32], y[i:i + 32]) for i in range(0, n, 32)]


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))


def loss_after_training(lr: float, batches) -> float:
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(3):
        for x, y in batches:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return sum(nn.functional.cross_entropy(model(x), y).item() for x, y in batches)


def test_the_suggestion_lands_in_the_range_where_training_works():
    batches = blobs()
    start = loss_after_training(0.0, batches)
    assert all(loss_after_training(lr, batches) < start for lr in (1e-2, 0.1, 1.0))
    assert math.isnan(loss_after_training(10.0, batches))  # the known range ends before 10
    model = mlp()
    test = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      CPU, batches, start_lr=1e-5, end_lr=100.0, num_steps=100)
    found = suggest(test.lrs, test.smoothed)
    assert found is not None and found.method == "minimum/10"
    assert 1e-2 <= found.lr <= 2.0, found  # well below 10, where training fails
    assert loss_after_training(found.lr, batches) < start
    assert found.lr == pytest.approx(found.minimum_lr / 10)
    assert found.steepest_lr <= found.minimum_lr


def test_a_loss_that_runs_away_stops_the_test_early():
    model = mlp()
    test = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      CPU, blobs(), start_lr=1e-5, end_lr=1e4, num_steps=200)
    assert test.diverged and test.steps < 200
    assert test.lrs[-1] < 1e4
    last, lowest = test.smoothed[-1], min(test.smoothed)
    assert not math.isfinite(last) or last > 4 * lowest
    assert all(s <= 4 * lowest for s in test.smoothed[:-1])  # it stopped at the first one


def test_the_lr_rises_exponentially_and_every_group_follows_it():
    assert lr_at(0, 100, 1e-7, 10) == pytest.approx(1e-7)
    assert lr_at(99, 100, 1e-7, 10) == pytest.approx(10)
    assert lr_at(33, 100, 1e-7, 10) / lr_at(32, 100, 1e-7, 10) == pytest.approx(
        lr_at(90, 100, 1e-7, 10) / lr_at(89, 100, 1e-7, 10))
    model = mlp()
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr_scale": 0.1},
                                 {"params": model[2].parameters()}], lr=1.0)
    set_lr(optimizer, 0.5)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.5])


def test_a_loss_that_never_falls_gets_no_suggestion():
    lrs = [lr_at(i, 50, 1e-7, 10) for i in range(50)]
    assert suggest(lrs, [1.0 + i / 50 for i in range(50)]) is None
    assert suggest(lrs[:2], [2.0, 1.0]) is None


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
    "adadelta": lambda p: torch.optim.Adadelta(p, lr=1.0),
}


def same_state(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_model_and_optimizer_are_restored_bit_for_bit(name):
    model, batches = mlp(), blobs()
    optimizer = OPTIMIZERS[name](model.parameters())
    x, y = batches[0]  # a step first: the optimizer has state of its own to keep
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    model.eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [(p.grad, p.grad.clone()) for p in model.parameters()]
    saved = copy.deepcopy(optimizer.state_dict())
    rng = torch.get_rng_state()
    test = range_test(model, optimizer, nn.CrossEntropyLoss(), CPU, batches, num_steps=30)
    assert test.steps == 30
    assert same_state(model.state_dict(), weights) and not model.training
    assert all(p.grad is g and torch.equal(g, v) for p, (g, v) in zip(model.parameters(), grads))
    assert optimizer.state_dict()["param_groups"] == saved["param_groups"]
    assert same_state(optimizer.state_dict()["state"], saved["state"]) and saved["state"]
    assert torch.equal(torch.get_rng_state(), rng)


def built(compose, *overrides: str):
    cfg = compose([*TINY, *overrides])
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    notes: list[str] = []
    parts = assemble(cfg, settings, DistInfo(), model_name="mlp",
                     note=lambda text, kind="note": notes.append(text))
    return parts, notes


@pytest.mark.parametrize("optimizer,scheduler", [("sgd", "onecycle"), ("adam", "cosine"),
                                                 ("adamw", "onecycle"), ("adadelta", "cosine")])
def test_the_test_runs_every_optimizer_and_leaves_the_scheduler_alone(compose, optimizer,
                                                                      scheduler):
    parts, _ = built(compose, f"optimizer={optimizer}", f"scheduler={scheduler}")
    fit = parts.fit
    schedule = fit.schedule.state_dict()
    lrs = [g["lr"] for g in fit.optimizer.param_groups]
    test = range_test(parts.model, fit.optimizer, fit.loss_fn, parts.runtime,
                      parts.loaders["train"], num_steps=20, scaler=parts.scaler)
    assert test.steps >= 10 and test.lrs == sorted(test.lrs)
    assert all(math.isfinite(loss) for loss in test.losses[:10])
    assert fit.schedule.state_dict() == schedule  # not stepped by the test
    assert [g["lr"] for g in fit.optimizer.param_groups] == lrs


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_lr_auto_starts_from_the_same_weights_and_optimizer_state(compose, scheduler):
    auto, notes = built(compose, "optimizer=sgd", f"scheduler={scheduler}", "optimizer.lr=auto")
    lr = auto.lr_find["suggested_lr"]
    assert any(f"optimizer.lr=auto chose {lr:.3g}" in note for note in notes)
    given, _ = built(compose, "optimizer=sgd", f"scheduler={scheduler}", f"optimizer.lr={lr!r}")
    assert same_state(auto.model.state_dict(), given.model.state_dict())
    assert same_state(auto.fit.optimizer.state_dict(), given.fit.optimizer.state_dict())
    assert same_state(auto.fit.schedule.state_dict(), given.fit.schedule.state_dict())
    assert same_state(auto.loaders["train"].state_dict(), given.loaders["train"].state_dict())
    if scheduler == "onecycle":  # max_lr is ${optimizer.lr}: the rate found
        assert auto.fit.schedule.scheduler.optimizer.param_groups[0]["max_lr"] == lr


def test_a_resumed_auto_run_reuses_the_recorded_rate(compose, monkeypatch):
    def no_test(*args, **kwargs):
        raise AssertionError("the range test ran again")

    monkeypatch.setattr("cnnbench.run.lr_auto.range_test", no_test)
    cfg = compose([*TINY, "optimizer.lr=auto"])
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    record = {"suggested_lr": 0.0123, "method": "minimum/10", "num_steps": 100,
              "start_lr": 1e-7, "end_lr": 10.0}
    parts = assemble(cfg, settings, DistInfo(), model_name="mlp", note=lambda *a, **k: None,
                     resuming=True, lr_found=record)
    assert parts.lr_find == record
    assert parts.fit.optimizer.param_groups[0]["initial_lr"] == 0.0123
    with pytest.raises(UserError, match="no usable lr_find record"):
        assemble(cfg, settings, DistInfo(), model_name="mlp", note=lambda *a, **k: None,
                 resuming=True, lr_found=None)


def test_lr_auto_is_its_own_identity_and_the_only_word_accepted(compose):
    auto = config_hash(compose([*TINY, "optimizer.lr=auto"]))
    assert auto == config_hash(compose([*TINY, "optimizer.lr=auto"]))
    assert auto != config_hash(compose([*TINY, "optimizer.lr=0.01"]))
    check_lr("auto")
    check_lr(0.01)
    for wrong in ("Auto", "fast", 0, -1.0, True):
        with pytest.raises(UserError, match="optimizer.lr=auto"):
            check_lr(wrong)


def test_lr_auto_refuses_to_run_its_test_in_several_processes(compose):
    from cnnbench.run.lr_auto import auto_lr

    cfg = compose([*TINY, "optimizer.lr=auto"])
    with pytest.raises(UserError, match="cnnbench lr-find"):
        auto_lr(cfg, lambda c: None, mlp(), blobs(), nn.CrossEntropyLoss(), CPU, None,
                DistInfo(rank=0, world_size=2), lambda *a, **k: None)


# -- the commands, as a user runs them -----------------------------------------------------------
def test_lr_find_writes_its_picture_and_curve_and_prints_the_suggestion(cli, tmp_path):
    proc = cli("lr-find", *TINY, "num_steps=60", "out=found", cwd=tmp_path,
               env={"COLUMNS": "80"}, check=True)
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines if not line.startswith(("picture", "curve")))
    suggested = next(line for line in lines if line.startswith("suggested lr: "))
    lr = float(suggested.split()[2])
    assert "lowest loss" in suggested and any(ln.startswith("steepest:") for ln in lines)
    assert_png(tmp_path / "found" / "lr_find.png")
    rows = (tmp_path / "found" / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "lr,loss,smoothed_loss"
    values = [[float(v) for v in row.split(",")] for row in rows[1:]]
    assert 10 <= len(values) <= 60 and values[0][0] == pytest.approx(1e-7)
    assert values[0][1] == values[0][2]  # the first smoothed loss is the first loss
    assert min(v[0] for v in values) <= lr <= max(v[0] for v in values)


def test_lr_find_refuses_to_overwrite_an_earlier_test(cli, tmp_path):
    (tmp_path / "found").mkdir()
    (tmp_path / "found" / "lr_find.csv").write_text("mine\n")
    proc = cli("lr-find", *TINY, "out=found", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "never replaces files" in out and "out=DIR" in out and "Traceback" not in out
    assert (tmp_path / "found" / "lr_find.csv").read_text() == "mine\n"
    assert not (tmp_path / "found" / "lr_find.png").exists()


@pytest.mark.parametrize("arg,says", [("optimizer.lrr=0.1", "optimizer.lr"),
                                      ("num_steps=3", "num_steps=3 is not valid"),
                                      ("end_lr=1e-9", "is not above start_lr")])
def test_a_bad_option_of_lr_find_is_one_paragraph(cli, tmp_path, arg, says):
    proc = cli("lr-find", *TINY, arg, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert says in out and "Traceback" not in out
    assert len(out.strip().split("\n\n")) == 1
    assert not (tmp_path / "outputs").exists()


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    return trained_run(tmp_path_factory, [*TINY, "optimizer=sgd", "optimizer.lr=auto",
                                          "hydra.run.dir=run"])


def test_train_with_lr_auto_records_the_rate_and_trains_as_with_it_given(auto_run, cli,
                                                                         tmp_path, compose):
    metrics = json.loads((auto_run / "metrics.json").read_text())
    found = metrics["lr_find"]
    assert set(found) >= {"suggested_lr", "method", "num_steps", "start_lr", "end_lr"}
    assert found["method"] == "minimum/10" and found["num_steps"] == 100
    assert metrics["lr"] == "auto" and metrics["status"] == "completed"
    identity = (auto_run / "config_hash").read_text().strip()
    assert identity == config_hash(compose([*TINY, "optimizer=sgd", "optimizer.lr=auto"]))
    lr = found["suggested_lr"]
    cli("train", *TINY, "optimizer=sgd", f"optimizer.lr={lr!r}", "hydra.run.dir=given",
        cwd=tmp_path, check=True)
    given = json.loads((tmp_path / "given" / "metrics.json").read_text())
    assert given["last_epoch_metrics"]["lr"] == metrics["last_epoch_metrics"]["lr"] == lr
    assert given["last_epoch_metrics"]["train/loss"] == metrics["last_epoch_metrics"]["train/loss"]
    assert given["test/loss"] == metrics["test/loss"]


def test_a_resumed_auto_run_takes_its_recorded_rate_without_a_new_test(auto_run, cli,
                                                                      tmp_path):
    run = shutil.copytree(auto_run, tmp_path / "run")
    first = json.loads((run / "metrics.json").read_text())["lr_find"]
    proc = cli("train", *[a for a in TINY if a != "trainer.epochs=1"], "optimizer=sgd",
               "optimizer.lr=auto", "trainer.epochs=2", f"trainer.resume={run}",
               cwd=tmp_path, check=True)
    assert "resuming at the rate this run found" in proc.stdout
    assert "optimizer.lr=auto chose" not in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["lr_find"] == first and metrics["epochs_run"] == 2
    assert "lr_find" not in metrics["phase_seconds"]


def test_tab_completion_offers_lr_finds_options_and_trains_overrides():
    from cnnbench.commands.completion import query

    assert query("cnnbench lr-find num", ["lr-find"]) == ["num_steps="]
    assert "optimizer=sgd" in query("cnnbench lr-find model=mlp optimizer=", ["lr-find"])


@pytest.mark.parametrize("curve, too_high", [("lr_find_lenet_sgd_mnist.csv", 0.115),
                                             ("lr_find_lenet_sgd_mnist_mixup_cutmix.csv", 0.509)])
def test_the_suggestion_stays_below_rates_measured_to_stall_lenet(curve, too_high):
    """Curves `cnnbench lr-find model=lenet optimizer=sgd [augmentation=mixup_cutmix]` drew on
    MNIST. Trained 2 epochs at the steepest descent of each (0.115, 0.509), LeNet-5 stayed at
    chance level (11.35% test accuracy); at a tenth of the lowest loss's rate (0.0614, with
    mixup and CutMix) it reached 92.6%."""
    with open(Path(__file__).parent / "data" / curve) as f:
        rows = list(csv.DictReader(f))
    found = suggest([float(r["lr"]) for r in rows], [float(r["smoothed_loss"]) for r in rows])
    assert found is not None and found.steepest_lr == pytest.approx(too_high, rel=0.01)
    assert found.lr < too_high / 5


def test_an_auto_run_whose_record_is_lost_resumes_with_the_rate_the_advice_asks_for(tmp_path):
    from conftest import run_cli

    args = ["model=mlp", "dataset=synthetic", "dataset.train_size=256", "dataset.test_size=32",
            "trainer.device=cpu", "trainer.epochs=1", "trainer.progress=false",
            "evaluation.plots=false", "optimizer=sgd", "optimizer.lr=auto", "hydra.run.dir=run"]
    run_cli("train", *args, cwd=tmp_path, check=True)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    del metrics["lr_find"]
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(metrics))
    refused = run_cli("train", "trainer.resume=run", "trainer.epochs=2", cwd=tmp_path)
    text = " ".join(refused.stdout.split())
    assert refused.returncode == 2 and "the same command plus optimizer.lr=<value>" in text, text
    done = run_cli("train", "trainer.resume=run", "trainer.epochs=2", "optimizer.lr=0.01",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    after = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert after["status"] == "completed" and after["epochs_run"] == 2, after
