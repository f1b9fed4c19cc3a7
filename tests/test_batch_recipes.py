"""Batch recipes on the device: mixup, CutMix (soft targets), RandAugment and TrivialAugment."""
from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from helpers import ctrl_c_in_epoch
from rich.console import Console
from torch import nn

from cnnbench.data.image_data import Split
from cnnbench.data.loader import DeviceLoader, StreamingLoader
from cnnbench.engine import auto_augment as auto
from cnnbench.engine import mix as mix_module
from cnnbench.engine.augment import BatchAugment
from cnnbench.engine.graphs import loss_and_count
from cnnbench.engine.mix import BatchMix, beta
from cnnbench.run.checkpoint import load_checkpoint
from cnnbench.run.lifecycle import TrainingRun

CPU = torch.device("cpu")
RECIPES = [dict(mixup=0.8, cutmix=1.0, flip=True, crop_padding=4),
           dict(auto_augment="randaugment", auto_ops=2, auto_magnitude=9),
           dict(auto_augment="trivialaugment"),
           dict(auto_augment="randaugment", mixup=0.2, erasing=0.5, rotation=10.0)]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 32, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=gen(seed))


def augmented(aug: BatchAugment, x: torch.Tensor, y: torch.Tensor, seed: int,
              batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """What the loader does with an epoch: per-image numbers, then per-batch mixing."""
    g = gen(seed)
    x = aug.apply(x, aug.draw(x.shape[0], g, CPU))
    if not aug.mixes:
        return x, y
    bounds = [(lo, min(lo + batch, x.shape[0])) for lo in range(0, x.shape[0], batch)]
    return aug.mix_batches(x, y, bounds, aug.draw_mix(len(bounds), g, CPU), 10)


@pytest.mark.parametrize("options", RECIPES)
@pytest.mark.parametrize("channels", [1, 3])
def test_recipes_keep_the_batch_shape_dtype_and_range(options, channels):
    aug = BatchAugment(**options)
    x, y = images(c=channels), torch.randint(0, 10, (32,), generator=gen(1))
    out, targets = augmented(aug, x, y, seed=0)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    if aug.mixes:
        assert targets.shape == (32, 10) and targets.dtype == torch.float32
        torch.testing.assert_close(targets.sum(1), torch.ones(32))


@pytest.mark.parametrize("options", RECIPES)
def test_the_same_seed_gives_the_same_batch_and_another_seed_another(options):
    aug = BatchAugment(**options)
    x, y = images(), torch.randint(0, 10, (32,), generator=gen(1))
    first, again, other = (augmented(aug, x, y, seed) for seed in (3, 3, 4))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment"])
def test_auto_augment_draws_its_ops_per_image(policy):
    x = images(n=1).expand(64, -1, -1, -1).contiguous()  # one image, 64 times
    out = BatchAugment(auto_augment=policy).apply(x, BatchAugment(auto_augment=policy).draw(
        64, gen(), CPU))
    distinct = {tuple(row.flatten()[:64].tolist()) for row in out}
    assert len(distinct) > 10  # the copies went through different ops


@pytest.mark.parametrize("channels", [1, 3])
def test_colour_ops_match_torchvision_on_float_images(channels):
    x = (torch.randint(0, 256, (8, channels, 16, 16), generator=gen()) / 255.0)
    m = torch.full((8,), 0.3)
    expected = {"brightness": TF.adjust_brightness(x, 1.3), "contrast": TF.adjust_contrast(x, 1.3),
                "color": TF.adjust_saturation(x, 1.3), "sharpness": TF.adjust_sharpness(x, 1.3),
                "solarize": TF.solarize(x, 0.7), "autocontrast": TF.autocontrast(x),
                "equalize": TF.equalize(x)}
    for name, want in expected.items():
        torch.testing.assert_close(auto._colour(x, name, m), want, atol=1e-4, rtol=0, msg=name)
    posterized = auto._colour(x, "posterize", torch.full((8,), 4.0))
    torch.testing.assert_close(posterized, TF.posterize(x, 4), atol=1.01 / 255, rtol=0)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_beta_variates_have_the_mean_and_variance_of_beta_alpha_alpha(alpha):
    lam = beta(alpha, torch.rand(100_000, 2 * mix_module.GAMMA_WIDTH, generator=gen()))
    assert lam.min() >= 0 and lam.max() <= 1
    assert lam.mean().item() == pytest.approx(0.5, abs=0.01)
    assert lam.var().item() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)


