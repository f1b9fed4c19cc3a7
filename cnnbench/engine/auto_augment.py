"""RandAugment and TrivialAugment (wide), drawn per image and applied to the whole batch at once.

The op list and magnitude ranges are torchvision's (transforms.v2.RandAugment, 31 magnitude bins,
and TrivialAugmentWide). Each image draws, for each of its op slots (RandAugment: `num_ops`,
TrivialAugment: one), an op, a sign and (TrivialAugment) a magnitude bin from the uniforms it is
given. A slot's geometric ops (shear, translate, rotate) become one affine matrix per image and one
grid_sample for the images that drew one; each colour op runs on the images that drew it, with
their own magnitudes (an index per op: on CUDA each waits for the device once, and the loaders
augment a whole epoch, in chunks of images, at once). Images are floats in [0, 1] (before normalization); areas moved in are
filled with 0. Differences from torchvision: shears turn about the image's centre (torchvision's
about its top-left corner); on one-channel images Color (saturation) leaves the image as it is,
as torchvision's does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness",
       "color", "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize")
GEOMETRIC = OPS[1:6]
SIGNED = {"shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color",
          "contrast", "sharpness"}
BINS = 31
POLICIES = ("none", "randaugment", "trivialaugment")


def magnitude_range(policy: str, op: str, size: int) -> float:
    """The largest magnitude of `op` (bin BINS - 1) in `policy`, for images of side `size`."""
    wide = policy == "trivialaugment"
    if op in ("shear_x", "shear_y"):
        return 0.99 if wide else 0.3
    if op in ("translate_x", "translate_y"):
        return 32.0 if wide else 150.0 / 331.0 * size
    if op == "rotate":
        return 135.0 if wide else 30.0
    if op in ("brightness", "color", "contrast", "sharpness"):
        return 0.99 if wide else 0.9
    if op == "posterize":
        return 6.0 if wide else 4.0  # bits removed at the top bin
    if op == "solarize":
        return 1.0  # the threshold falls from 1 to 0
    return 0.0


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x.mean(1, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (other + factor.view(-1, 1, 1, 1) * (x - other)).clamp(0, 1)


def _sharpen_source(x: torch.Tensor) -> torch.Tensor:
    """PIL's smoothing filter (centre 5, neighbours 1, over 13), border pixels kept."""
    c = x.shape[1]
    kernel = x.new_ones(3, 3)
    kernel[1, 1] = 5.0
    kernel = (kernel / 13.0).expand(c, 1, 3, 3)
    blurred = F.conv2d(x, kernel, groups=c).clamp(0, 1)
    out = x.clone()
    out[..., 1:-1, 1:-1] = blurred
    return out


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalization per image and channel, torchvision's formula on 256 levels."""
    b, c, h, w = x.shape
    v = (x * 255).round().clamp(0, 255).long().view(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device, dtype=x.dtype).scatter_add_(
        1, v, torch.ones_like(v, dtype=x.dtype))
    last = hist.gather(1, v.max(1, keepdim=True).values)  # pixels at the highest level present
    step = torch.div(h * w - last, 255, rounding_mode="floor")
    lut = torch.div(hist.cumsum(1) + torch.div(step, 2, rounding_mode="floor"),
                    step.clamp_min(1), rounding_mode="floor")
    lut = F.pad(lut, (1, 0))[:, :-1].clamp(0, 255)
    out = torch.where(step > 0, lut.gather(1, v), v.to(x.dtype)) / 255.0
    return out.view(b, c, h, w)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    flat = hi <= lo
    scale = torch.where(flat, torch.ones_like(hi), 1.0 / (hi - lo).clamp_min(1e-12))
    return torch.where(flat, x, ((x - lo) * scale).clamp(0, 1))


