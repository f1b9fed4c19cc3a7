"""Fine-tuning options: optimizer.backbone_lr_scale (the backbone at lr x scale, the head at lr)
and trainer.freeze_backbone_epochs (only the head is updated in the first N epochs)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch
from helpers import ctrl_c_in_epoch
from omegaconf import OmegaConf
from torch import nn

from cnnbench.data import DeviceLoader, Split
from cnnbench.engine.finetune import backbone_freeze, head_parameters, split_parameters
from cnnbench.engine.loop import Fit
from cnnbench.engine.runtime import Runtime
from cnnbench.engine.safe_build import build_allowed
from cnnbench.engine.schedule import LRSchedule, build_schedule
from cnnbench.errors import UserError
from cnnbench.models import build_model, model_config, model_names
from cnnbench.models.registry import MODEL_CLASSES
from cnnbench.run.build import build_optimizer, optimizer_config
from cnnbench.settings.trainer import EarlyStopping, TrainerSettings

CPU = torch.device("cpu")
TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false"]
ENV = {**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}


def ids(params) -> list[int]:
    return [id(p) for p in params]


# -- head and backbone --------------------------------------------------------------------------

@pytest.mark.parametrize("name", model_names())
def test_the_head_of_every_cnnbench_model_is_its_output_layer(name):
    torch.manual_seed(0)
    model = build_model(model_config(name), in_channels=3, image_size=[32, 32], num_classes=10)
    head, backbone = split_parameters(model)
    assert head[0].shape[0] == 10  # the Linear that gives the 10 class scores
    assert sorted(ids(head + backbone)) == sorted(ids(model.parameters())) and backbone
    with torch.no_grad():  # the head is the last layer: zeroed, every class score is 0
        for p in head:
            p.zero_()
        model.eval()
        assert torch.count_nonzero(model(torch.randn(2, 3, 32, 32))) == 0


def test_the_model_configs_cover_every_model_class():
    assert {model_config(name)["_target_"] for name in model_names()} == set(MODEL_CLASSES)


class TimmLike(nn.Module):
    """A timm-style model: its head is not its last Linear in modules() order."""

    def __init__(self, pair: bool = False, classes: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(8, classes) if classes else nn.Identity()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
        self.dist = nn.Linear(8, classes) if pair else None
        self.pair = pair

    def get_classifier(self):
        return (self.fc, self.dist) if self.pair else self.fc

    def forward(self, x):
        return self.fc(self.body(x))


class Wrapped(nn.Module):  # DistributedDataParallel's shape: the model is `.module`
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


def test_get_classifier_names_the_head_through_wrappers():
    model = TimmLike()
    assert ids(head_parameters(model)) == ids(model.fc.parameters())
    assert ids(head_parameters(Wrapped(torch.compile(model)))) == ids(model.fc.parameters())
    pair = TimmLike(pair=True)
    assert ids(head_parameters(pair)) == ids([*pair.fc.parameters(), *pair.dist.parameters()])
    assert ids(split_parameters(model)[1]) == ids(model.body.parameters())


@pytest.mark.parametrize("model", [nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()),
                                   TimmLike(classes=0)])
def test_a_model_without_a_head_is_a_user_error(model):
    with pytest.raises(UserError, match="has no classifier head to tell from its backbone"):
        head_parameters(model)


# -- learning rates -----------------------------------------------------------------------------

def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "adadelta"])
def test_backbone_group_trains_at_the_scaled_lr(compose, optimizer):
    model = small_net()
    cfg = compose([f"optimizer={optimizer}", "optimizer.backbone_lr_scale=0.1"])
    opt = build_optimizer(cfg, model)
    head, backbone = opt.param_groups
    assert ids(head["params"]) == ids(model[4].parameters())
    assert ids(backbone["params"]) == ids([*model[0].parameters(), *model[1].parameters()])
    assert head["lr"] == cfg.optimizer.lr and head["lr_scale"] == 1.0
    assert backbone["lr"] == pytest.approx(0.1 * cfg.optimizer.lr) and backbone["lr_scale"] == 0.1
    assert type(opt).__name__.lower() == optimizer
    one = build_optimizer(compose([f"optimizer={optimizer}"]), model)  # 1.0: as before
    assert len(one.param_groups) == 1 and "lr_scale" not in one.param_groups[0]
    assert ids(one.param_groups[0]["params"]) == ids(model.parameters())


def test_linear_lr_scaling_keeps_the_ratio(compose):
    cfg = compose(["optimizer=sgd", "optimizer.lr=0.01", "optimizer.backbone_lr_scale=0.1",
                   "trainer.scale_lr=linear", "trainer.batch_size=512"])
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    opt = build_optimizer(optimizer_config(cfg, settings), small_net())
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.04, 0.004])


def test_a_stored_config_without_the_key_is_one_group(compose):
    stored = OmegaConf.to_container(compose(["optimizer=adam"]), resolve=True)
    del stored["optimizer"]["backbone_lr_scale"]  # a checkpoint's config from before the option
    cfg = OmegaConf.create(stored)
    assert len(build_optimizer(cfg, small_net()).param_groups) == 1


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine", "plateau"])
def test_schedules_keep_the_ratio_at_every_step(compose, scheduler):
    extra = ["scheduler.patience=0"] if scheduler == "plateau" else []
    cfg = compose(["optimizer=sgd", "optimizer.backbone_lr_scale=0.1", f"scheduler={scheduler}",
                   *extra])
    opt = build_optimizer(cfg, small_net())
    schedule = build_schedule(build_allowed(cfg.scheduler, "scheduler"), opt, 4, 10)
    lrs = []
    for epoch in range(4):
        for _ in range(10):
            opt.step()  # no gradients: nothing moves, the schedule is what is tested
            schedule.after_batch()
            lrs.append([g["lr"] for g in opt.param_groups])
        schedule.after_epoch(1.0)  # never improves: plateau halves the lr
    assert len({round(head, 12) for head, _ in lrs}) > 2  # the lr did change
    assert all(backbone == pytest.approx(0.1 * head, rel=1e-9, abs=1e-15)
               for head, backbone in lrs)
    if scheduler == "onecycle":
        assert max(head for head, _ in lrs) == pytest.approx(cfg.optimizer.lr, rel=1e-3)


# -- freezing -----------------------------------------------------------------------------------

def tiny_loader() -> DeviceLoader:
    gen = torch.Generator().manual_seed(1)
    split = Split(torch.randint(0, 255, (64, 1, 8, 8), dtype=torch.uint8, generator=gen),
                  torch.randint(0, 3, (64,), generator=gen))
    return DeviceLoader(split, 16, CPU, (0.5,), (0.5,), shuffle=True, seed=3)


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("make", [
    lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.5),
])
def test_a_frozen_backbone_stays_still_then_trains(make):
    model = small_net()
    optimizer = make(model.parameters())
    head, backbone = split_parameters(model)
    freeze = backbone_freeze(model, 1, 3, note=lambda *a, **k: None)
    fit = Fit(model, optimizer, LRSchedule(None), nn.CrossEntropyLoss(),
              Runtime(CPU, None, False), tiny_loader(), None, 3, EarlyStopping(), freeze=freeze)
    start = snapshot(model.state_dict().values()), snapshot(head), snapshot(backbone)
    seen = []

    def on_epoch_end(row, is_best):
        seen.append((snapshot(head), snapshot(backbone), dict(optimizer.state),
                     [p.grad is not None for p in backbone]))

    fit.run(on_epoch_end)
    (head1, backbone1, state1, grads1), (head2, backbone2, state2, _) = seen[:2]
    assert same(backbone1, start[2])  # bit for bit, weight decay included
    assert not same(head1, start[1])
    assert all(grads1)  # gradients were computed and put back after each step
    assert not any(p in state1 for p in backbone) and all(p in state1 for p in head)
    assert not torch.equal(model[1].running_mean, start[0][2])  # BatchNorm statistics adapt
    # every backbone parameter moves once unfrozen, but the conv's bias: BatchNorm right after
    # it takes the mean out, so its gradient is zero (exactly, or to rounding)
    assert not any(torch.equal(a, b) for p, a, b in zip(backbone, backbone2, backbone1)
                   if p is not model[0].bias)
    assert all(p in state2 for p in backbone)  # its optimizer state starts at unfreezing
    assert not same(head2, head1)


def test_freezing_every_epoch_says_the_backbone_never_trains():
    notes = []
    freeze = backbone_freeze(small_net(), 3, 3, note=lambda text, kind="note": notes.append(text))
    assert freeze.frozen_in(3) and not freeze.frozen_in(4)
    assert len(notes) == 1 and "the backbone never trains" in notes[0]
    assert backbone_freeze(small_net(), 0, 3, note=notes.append) is None and len(notes) == 1


def test_interrupted_and_resumed_equals_uninterrupted(compose, tmp_path, monkeypatch):
    from cnnbench.run.lifecycle import TrainingRun

    options = [*TINY, "model=lenet", "scheduler=onecycle", "trainer.epochs=2",
               "optimizer.backbone_lr_scale=0.1", "trainer.freeze_backbone_epochs=1"]
    choices = {"model": "lenet", "dataset": "synthetic"}
    straight = TrainingRun(compose(options), tmp_path / "straight", choices).execute()

    run = tmp_path / "broken"
    with ctrl_c_in_epoch(monkeypatch, 2):
        TrainingRun(compose(options), run, choices).execute()
    last = run / "checkpoints" / "last.pt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    resumed = TrainingRun(compose([*options, f"trainer.resume={last}"]), run, choices).execute()
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_run"] == 2
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert resumed["test/loss"] == straight["test/loss"]
    assert [g["lr_scale"] for g in b["optimizer"]["param_groups"]] == [1.0, 0.1]


# -- identities ---------------------------------------------------------------------------------

def test_the_new_keys_at_their_defaults_leave_a_runs_identity_as_before(compose):
    from cnnbench.commands.compare.identity import identity
    from cnnbench.settings.identity import config_hash

    new = compose(["model=mlp"])
    old = OmegaConf.to_container(new)  # a run's config from before the two options
    del old["optimizer"]["backbone_lr_scale"], old["trainer"]["freeze_backbone_epochs"]
    assert config_hash(OmegaConf.create(old)) == config_hash(new)
    assert identity(old, None, {}) == identity(OmegaConf.to_container(new), None, {})
    for change in ("optimizer.backbone_lr_scale=0.1", "trainer.freeze_backbone_epochs=1"):
        changed = compose(["model=mlp", change])
        assert config_hash(changed) != config_hash(new), change
        assert (identity(OmegaConf.to_container(changed), None, {})
                != identity(OmegaConf.to_container(new), None, {})), change


# -- the command line ---------------------------------------------------------------------------

def train(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnbench", "train", *TINY, *args],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)


def test_a_fine_tuning_run_completes(tmp_path):
    proc = train(tmp_path, "model=lenet", "optimizer=adam", "scheduler=none",
                 "optimizer.backbone_lr_scale=0.1", "trainer.freeze_backbone_epochs=1",
                 "trainer.epochs=2", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [float(r["lr"]) for r in rows] == [0.001, 0.001]  # the head's: the configured lr
    groups = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["optimizer"][
        "param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.0001])


@pytest.mark.parametrize("arg,named", [
    ("optimizer.backbone_lr_scale=0", "trainer.freeze_backbone_epochs=N"),
    ("trainer.freeze_backbone_epochs=-1", "0 or more"),
])
def test_bad_values_are_one_paragraph(tmp_path, arg, named):
    proc = train(tmp_path, "model=mlp", "trainer.epochs=1", arg, "hydra.run.dir=run")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "\n" not in text.strip(), text
    assert text.startswith(f"error: {arg} is not valid"), text
    assert named in text
    assert not (tmp_path / "run").exists()