def test_mixup_blends_each_image_with_its_mirror_in_the_batch():
    mix = BatchMix(mixup=0.8)
    x, y = images(n=8), torch.arange(8)
    u = mix.draw(1, gen(), CPU)
    lam = mix.parameters(u, 16, 16)[0][0]
    mixed, targets = mix(x, y, [(0, 8)], u, 10)
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.flip(0))
    torch.testing.assert_close(targets, lam * F.one_hot(y, 10) + (1 - lam) * F.one_hot(y.flip(0), 10))


def test_cutmix_pastes_a_box_whose_area_is_the_partners_share_of_the_target():
    mix = BatchMix(cutmix=1.0)
    n, size = 6, 20
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, size, size)
    y = torch.arange(n)
    for seed in range(20):
        mixed, targets = mix(x, y, [(0, n)], mix.draw(1, gen(seed), CPU), 10)
        for i in range(n):
            partner = n - 1 - i
            if partner == i:
                continue
            from_partner = (mixed[i, 0] == partner).float().mean()
            assert targets[i, partner].item() == pytest.approx(from_partner.item(), abs=1e-6)
            assert targets[i, i].item() == pytest.approx(1 - from_partner.item(), abs=1e-6)
            assert torch.equal(mixed[i, 0], mixed[i, 1])  # the box spans every channel


def test_a_batch_left_unmixed_is_the_batch_itself_with_one_hot_targets(monkeypatch):
    x, y = images(n=8), torch.arange(8)
    never = BatchMix(mixup=0.8, cutmix=1.0, prob=0.0)
    assert not never.active
    mixed, targets = never(x, y, [(0, 8)], never.draw(1, gen(), CPU), 10)
    assert torch.equal(mixed, x) and torch.equal(targets, F.one_hot(y, 10).float())
    monkeypatch.setattr(mix_module, "beta", lambda alpha, u: torch.ones(u.shape[0]))
    full = BatchMix(mixup=0.8)  # lam == 1: the image keeps all of its weight
    mixed, targets = full(x, y, [(0, 8)], full.draw(1, gen(), CPU), 10)
    assert torch.equal(mixed, x) and torch.equal(targets, F.one_hot(y, 10).float())


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_loss_on_mixed_targets_is_the_mix_of_the_two_labels_losses(smoothing):
    logits = torch.randn(6, 5, generator=gen())
    ya, yb = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([4, 3, 2, 1, 0, 1])
    lam = 0.7
    targets = lam * F.one_hot(ya, 5).float() + (1 - lam) * F.one_hot(yb, 5).float()
    got = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, targets)
    logp = torch.log_softmax(logits, 1)

    def smoothed_ce(y: torch.Tensor) -> torch.Tensor:  # by hand: (1 - eps) NLL + eps mean(-logp)
        return ((1 - smoothing) * -logp[torch.arange(6), y] - smoothing * logp.mean(1)).mean()

    want = lam * smoothed_ce(ya) + (1 - lam) * smoothed_ce(yb)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_training_accuracy_counts_the_label_with_the_larger_share():
    logits = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    targets = torch.tensor([[0.7, 0.3, 0.0], [0.2, 0.0, 0.8], [0.0, 0.6, 0.4]])
    loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
    loss_and_count(logits, targets, nn.CrossEntropyLoss(), loss_sum, correct)
    assert correct.item() == 2


def loader(augment: BatchAugment | None, **options) -> DeviceLoader:
    split = Split((torch.rand(100, 1, 12, 12, generator=gen()) * 255).to(torch.uint8),
                  torch.arange(100) % 10)
    return DeviceLoader(split, 16, CPU, [0.5], [0.25], shuffle=True, seed=7, augment=augment,
                        num_classes=10, **options)


