"""16-bit grayscale pictures (PNG and TIFF decode to Pillow modes I;16, I;16B, I) are scaled to
8 bits, value // 257, in both the imagefolder loader and `cnnbench predict`, instead of being
clipped at 255 (which made almost every pixel white)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnbench.commands.predict.inputs import load_image
from cnnbench.data import load_dataset
from cnnbench.data.pixels import as_rgb, sixteen_to_eight
from cnnbench.data.preprocessing import Preprocessing

SIZE = 16
# every 16-bit value's neighbourhood: the ends, the multiples of 257 and the values just below
GRADIENT = np.linspace(0, 65535, SIZE * SIZE).astype(np.uint16).reshape(SIZE, SIZE)
GRADIENT[0, :4] = [0, 256, 257, 65535]
EXPECTED = (GRADIENT // 257).astype(np.uint8)


def write_png16(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(GRADIENT).save(path)
    with Image.open(path) as img:
        assert img.mode == "I;16", img.mode  # what Pillow reads a 16-bit gray PNG as
    return path


def test_sixteen_bit_values_become_value_floor_257():
    values = np.array([0, 256, 257, 514, 32767, 65279, 65534, 65535])
    assert sixteen_to_eight(values).tolist() == [0, 0, 1, 2, 127, 254, 254, 255]
    assert sixteen_to_eight(np.array([-5, 70000], dtype=np.int32)).tolist() == [0, 255]


@pytest.mark.parametrize("array", [GRADIENT, GRADIENT.astype(">u2"), GRADIENT.astype(np.int32)],
                         ids=["I;16", "I;16B", "I"])
def test_every_sixteen_bit_mode_is_scaled_not_clipped(array):
    img = Image.fromarray(array)
    rgb = np.asarray(as_rgb(img))
    assert rgb.dtype == np.uint8 and rgb.shape == (SIZE, SIZE, 3)
    assert all(np.array_equal(rgb[..., c], EXPECTED) for c in range(3)), img.mode


def test_eight_bit_pictures_convert_as_pillow_converts_them():
    gray = Image.fromarray(EXPECTED)
    assert np.array_equal(np.asarray(as_rgb(gray)), np.asarray(gray.convert("RGB")))


def test_the_imagefolder_loader_reads_a_16_bit_png_scaled(tmp_path):
    for split in ("train", "test"):
        for cls in ("dark", "light"):
            write_png16(tmp_path / split / cls / "0.png")
    data = load_dataset("imagefolder", path=str(tmp_path), image_size=SIZE)
    assert data.channels == 1  # 16-bit gray is gray
    for images in (data.train.images, data.test.images):
        for image in images:
            assert np.array_equal(image[0].numpy(), EXPECTED)
    assert (data.train.images == 255).float().mean() < 0.01


@pytest.mark.parametrize("channels,to_gray", [(1, "first_channel"), (1, "luminance"),
                                              (3, "first_channel")])
def test_predict_reads_a_16_bit_png_scaled(tmp_path, channels, to_gray):
    path = write_png16(tmp_path / "scan.png")
    prep = Preprocessing(("dark", "light"), (0.5,) * channels, (0.2,) * channels, channels,
                         SIZE, SIZE, to_gray=to_gray, dataset="imagefolder")
    pixels = load_image(path, prep)
    assert pixels.shape == (channels, SIZE, SIZE)
    assert all(np.array_equal(plane, EXPECTED) for plane in pixels)
