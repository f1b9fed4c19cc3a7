"""Batched augmentation: parameters are drawn per image, stay in their ranges, follow the seed."""
from __future__ import annotations

import math

import pytest
import torch

from cnnbench.engine.augment import (
    BatchAugment,
    random_affine,
    random_erasing,
    random_flip,
    random_shift,
)

SIZE = 33  # odd: the centre of rotation/zoom (pixel 16) falls on a pixel
CENTRE = (SIZE - 1) / 2


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def bright_pixel(b: int, row: int, col: int, size: int = SIZE) -> torch.Tensor:
    x = torch.zeros(b, 1, size, size)
    x[:, 0, row, col] = 1.0
    return x


def centroids(x: torch.Tensor) -> torch.Tensor:
    """Intensity-weighted (row, col) of each image: B x 2."""
    w = x[:, 0]
    total = w.sum((1, 2))
    rows = torch.arange(w.shape[1], dtype=w.dtype)[None, :, None]
    cols = torch.arange(w.shape[2], dtype=w.dtype)[None, None, :]
    return torch.stack([(w * rows).sum((1, 2)) / total, (w * cols).sum((1, 2)) / total], 1)


def test_crop_shift_is_per_image_and_within_padding():
    pad, b = 2, 2000
    out = random_shift(bright_pixel(b, 16, 16), pad, gen())
    assert out.shape == (b, 1, SIZE, SIZE)
    assert torch.all(out.sum((1, 2, 3)) == 1)  # the pixel stays inside, moved by whole pixels
    pos = out[:, 0].flatten(1).argmax(1)
    dy, dx = pos // SIZE - 16, pos % SIZE - 16
    assert dy.abs().max() <= pad and dx.abs().max() <= pad
    # every one of the (2p+1)^2 shifts occurs: parameters are drawn per image, over the full range
    assert len(set(zip(dy.tolist(), dx.tolist()))) == (2 * pad + 1) ** 2


def test_flip_is_per_image_with_probability_half():
    x = bright_pixel(1000, 5, 3)
    out = random_flip(x, gen())
    flipped = out[:, 0, 5, SIZE - 1 - 3] == 1
    kept = out[:, 0, 5, 3] == 1
    assert torch.all(flipped ^ kept)
    assert 0.4 < flipped.float().mean().item() < 0.6


@pytest.mark.parametrize("max_deg", [10.0, 15.0])
def test_rotation_stays_in_range_and_varies_per_image(max_deg):
    r = 10
    out = random_affine(bright_pixel(500, 16, 16 + r), max_deg, 0.0, 0.0, 0.0, gen(1))
    c = centroids(out)
    dy, dx = c[:, 0] - CENTRE, c[:, 1] - CENTRE
    angle = torch.rad2deg(torch.atan2(dy, dx))
    radius = torch.sqrt(dy ** 2 + dx ** 2)
    assert angle.abs().max() <= max_deg + 0.5
    assert angle.max() > 0.8 * max_deg and angle.min() < -0.8 * max_deg  # both ways, full range
    assert torch.allclose(radius, torch.full_like(radius, r), atol=0.3)  # a rotation, no zoom


def test_zoom_stays_in_range():
    r, s = 10, 0.2
    out = random_affine(bright_pixel(500, 16, 16 + r), 0.0, 0.0, s, 0.0, gen(2))
    c = centroids(out)
    ratio = (c[:, 1] - CENTRE) / r
    assert ratio.min() >= 1 - s - 0.02 and ratio.max() <= 1 + s + 0.02
    assert ratio.min() < 1 - 0.8 * s and ratio.max() > 1 + 0.8 * s
    assert torch.allclose(c[:, 0], torch.full_like(c[:, 0], CENTRE), atol=0.05)


def test_translate_stays_within_fraction_of_size():
    t = 0.1
    out = random_affine(bright_pixel(500, 16, 16), 0.0, t, 0.0, 0.0, gen(3))
    d = centroids(out) - CENTRE
    limit = t * SIZE
    assert d.abs().max() <= limit + 0.05
    assert d[:, 0].max() > 0.8 * limit and d[:, 1].min() < -0.8 * limit


def test_shear_moves_rows_sideways_in_proportion_to_height():
    sh = 0.1
    out = random_affine(bright_pixel(500, 16 + 10, 16), 0.0, 0.0, 0.0, sh, gen(4))
    d = centroids(out) - CENTRE
    assert torch.allclose(d[:, 0], torch.full_like(d[:, 0], 10.0), atol=0.05)  # row unchanged
    assert d[:, 1].abs().max() <= sh * 10 + 0.05 and d[:, 1].abs().max() > 0.8 * sh * 10


def test_erasing_probability_and_box_size():
    p, b = 0.5, 2000
    out = random_erasing(torch.ones(b, 1, 32, 32), p, gen(5))
    erased = (out == 0).flatten(1).float().mean(1)
    hit = erased > 0
    assert 0.45 < hit.float().mean().item() < 0.55
    # 2%-33% of the area, give or take the rounding of the box edges to whole pixels
    assert erased[hit].min() >= 0.01 and erased[hit].max() <= 0.40
    assert erased[hit].std() > 0.02  # different boxes for different images


def test_same_seed_same_output_and_other_seed_differs():
    aug = BatchAugment(flip=True, crop_padding=4, rotation=15, translate=0.1, scale=0.2,
                       shear=0.1, erasing=0.5)
    x = torch.rand(16, 3, 32, 32, generator=gen(9))
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_no_augmentation_is_identity():
    x = torch.rand(4, 1, 28, 28)
    aug = BatchAugment()
    assert not aug.active and aug(x, gen()) is x


@pytest.mark.parametrize("kwargs", [dict(scale=1.0), dict(rotation=-1), dict(erasing=1.5)])
def test_invalid_ranges_are_refused(kwargs):
    with pytest.raises(ValueError):
        BatchAugment(**kwargs)


def test_configs_match_the_seeds(compose):
    from hydra.utils import instantiate

    affine = instantiate(compose(["augmentation=affine"]).augmentation)
    assert affine.rotation == 10 and affine.scale == 0.1 and affine.shear == 0.1
    assert math.isclose(affine.translate * 28, 4.0, abs_tol=0.01)  # ±4 px on MNIST
    keras = instantiate(compose(["augmentation=keras_like"]).augmentation)
    assert (keras.rotation, keras.translate, keras.flip, keras.scale) == (15, 0.1, True, 0.2)
    cutout = instantiate(compose(["augmentation=cutout"]).augmentation)
    assert cutout.erasing > 0
