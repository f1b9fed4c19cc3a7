"""Batched data augmentation on the device, with random parameters drawn per image.

Images arrive as float tensors in [0, 1] (B x C x H x W) on the training device; every operation
works on the whole batch at once. Areas moved in from outside the image are filled with 0.

Hand-written (affine_grid/grid_sample and index arithmetic) rather than kornia: on an H100, at
batch size 512, the same four pipelines ran 4.8x to 38x faster than kornia 0.9.0's
AugmentationSequential (bench/augment_speed.py; the table is in docs/fast.md). Kornia samples
parameters per call through its own generators and global RNG, with much Python around few
kernels. Here the random numbers of all images come from one `torch.rand` call on the device,
drawn from the loader's own generator (a run's augmentation depends on its seed alone); nothing
goes back to the host (no `.item()`, no `torch.linalg.inv`, whose error check waits for the GPU);
and the loaders apply it to a whole epoch at once (`draw` then `apply`), so it costs nothing per
training step.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from cnnbench.engine.auto_augment import POLICIES, auto_augment, width
from cnnbench.engine.mix import BatchMix


def _rand(x: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """B x n uniform numbers in [0, 1), drawn on the generator's device, returned on x's device."""
    return torch.rand(x.shape[0], n, device=gen.device, generator=gen).to(x.device)


class BatchAugment:
    """Random flip, crop-with-padding, RandAugment/TrivialAugment, affine (rotation, shift, zoom,
    shear) and erasing, per image, in this order; then mixup/CutMix, per batch.

    Args:
        flip: mirror each image left-right with probability 0.5.
        crop_padding: random crop of the original size from the image padded by this many pixels
            (an integer shift of up to ±crop_padding px in each direction).
        rotation: maximum rotation in degrees (uniform in ±rotation).
        translate: maximum shift as a fraction of width/height (uniform in ±translate).
        scale: maximum zoom change (scale uniform in [1 - scale, 1 + scale]).
        shear: maximum horizontal shear factor (uniform in ±shear).
        erasing: probability of erasing one random rectangle (2%-33% of the area, zero-filled).
        auto_augment: none, randaugment or trivialaugment (engine/auto_augment.py).
        auto_ops: RandAugment's ops per image.
        auto_magnitude: RandAugment's magnitude bin (0-30).
        mixup, cutmix: alpha of each method's Beta(alpha, alpha) (0: off; engine/mix.py).
        mix_prob: probability that a batch is mixed.
        mix_switch: with both on, the probability that a mixed batch uses CutMix.
    """

    def __init__(self, flip: bool = False, crop_padding: int = 0, rotation: float = 0.0,
                 translate: float = 0.0, scale: float = 0.0, shear: float = 0.0,
                 erasing: float = 0.0, auto_augment: str = "none", auto_ops: int = 2,
                 auto_magnitude: int = 9, mixup: float = 0.0, cutmix: float = 0.0,
                 mix_prob: float = 1.0, mix_switch: float = 0.5) -> None:
        check_recipes(auto_augment, auto_ops, auto_magnitude, mixup, cutmix, mix_prob, mix_switch)
        for name, value in dict(crop_padding=crop_padding, rotation=rotation, translate=translate,
                                scale=scale, shear=shear, erasing=erasing).items():
            if value < 0:
                raise ValueError(f"augmentation.{name} must be >= 0, got {value}")
        if scale >= 1:
            raise ValueError(f"augmentation.scale must be < 1 (a zoom range of 1±scale), got {scale}")
        if erasing > 1:
            raise ValueError(f"augmentation.erasing is a probability (<= 1), got {erasing}")
        self.flip = bool(flip)
        self.crop_padding = int(crop_padding)
        self.rotation = float(rotation)
        self.translate = float(translate)
        self.scale = float(scale)
        self.shear = float(shear)
        self.erasing = float(erasing)
        self.auto_augment = str(auto_augment)
        self.auto_ops, self.auto_magnitude = int(auto_ops), int(auto_magnitude)
        self.mix = BatchMix(mixup, cutmix, mix_prob, mix_switch)

    @property
    def active(self) -> bool:
        return any([self.flip, self.crop_padding, self.rotation, self.translate, self.scale,
                    self.shear, self.erasing, self.auto_augment != "none", self.mixes])

    @property
    def mixes(self) -> bool:
        """Whether batches are mixed (mixup/CutMix): the loader then gives soft targets."""
        return self.mix.active

    def draw_mix(self, batches: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """The mixing numbers of `batches` batches (one row each), in one call."""
        return self.mix.draw(batches, gen, device)

    def mix_batches(self, x: torch.Tensor, y: torch.Tensor, bounds: Sequence[tuple[int, int]],
                    u: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batches x[lo:hi] of `bounds` mixed (row i of `u` for batch i), and soft targets."""
        return self.mix(x, y, bounds, u, num_classes)

    @property
    def _affine(self) -> bool:
        return bool(self.rotation or self.translate or self.scale or self.shear)

    @property
    def _widths(self) -> list[int]:
        """Uniform numbers each image needs, per operation: [flip, shift, affine, erasing, auto]."""
        return [1 if self.flip else 0, 2 if self.crop_padding else 0, 5 if self._affine else 0,
                5 if self.erasing else 0, width(self.auto_augment, self.auto_ops)]

    def draw(self, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """The random numbers of `n` images (n x k, one row per image), in one call."""
        u = torch.rand(n, sum(self._widths), device=gen.device, generator=gen)
        return u.to(device)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if not self.active:
            return x
        return self.apply(x, self.draw(x.shape[0], gen, x.device))

    def apply(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Augment each image x[i] with its own numbers u[i] (from `draw`). Images do not interact,
        so a batch, or a whole epoch at once, gives each image the same result."""
        if not self.active:
            return x
        flip_u, shift_u, affine_u, erase_u, auto_u = torch.split(u, self._widths, dim=1)
        if self.flip:
            x = flip(x, flip_u)
        if self.crop_padding:
            x = shift(x, self.crop_padding, shift_u)
        if self.auto_augment != "none":
            x = auto_augment(x, auto_u, self.auto_augment, self.auto_ops, self.auto_magnitude)
        if self._affine:
            x = affine(x, self.rotation, self.translate, self.scale, self.shear, affine_u)
        if self.erasing:
            x = erase(x, self.erasing, erase_u)
        return x

    def __repr__(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items()
                 if v and k not in ("mix", "auto_ops", "auto_magnitude") and v != "none"]
        if self.auto_augment != "none":
            parts.append(f"auto_ops={self.auto_ops}, auto_magnitude={self.auto_magnitude}")
        if self.mixes:
            parts.append(repr(self.mix))
        return f"BatchAugment({', '.join(parts) or 'none'})"


def check_recipes(auto_augment: str, auto_ops: int, auto_magnitude: int, mixup: float,
                  cutmix: float, mix_prob: float, mix_switch: float) -> None:
    """The RandAugment/TrivialAugment and mixup/CutMix options are in range (ValueError if not)."""
    if auto_augment not in POLICIES:
        raise ValueError(f"augmentation.auto_augment must be one of {', '.join(POLICIES)}, "
                         f"got {auto_augment!r}")
    if not 1 <= int(auto_ops) <= 10:
        raise ValueError(f"augmentation.auto_ops must be 1 to 10, got {auto_ops}")
    if not 0 <= int(auto_magnitude) <= 30:
        raise ValueError(f"augmentation.auto_magnitude is a bin of 0 to 30, got {auto_magnitude}")
    for name, value in dict(mixup=mixup, cutmix=cutmix).items():
        if value < 0:
            raise ValueError(f"augmentation.{name} is the alpha of a Beta(alpha, alpha) "
                             f"distribution: >= 0 (0: off), got {value}")
    for name, value in dict(mix_prob=mix_prob, mix_switch=mix_switch).items():
        if not 0 <= value <= 1:
            raise ValueError(f"augmentation.{name} is a probability (0 to 1), got {value}")


# -- the operations, each taking its uniform numbers (B x k) so one draw serves the whole batch --

def flip(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose u < 0.5 (u: B x 1)."""
    return torch.where((u < 0.5).view(-1, 1, 1, 1), x.flip(3), x)


def shift(x: torch.Tensor, padding: int, u: torch.Tensor) -> torch.Tensor:
    """Random crop of size H x W from the zero-padded image: a per-image integer shift (u: B x 2)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    d = torch.floor(u * (2 * padding + 1)).long().clamp_(max=2 * padding)  # B x 2 in [0, 2p]
    rows = torch.arange(h, device=x.device) + d[:, 0:1]  # B x H
    cols = torch.arange(w, device=x.device) + d[:, 1:2]  # B x W
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def affine(x: torch.Tensor, rotation: float, translate: float, scale: float, shear: float,
           u: torch.Tensor) -> torch.Tensor:
    """Rotate, shift, zoom and shear each image about its centre by its own amounts (u: B x 5)."""
    lo = u.new_tensor([-rotation * math.pi / 180, 1 - scale, -shear, -translate, -translate])
    hi = u.new_tensor([rotation * math.pi / 180, 1 + scale, shear, translate, translate])
    angle, zoom, shear_x, tx, ty = (lo + (hi - lo) * u).unbind(1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map A = zoom * R(angle) @ [[1, shear], [0, 1]], then a shift (2*t: grid coordinates
    # span [-1, 1]). affine_grid wants the inverse map (output -> input); a 2x2 inverse in closed
    # form, since torch.linalg.inv waits for the GPU to check for singular matrices.
    a, b = cos * zoom, (cos * shear_x - sin) * zoom
    c, d = sin * zoom, (sin * shear_x + cos) * zoom
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    sx, sy = 2 * tx, 2 * ty
    theta = torch.stack([ia, ib, -(ia * sx + ib * sy), ic, id_, -(ic * sx + id_ * sy)], 1)
    grid = F.affine_grid(theta.view(-1, 2, 3).to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def erase(x: torch.Tensor, p: float, u: torch.Tensor) -> torch.Tensor:
    """With probability p per image, zero one rectangle of 2%-33% of it, aspect 0.3-3.3 (u: B x 5)."""
    b, _, h, w = x.shape
    area = (0.02 + 0.31 * u[:, 0]) * (h * w)
    log_ratio = math.log(0.3) + (math.log(3.3) - math.log(0.3)) * u[:, 1]
    eh = torch.sqrt(area * torch.exp(log_ratio)).clamp(1, h)
    ew = torch.sqrt(area / torch.exp(log_ratio)).clamp(1, w)
    top = u[:, 2] * (h - eh)
    left = u[:, 3] * (w - ew)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    box = ((ys >= top[:, None, None]) & (ys < (top + eh)[:, None, None])
           & (xs >= left[:, None, None]) & (xs < (left + ew)[:, None, None]))
    apply = (u[:, 4] < p)[:, None, None]
    return x.masked_fill((box & apply)[:, None], 0.0)


# -- one operation at a time, drawing its own numbers (for tests and interactive use) --

def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return flip(x, _rand(x, 1, gen))


def random_shift(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    return shift(x, padding, _rand(x, 2, gen))


def random_affine(x: torch.Tensor, rotation: float, translate: float, scale: float, shear: float,
                  gen: torch.Generator) -> torch.Tensor:
    return affine(x, rotation, translate, scale, shear, _rand(x, 5, gen))


def random_erasing(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    return erase(x, p, _rand(x, 5, gen))