def test_a_whole_epoch_is_mixed_as_batch_by_batch(monkeypatch):
    aug = BatchAugment(mixup=0.8, cutmix=1.0, auto_augment="trivialaugment")
    whole = loader(aug)
    monkeypatch.setattr("cnnbench.data.loader.EPOCH_CHUNK", 40)  # groups of batches
    per_batch = loader(aug)
    per_batch.whole_epoch = False
    assert whole.whole_epoch
    for (xa, ya), (xb, yb) in zip(list(whole), list(per_batch), strict=True):
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ya, yb)
        assert ya.shape == (xa.shape[0], 10)


def test_the_streaming_loader_mixes_as_the_device_loader_does():
    aug = BatchAugment(mixup=0.8, cutmix=1.0, auto_augment="randaugment")
    on_device = loader(aug)
    split = Split(on_device.images, on_device.labels)
    streaming = StreamingLoader(split, 16, CPU, [0.5], [0.25], shuffle=True, seed=7,
                                augment=aug, num_classes=10, num_workers=0)
    for (xa, ya), (xb, yb) in zip(list(on_device), list(streaming), strict=True):
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ya, yb)


def test_epochs_without_augmentation_keep_soft_one_hot_targets():
    plain = loader(BatchAugment(mixup=0.8))
    plain.set_augment(None)
    for x, y in plain:
        assert y.shape == (x.shape[0], 10)
        assert torch.equal(y.sum(1), torch.ones(x.shape[0]))
        assert set(y.flatten().tolist()) <= {0.0, 1.0}
    assert plain.blank_targets(16).shape == (16, 10)


FAST = ["dataset=synthetic", "dataset.train_size=192", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.progress=false", "trainer.device=cpu",
        "evaluation.plots=false", "evaluation.shifts=[]", "trainer.label_smoothing=0.1"]
CHOICES = {"model": "lenet", "dataset": "synthetic", "optimizer": "adam", "scheduler": "none",
           "augmentation": "randaugment"}


def run(compose, run_dir, *overrides) -> dict:
    cfg = compose([*FAST, *overrides])
    return TrainingRun(cfg, run_dir, CHOICES, Console(file=io.StringIO())).execute()


def test_a_resumed_run_with_mixup_and_randaugment_equals_an_uninterrupted_one(
        compose, tmp_path, monkeypatch):
    common = ["trainer.epochs=3", "augmentation=randaugment", "+augmentation.mixup=0.8",
              "+augmentation.cutmix=1.0"]
    straight = run(compose, tmp_path / "straight", *common)
    with ctrl_c_in_epoch(monkeypatch, 3):
        run(compose, tmp_path / "broken", *common)
    resumed = run(compose, tmp_path / "broken", *common, f"trainer.resume={tmp_path / 'broken'}")
    assert resumed["resumed_from_epoch"] == 2
    assert resumed["test/loss"] == straight["test/loss"]
    weights = [load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")["model"]
               for name in ("straight", "broken")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    plain = run(compose, tmp_path / "plain", "trainer.epochs=3", "augmentation=randaugment")
    assert plain["test/loss"] != straight["test/loss"]  # the mixing did change training


@pytest.mark.parametrize("option", ["mixup_cutmix", "randaugment", "trivialaugment"])
def test_training_with_a_batch_recipe_completes(cli, tmp_path, option):
    proc = cli("train", "model=lenet", "dataset=synthetic", "dataset.train_size=128",
               "dataset.test_size=64", "trainer.epochs=1", "trainer.batch_size=32",
               "trainer.device=cpu", f"augmentation={option}", "evaluation.plots=false",
               "evaluation.shifts=[]", "trainer.progress=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout


def test_an_out_of_range_recipe_option_is_one_paragraph(cli, tmp_path):
    proc = cli("train", "dataset=synthetic", "trainer.device=cpu", "augmentation=mixup",
               "augmentation.mix_prob=1.5", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "augmentation.mix_prob=1.5 is not valid: it must be a number from 0 to 1" in \
        proc.stderr + proc.stdout
