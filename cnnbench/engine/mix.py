"""Mixup and CutMix on the device: each image of a batch mixed with its partner, with soft targets.

The recipe is timm's (Mixup, mode "batch"): per batch, with probability `prob`, one mixing weight
lam ~ Beta(alpha, alpha) and one choice between mixup (the whole images blended, lam and 1 - lam)
and CutMix (a box of area (1 - lam) pasted from the partner, lam then recomputed from the box as
clipped by the image's border). An image's partner is the image at the mirrored position of its
batch (the first with the last, ...): the batch order is random already, so no draw is needed.
Under DDP each process mixes its own share of the batch, with the batch's shared numbers.
The targets become lam * one_hot(y) + (1 - lam) * one_hot(y_partner); `nn.CrossEntropyLoss` with
those probabilities and `label_smoothing=eps` computes lam * CE_eps(y) + (1 - lam) *
CE_eps(y_partner), the label smoothing of timm's SoftTargetCrossEntropy on smoothed targets.

All of an epoch's per-batch numbers come from one `torch.rand` call on the loader's augmentation
generator (`draw`), so mixing follows the seed and resumes identically; Beta variates are made from
those uniforms (Marsaglia and Tsang's gamma method, with a fixed number of candidates per
variate), never from torch's global generator, and nothing goes back to the host.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

CANDIDATES = 6  # Marsaglia-Tsang tries per gamma variate (each accepted with p >= 0.95)
GAMMA_WIDTH = 3 * CANDIDATES + 1  # two uniforms per normal (Box-Muller), one to accept, one boost


def _gamma(shape: float, u: torch.Tensor) -> torch.Tensor:
    """Gamma(shape, 1) variates, one per row of the uniforms `u` (rows x GAMMA_WIDTH)."""
    boosted = shape < 1  # Gamma(a) = Gamma(a + 1) * U^(1/a)
    a = shape + 1 if boosted else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    u1, u2, u3 = (u[:, i * CANDIDATES:(i + 1) * CANDIDATES] for i in range(3))
    z = torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2 * math.pi * u2)  # standard normals
    v = (1 + c * z) ** 3
    ok = (v > 0) & (torch.log1p(-u3) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-30)))
    first = torch.argmax(ok.to(torch.uint8), dim=1, keepdim=True)  # the first accepted candidate
    g = torch.where(ok.any(1, keepdim=True), d * v.gather(1, first), torch.full_like(first, d,
                                                                                     dtype=v.dtype))
    g = g.squeeze(1)
    if boosted:
        g = g * (1 - u[:, -1]).clamp_min(1e-12) ** (1.0 / shape)
    return g


def beta(alpha: float, u: torch.Tensor) -> torch.Tensor:
    """Beta(alpha, alpha) variates, one per row of `u` (rows x 2 * GAMMA_WIDTH)."""
    g1, g2 = _gamma(alpha, u[:, :GAMMA_WIDTH]), _gamma(alpha, u[:, GAMMA_WIDTH:])
    return g1 / (g1 + g2).clamp_min(1e-30)


def mirrored(x: torch.Tensor, bounds: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Each batch x[lo:hi] of `bounds` (consecutive, from 0) in reverse order: the partners.
    Batches of one size are reversed together (a view and one flip), a smaller last one apart."""
    size = bounds[0][1] - bounds[0][0]
    full = 0
    while full < len(bounds) and bounds[full][1] - bounds[full][0] == size:
        full += 1
    end = full * size
    head = x[:end].flip(0) if full == 1 else x[:end].unflatten(0, (full, size)).flip(1).flatten(0, 1)
    parts = [head]
    parts += [x[lo:hi].flip(0) for lo, hi in bounds[full:]]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class BatchMix:
    """Mixup and/or CutMix of whole batches (see the module's text).

    Args:
        mixup: alpha of mixup's Beta(alpha, alpha) (0: no mixup).
        cutmix: alpha of CutMix's Beta(alpha, alpha) (0: no CutMix).
        prob: probability that a batch is mixed at all.
        switch: with both on, the probability that a mixed batch uses CutMix rather than mixup.
    """

    WIDTH = 4 + 4 * GAMMA_WIDTH  # apply, switch, box centre (2); a Beta variate for each method

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0, prob: float = 1.0,
                 switch: float = 0.5) -> None:
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.prob, self.switch = float(prob), float(switch)

    @property
    def active(self) -> bool:
        return bool(self.mixup or self.cutmix) and self.prob > 0

    def draw(self, batches: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """The random numbers of `batches` batches (one row each), in one call."""
        u = torch.rand(batches, self.WIDTH, device=gen.device, generator=gen)
        return u.to(device)

    def parameters(self, u: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, ...]:
        """Per batch: lam (the share of each image's own label), whether it is CutMix, and the
        box rows [y1, y2) and columns [x1, x2) (empty for mixup or an unmixed batch)."""
        half = 2 * GAMMA_WIDTH
        mix_lam = beta(self.mixup, u[:, 4:4 + half]) if self.mixup else torch.ones_like(u[:, 0])
        cut_lam = beta(self.cutmix, u[:, 4 + half:]) if self.cutmix else torch.ones_like(u[:, 0])
        apply = u[:, 0] < self.prob
        use_cut = (u[:, 1] < self.switch) if (self.mixup and self.cutmix) else (
            torch.full_like(apply, bool(self.cutmix)))
        use_cut = use_cut & apply
        ratio = torch.sqrt(1 - cut_lam)
        cut_h, cut_w = (height * ratio).floor(), (width * ratio).floor()
        cy, cx = (u[:, 2] * height).floor(), (u[:, 3] * width).floor()
        y1 = (cy - torch.div(cut_h, 2, rounding_mode="floor")).clamp(0, height)
        y2 = (cy + torch.div(cut_h, 2, rounding_mode="floor")).clamp(0, height)
        x1 = (cx - torch.div(cut_w, 2, rounding_mode="floor")).clamp(0, width)
        x2 = (cx + torch.div(cut_w, 2, rounding_mode="floor")).clamp(0, width)
        y2, x2 = torch.where(use_cut, y2, y1), torch.where(use_cut, x2, x1)
        box_lam = 1 - (y2 - y1) * (x2 - x1) / (height * width)
        lam = torch.where(use_cut, box_lam, torch.where(apply, mix_lam, torch.ones_like(mix_lam)))
        return lam, use_cut, y1, y2, x1, x2

    def __call__(self, x: torch.Tensor, y: torch.Tensor, bounds: Sequence[tuple[int, int]],
                 u: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix each batch x[lo:hi] of `bounds` with its numbers u[i] (from `draw`); returns the
        mixed images and the soft targets (N x num_classes, rows summing to 1)."""
        _, _, h, w = x.shape
        dev = x.device
        sizes = torch.tensor([hi - lo for lo, hi in bounds])
        batch = torch.repeat_interleave(torch.arange(len(bounds)), sizes).to(dev)
        lam, use_cut, y1, y2, x1, x2 = (t[batch] for t in self.parameters(u[:len(bounds)], h, w))
        lam = lam.to(x.dtype)
        # mixup's blend (lam = 1 leaves an image exactly as it is), then CutMix's boxes, whose
        # images have lam of 1 in the blend
        partner = mirrored(x, bounds)
        mixed = x
        if self.mixup:
            keep = torch.where(use_cut, 1.0, lam).view(-1, 1, 1, 1)
            mixed = x * keep + partner * (1 - keep)
        if self.cutmix:
            rows = torch.arange(h, device=dev)[None, :, None]
            cols = torch.arange(w, device=dev)[None, None, :]
            inside = ((rows >= y1[:, None, None]) & (rows < y2[:, None, None])
                      & (cols >= x1[:, None, None]) & (cols < x2[:, None, None]))  # N x H x W
            mixed = torch.where(inside[:, None], partner, mixed)
        own = F.one_hot(y, num_classes).to(x.dtype)
        targets = torch.lerp(mirrored(own, bounds), own, lam[:, None])
        return mixed, targets

    def __repr__(self) -> str:
        return (f"BatchMix(mixup={self.mixup}, cutmix={self.cutmix}, prob={self.prob}, "
                f"switch={self.switch})")
