"""The per-run pictures (Pillow, no matplotlib): sizes, colours, text inside the canvas, PNG."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import assert_png
from PIL import ImageFont

from cnnbench.evaluation import raster
from cnnbench.evaluation.pictures import write_pictures
from cnnbench.evaluation.plots import (
    cell_size,
    confusion_matrix_figure,
    misclassified_figure,
    png_bytes,
    read_png,
    shares,
    tile,
)
from cnnbench.evaluation.raster import colour_map

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
DARKEST, LIGHTEST = (tuple(int(v) for v in colour_map(np.array(x))) for x in (1.0, 0.0))


def mistakes_of(classes, count=8):
    return [{"index": k, "true": classes[k % len(classes)],
             "predicted": classes[(k + 1) % len(classes)], "confidence": 0.99 - k / 100}
            for k in range(count)]


def pixels(picture) -> np.ndarray:
    return np.asarray(picture.convert("RGB"))


def assert_nothing_on_the_edge(picture, margin: int = 4):
    """All drawn content (text included) lies inside the canvas, with a white margin."""
    p = pixels(picture)
    edges = [p[:margin], p[-margin:], p[:, :margin], p[:, -margin:]]
    assert all((edge == 255).all() for edge in edges), "something is drawn on the canvas's edge"


def test_pngs_of_both_pictures(tmp_path):
    counts = [[3, 1, 0, 0], [0, 3, 0, 0], [2, 0, 1, 0], [0, 0, 0, 0]]
    path = tmp_path / "cm.png"
    path.write_bytes(png_bytes(confusion_matrix_figure(counts, ["cat", "dog", "bird", "fish"],
                                                       "test")))
    w, h = assert_png(path, 400, 400)
    assert read_png(path).shape == (h, w, 3)
    rng = np.random.default_rng(0)
    for name, channels in (("gray.png", 1), ("rgb.png", 3)):
        images = rng.integers(0, 256, (10, channels, 28, 28), dtype=np.uint8)
        (tmp_path / name).write_bytes(png_bytes(misclassified_figure(images, mistakes_of(FASHION))))
        assert_png(tmp_path / name, 500, 300)


def test_png_bytes_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    for shape in ((1, 1, 3), (7, 13, 3), (64, 3, 3)):
        original = rng.integers(0, 256, shape, dtype=np.uint8)
        (tmp_path / "x.png").write_bytes(png_bytes(original))
        assert np.array_equal(read_png(tmp_path / "x.png"), original)
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4), np.uint8))


def test_the_picture_grows_with_the_class_count():
    sides = [n * cell_size(n) for n in range(1, 101)]
    assert min(sides) >= 480 and max(sides) <= 1800 and cell_size(10) == 68
    sizes = [confusion_matrix_figure(np.eye(n, dtype=int) * 5, [f"c{i}" for i in range(n)]).size
             for n in (4, 10, 30, 100)]
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(sizes, sizes[1:])), sizes
    assert sizes[-1][0] >= 1000 and sizes[-1][1] >= 1000


def test_a_perfect_classifier_has_the_darkest_diagonal():
    n = 4
    cells = colour_map(np.sqrt(shares(np.eye(n, dtype=int) * 7)))
    assert all(tuple(cells[i, i]) == DARKEST for i in range(n))
    assert all(tuple(cells[i, j]) == LIGHTEST for i in range(n) for j in range(n) if i != j)
    assert sum(DARKEST) < int(colour_map(np.array(0.9)).sum()) < sum(LIGHTEST)

    def dark_trend(counts) -> float:
        """How the darkest pixels run: +1 top-left to bottom-right, -1 the other way."""
        p = pixels(confusion_matrix_figure(counts, [str(i) for i in range(n)]))
        ys, xs = np.nonzero((p == DARKEST).all(-1))
        assert len(ys) > n * 1000  # whole cells, not a few pixels of the colour bar
        return float(np.corrcoef(xs, ys)[0, 1])

    assert dark_trend(np.eye(n, dtype=int) * 7) > 0.9
    assert dark_trend(np.eye(n, dtype=int)[::-1] * 7) < -0.9  # every image taken for another


def test_100_classes_without_numbers_in_the_cells():
    n = 100
    counts = np.random.default_rng(0).integers(0, 3, (n, n)) + np.eye(n, dtype=int) * 50
    picture = confusion_matrix_figure(counts, [f"class_{i}" for i in range(n)], "cifar100")
    assert 1800 < picture.width < 2600 and 1800 < picture.height < 2600
    assert_nothing_on_the_edge(picture)
    few = confusion_matrix_figure(np.eye(12, dtype=int), [str(i) for i in range(12)])
    assert (pixels(few) == 255).all(-1).any()  # white cell text ("100") on the dark diagonal


def test_rgb_tiles_are_scaled_up_with_square_pixels():
    image = np.zeros((1, 3, 32, 32), np.uint8)
    image[0, 0, :16] = 255  # top half pure red, bottom half pure blue
    image[0, 2, 16:] = 255
    p = pixels(misclassified_figure(image, mistakes_of(["airplane", "automobile"], 1)))
    red = (p == (255, 0, 0)).all(-1)
    blue = (p == (0, 0, 255)).all(-1)
    assert red.sum() == blue.sum() == (32 * 4) * (16 * 4)  # 4x, nearest neighbour
    ys, xs = np.nonzero(red)
    assert ys.max() - ys.min() + 1 == 64 and xs.max() - xs.min() + 1 == 128
    assert tile(np.zeros((1, 28, 28), np.uint8)).size == (140, 140)  # MNIST: 5x
    assert tile(np.zeros((3, 224, 160), np.uint8)).size == (103, 144)  # large: scaled down


def test_long_names_stay_inside_the_pictures():
    names = FASHION[:-1] + ["a rather long class name from an image folder"]
    cm = confusion_matrix_figure(np.eye(10, dtype=int) + 1, names, "mlp on fashion_mnist")
    assert_nothing_on_the_edge(cm)
    images = np.zeros((10, 1, 28, 28), np.uint8)
    short = misclassified_figure(images, mistakes_of(["a", "b"]), "t")
    long = misclassified_figure(images, mistakes_of(names[::-1], 10), "t")
    assert_nothing_on_the_edge(long)
    label = raster.text_width("pred: a rather long class name… (90%)", 14)  # 28 characters
    assert long.width > 5 * label > short.width  # the columns widen with their labels
    assert long.width < 6 * label + 200


def test_no_mistakes_says_so():
    picture = misclassified_figure(np.zeros((0, 1, 28, 28), np.uint8), [], "perfect")
    assert_nothing_on_the_edge(picture)
    assert picture.width > 400 and picture.height > 100


def test_the_bitmap_font_fallback_still_draws(monkeypatch):
    bitmap = ImageFont.load_default_imagefont()  # Pillow without FreeType has only this one
    monkeypatch.setattr(raster, "font", lambda size: bitmap)
    for picture in (confusion_matrix_figure(np.eye(10, dtype=int), FASHION, "t"),
                    misclassified_figure(np.zeros((3, 1, 28, 28), np.uint8),
                                         mistakes_of(FASHION, 3), "t")):
        assert_nothing_on_the_edge(picture)


def test_a_picture_that_cannot_be_drawn_is_a_warning(tmp_path, monkeypatch):
    from cnnbench.evaluation import plots

    def broken(*args, **kwargs):
        raise RuntimeError("no pixels today")

    monkeypatch.setattr(plots, "confusion_matrix_figure", broken)
    warnings = write_pictures(tmp_path, [[1]], ["a"], np.zeros((1, 1, 8, 8), np.uint8),
                              mistakes_of(["a"], 1), "t")
    assert warnings == ["confusion_matrix.png could not be written (RuntimeError: no pixels "
                        "today)"]
    assert not (tmp_path / "confusion_matrix.png").exists()
    assert_png(tmp_path / "misclassified.png", 100, 100)


def test_the_test_phase_never_imports_matplotlib(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from torch import nn
        from cnnbench.data import load_dataset
        from cnnbench.evaluation.evaluate import evaluate_test_set
        from cnnbench.settings.evaluation import EvaluationSettings
        from cnnbench.engine.runtime import make_runtime

        data = load_dataset("synthetic", train_size=8, test_size=32)
        model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
        out = Path({str(tmp_path)!r})
        m = evaluate_test_set(model, data, make_runtime("cpu", "off", False),
                              EvaluationSettings(shifts=[1]), out, batch_size=16).metrics
        assert "evaluation_warnings" not in m, m["evaluation_warnings"]
        assert (out / "confusion_matrix.png").is_file() and (out / "misclassified.png").is_file()
        print(sorted(name for name in sys.modules if name.startswith("matplotlib")))
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
