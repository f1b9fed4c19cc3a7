"""trainer.ema_decay (a moving average of the weights) and trainer.plain_last_epochs."""
from __future__ import annotations

import io

import pytest
import torch
from helpers import ctrl_c_in_epoch
from rich.console import Console
from torch import nn

from cnnbench.engine import loop as train_module
from cnnbench.engine.ema import WeightEMA, averaged_weights
from cnnbench.run.checkpoint import load_checkpoint
from cnnbench.run.lifecycle import TrainingRun

FAST = ["dataset=synthetic", "dataset.train_size=384", "dataset.test_size=256",
        "trainer.batch_size=64", "trainer.progress=false", "trainer.device=cpu",
        "evaluation.plots=false", "evaluation.shifts=[]"]
CHOICES = {"model": "lenet", "dataset": "synthetic", "optimizer": "adam", "scheduler": "none",
           "augmentation": "none"}


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 3))


def train_steps(model: nn.Module, ema: WeightEMA, steps: int) -> list[dict]:
    """`steps` SGD steps on random data; the model's state after each (a copy)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    states = []
    for i in range(steps):
        x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(i))
        model(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
        ema.after_step()
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return states


@pytest.mark.parametrize("every", [1, 3])
def test_average_follows_the_formula(every):
    model = small_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = WeightEMA(model, decay=0.9, every=every)
    states = train_steps(model, ema, 7)
    expected = {k: v.clone() for k, v in start.items() if v.is_floating_point()}
    updates = 0
    for step, state in enumerate(states, 1):
        if step % every:
            continue
        updates += 1
        d = min(0.9, (1 + updates) / (10 + updates)) ** every
        for k in expected:
            expected[k] = d * expected[k] + (1 - d) * state[k]
    shadow = ema.state_dict()["shadow"]
    assert set(shadow) == set(expected)  # weights and BatchNorm statistics, not the int counter
    assert "1.running_mean" in shadow and "1.num_batches_tracked" not in shadow
    for k in expected:
        torch.testing.assert_close(shadow[k], expected[k])
    assert not torch.equal(shadow["3.weight"], states[-1]["3.weight"])  # not the live model
    assert ema.updates == 7 // every


def test_swap_apply_and_state_round_trip():
    model = small_model()
    ema = WeightEMA(model, decay=0.5)
    train_steps(model, ema, 3)
    live = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.swapped():
        for k, v in ema.state_dict()["shadow"].items():
            assert torch.equal(model.state_dict()[k], v)
    for k, v in model.state_dict().items():
        assert torch.equal(v, live[k])  # put back

    other = small_model()
    copy = WeightEMA(other, decay=0.5)
    copy.load_state_dict(ema.state_dict())
    assert (copy.steps, copy.updates) == (3, 3)
    copy.apply()
    for k, v in ema.state_dict()["shadow"].items():
        assert torch.equal(other.state_dict()[k], v)
    with pytest.raises(ValueError, match="different model"):
        WeightEMA(nn.Linear(2, 2), 0.5).load_state_dict(ema.state_dict())


def run(compose, run_dir, *overrides):
    cfg = compose([*FAST, *overrides])
    return TrainingRun(cfg, run_dir, CHOICES, Console(file=io.StringIO())).execute()


def test_a_run_tests_and_saves_the_average(compose, tmp_path, monkeypatch):
    common = ["trainer.epochs=2", "trainer.early_stopping.restore_best=false"]
    plain = run(compose, tmp_path / "plain", *common)
    averaged = run(compose, tmp_path / "ema", *common, "trainer.ema_decay=0.9")
    assert averaged["test/loss"] != plain["test/loss"]
    last = load_checkpoint(tmp_path / "ema" / "checkpoints" / "last.pt")
    assert last["ema"]["steps"] == 2 * 6  # 384 images in batches of 64, two epochs
    assert load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt")["ema"] is None

    # `cnnbench eval` of the checkpoint scores what the run scored: the averaged weights
    from cnnbench.commands.eval import evaluate_checkpoint

    monkeypatch.chdir(tmp_path)
    checked = evaluate_checkpoint([f"checkpoint={tmp_path / 'ema' / 'checkpoints' / 'last.pt'}",
                                   f"out={tmp_path / 'eval'}"], Console(file=io.StringIO()))
    assert checked["test/loss"] == pytest.approx(averaged["test/loss"], abs=1e-6)
    weights = averaged_weights(last)
    assert set(weights) == set(last["model"])
    assert all(not torch.equal(weights[k], last["model"][k]) for k in last["ema"]["shadow"])


def test_resumed_run_with_average_equals_uninterrupted(compose, tmp_path, monkeypatch):
    common = ["trainer.epochs=3", "trainer.ema_decay=0.8", "trainer.ema_every=2",
              "augmentation=flip_crop"]
    straight = run(compose, tmp_path / "straight", *common)
    with ctrl_c_in_epoch(monkeypatch, 3):
        run(compose, tmp_path / "broken", *common)
    resumed = run(compose, tmp_path / "broken", *common,
                  f"trainer.resume={tmp_path / 'broken'}")
    assert resumed["resumed_from_epoch"] == 2
    assert resumed["test/loss"] == straight["test/loss"]
    assert resumed["test/acc"] == straight["test/acc"]


def test_plain_last_epochs_turn_augmentation_off(compose, tmp_path, monkeypatch):
    from cnnbench.engine.augment import BatchAugment

    augmented_epochs = []
    real_apply = BatchAugment.apply

    def counting_apply(self, x, params):
        augmented_epochs.append(len(epochs_started))
        return real_apply(self, x, params)

    epochs_started = []
    real_epoch = train_module.train_one_epoch

    def counting_epoch(*args, **kwargs):
        epochs_started.append(1)
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(BatchAugment, "apply", counting_apply)
    monkeypatch.setattr(train_module, "train_one_epoch", counting_epoch)
    metrics = run(compose, tmp_path, "trainer.epochs=3", "trainer.plain_last_epochs=1",
                  "augmentation=flip_crop", "trainer.val_split=0")
    assert metrics["epochs_run"] == 3
    assert sorted(set(augmented_epochs)) == [1, 2]  # the third epoch saw the images as they are
