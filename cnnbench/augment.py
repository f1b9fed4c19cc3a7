"""Batched data augmentation on the device, with random parameters drawn per image.

Images arrive as float tensors in [0, 1] (B x C x H x W) on the training device; every operation
works on the whole batch at once. Areas moved in from outside the image are filled with 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, device=gen.device, generator=gen).to(like.device)
    return low + (high - low) * u


class BatchAugment:
    """Random flip, crop-with-padding, affine (rotation, shift, zoom, shear) and erasing.

    Args:
        flip: mirror each image left-right with probability 0.5.
        crop_padding: random crop of the original size from the image padded by this many pixels
            (an integer shift of up to ±crop_padding px in each direction).
        rotation: maximum rotation in degrees (uniform in ±rotation).
        translate: maximum shift as a fraction of width/height (uniform in ±translate).
        scale: maximum zoom change (scale uniform in [1 - scale, 1 + scale]).
        shear: maximum horizontal shear factor (uniform in ±shear).
        erasing: probability of erasing one random rectangle (2%-33% of the area, zero-filled).
    """

    def __init__(self, flip: bool = False, crop_padding: int = 0, rotation: float = 0.0,
                 translate: float = 0.0, scale: float = 0.0, shear: float = 0.0,
                 erasing: float = 0.0) -> None:
        for name, value in dict(crop_padding=crop_padding, rotation=rotation, translate=translate,
                                scale=scale, shear=shear, erasing=erasing).items():
            if value < 0:
                raise ValueError(f"augmentation.{name} must be >= 0, got {value}")
        if scale >= 1:
            raise ValueError(f"augmentation.scale must be < 1 (a zoom range of 1±scale), got {scale}")
        self.flip = bool(flip)
        self.crop_padding = int(crop_padding)
        self.rotation = float(rotation)
        self.translate = float(translate)
        self.scale = float(scale)
        self.shear = float(shear)
        self.erasing = float(erasing)

    @property
    def active(self) -> bool:
        return any([self.flip, self.crop_padding, self.rotation, self.translate, self.scale,
                    self.shear, self.erasing])

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.flip:
            x = random_flip(x, gen)
        if self.crop_padding:
            x = random_shift(x, self.crop_padding, gen)
        if self.rotation or self.translate or self.scale or self.shear:
            x = random_affine(x, self.rotation, self.translate, self.scale, self.shear, gen)
        if self.erasing:
            x = random_erasing(x, self.erasing, gen)
        return x

    def __repr__(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items() if v]
        return f"BatchAugment({', '.join(parts) or 'none'})"


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = _uniform(x.shape[0], 0, 1, x, gen) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


def random_shift(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Random crop of size H x W from the zero-padded image: a per-image integer shift."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.floor(_uniform(b, 0, 2 * padding + 1, x, gen)).long().clamp_(max=2 * padding)
    dx = torch.floor(_uniform(b, 0, 2 * padding + 1, x, gen)).long().clamp_(max=2 * padding)
    rows = (torch.arange(h, device=x.device) + dy[:, None])  # B x H
    cols = (torch.arange(w, device=x.device) + dx[:, None])  # B x W
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def random_affine(x: torch.Tensor, rotation: float, translate: float, scale: float, shear: float,
                  gen: torch.Generator) -> torch.Tensor:
    """Rotate, shift, zoom and shear each image about its centre by its own random amounts."""
    b = x.shape[0]
    angle = _uniform(b, -rotation, rotation, x, gen) * (math.pi / 180)
    zoom = _uniform(b, 1 - scale, 1 + scale, x, gen)
    shear_x = _uniform(b, -shear, shear, x, gen)
    tx = _uniform(b, -translate, translate, x, gen) * 2  # grid coordinates span [-1, 1]
    ty = _uniform(b, -translate, translate, x, gen) * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    # forward map A = R(angle) @ Shear @ zoom; affine_grid wants the inverse (output -> input).
    a = torch.stack([torch.stack([cos, cos * shear_x - sin], -1),
                     torch.stack([sin, sin * shear_x + cos], -1)], -2) * zoom[:, None, None]
    inv = torch.linalg.inv(a)
    shift = torch.stack([tx, ty], -1)[..., None]
    theta = torch.cat([inv, -inv @ shift], dim=2)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erasing(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per image, zero one rectangle covering 2%-33% of it (aspect 0.3-3.3)."""
    b, _, h, w = x.shape
    area = _uniform(b, 0.02, 0.33, x, gen) * h * w
    log_ratio = _uniform(b, math.log(0.3), math.log(3.3), x, gen)
    eh = torch.sqrt(area * torch.exp(log_ratio)).clamp(1, h)
    ew = torch.sqrt(area / torch.exp(log_ratio)).clamp(1, w)
    top = _uniform(b, 0, 1, x, gen) * (h - eh)
    left = _uniform(b, 0, 1, x, gen) * (w - ew)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    box = ((ys >= top[:, None, None]) & (ys < (top + eh)[:, None, None])
           & (xs >= left[:, None, None]) & (xs < (left + ew)[:, None, None]))
    apply = (_uniform(b, 0, 1, x, gen) < p)[:, None, None]
    return x.masked_fill((box & apply)[:, None], 0.0)