def _posterize(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Keep the top 8 - `removed` bits of each 8-bit level."""
    v = (x * 255).floor().clamp(0, 255)
    q = torch.pow(2.0, removed.round()).view(-1, 1, 1, 1)
    return (v - torch.remainder(v, q)) / 255.0


def _colour(x: torch.Tensor, op: str, m: torch.Tensor) -> torch.Tensor:
    """Colour op `op` on the whole batch with per-image magnitudes `m` (signed where it takes a sign)."""
    if op == "brightness":
        return _blend(x, torch.zeros_like(x), 1 + m)
    if op == "color":
        return _blend(x, _gray(x).expand_as(x), 1 + m) if x.shape[1] == 3 else x
    if op == "contrast":
        return _blend(x, _gray(x).mean((1, 2, 3), keepdim=True).expand_as(x), 1 + m)
    if op == "sharpness":
        return _blend(x, _sharpen_source(x), 1 + m)
    if op == "posterize":
        return _posterize(x, m)
    if op == "solarize":
        thr = (1 - m).view(-1, 1, 1, 1)
        return torch.where(x >= thr, 1 - x, x)
    if op == "autocontrast":
        return _autocontrast(x)
    return _equalize(x)


def _geometric(x: torch.Tensor, op: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """One affine warp of the images: each one's own shear, shift or rotation (op: index in OPS)."""
    h, w = x.shape[-2:]
    zero = torch.zeros_like(m)
    pick = lambda name: op == OPS.index(name)  # noqa: E731
    angle = torch.where(pick("rotate"), m * math.pi / 180, zero)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx = torch.where(pick("shear_x"), m, zero)
    sy = torch.where(pick("shear_y"), m, zero)
    tx = torch.where(pick("translate_x"), 2 * m / w, zero)  # grid coordinates span [-1, 1]
    ty = torch.where(pick("translate_y"), 2 * m / h, zero)
    # forward map R(angle) @ [[1, sx], [sy, 1]] (one of them is the identity), then a shift; its
    # inverse in closed form for affine_grid (output -> input)
    a, b = cos - sin * sy, cos * sx - sin
    c, d = sin + cos * sy, sin * sx + cos
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    theta = torch.stack([ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty)], 1)
    grid = F.affine_grid(theta.view(-1, 2, 3).to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _slot(x: torch.Tensor, u: torch.Tensor, policy: str, magnitude: int) -> torch.Tensor:
    """One op per image (u: B x 3, the op, the sign, the magnitude bin of TrivialAugment)."""
    op = torch.floor(u[:, 0] * len(OPS)).long().clamp_(max=len(OPS) - 1)
    if policy == "trivialaugment":
        level = torch.floor(u[:, 2] * BINS).clamp_(max=BINS - 1) / (BINS - 1)
    else:
        level = torch.full_like(u[:, 2], magnitude / (BINS - 1))
    sign = torch.where(u[:, 1] < 0.5, -1.0, 1.0).to(u.dtype)
    size = x.shape[-1]
    ranges = torch.tensor([magnitude_range(policy, name, size) for name in OPS],
                          device=x.device, dtype=u.dtype)
    signed = torch.tensor([name in SIGNED for name in OPS], device=x.device)
    m = level * ranges[op]
    m = torch.where(signed[op], m * sign, m)
    moved = ((op >= OPS.index("shear_x")) & (op <= OPS.index("rotate"))).nonzero().squeeze(1)
    x = _on(x, moved, lambda part: _geometric(part, op[moved], m[moved]))
    for name in OPS[6:]:
        chosen = (op == OPS.index(name)).nonzero().squeeze(1)
        x = _on(x, chosen, lambda part, name=name, chosen=chosen: _colour(part, name, m[chosen]))
    return x


def _on(x: torch.Tensor, index: torch.Tensor, op) -> torch.Tensor:
    """x with the images x[index] replaced, in place, by op(x[index])."""
    if index.numel():
        x[index] = op(x[index]).to(x.dtype)
    return x


def width(policy: str, num_ops: int) -> int:
    """Uniform numbers each image needs for `policy`."""
    return {"none": 0, "randaugment": 3 * num_ops, "trivialaugment": 3}[policy]


def auto_augment(x: torch.Tensor, u: torch.Tensor, policy: str, num_ops: int,
                 magnitude: int) -> torch.Tensor:
    """`policy` applied to each image x[i] with its own numbers u[i] (B x width(policy, num_ops))."""
    slots = num_ops if policy == "randaugment" else 1
    x = x.clone()  # the slots replace images in place
    for i in range(slots):
        x = _slot(x, u[:, 3 * i:3 * i + 3], policy, magnitude)
    return x
