"""A dataset's files are data: a real `cnnbench data` reads crafted IDX, CIFAR and image files,
runs nothing they name, allocates nothing they only claim, and ends in one paragraph that names
the file. Checkpoints and run directories: test_untrusted_disk.py."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx_set
from test_boundary import error_line

TEST_IMAGES = "t10k-images-idx3-ubyte.gz"


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def _huge_header(raw: Path) -> None:
    with gzip.open(raw / TEST_IMAGES, "wb") as f:
        f.write(idx_header(2**31, 2**31, 4))  # 2**64 bytes: 0 where numpy's int64 wraps


def _inflates_to_zeros(raw: Path) -> None:
    with gzip.open(raw / TEST_IMAGES, "wb") as f:
        f.write(idx_header(40, 28, 28) + bytes(40 * 28 * 28))
        for _ in range(64):
            f.write(bytes(1 << 20))  # 64 MB more than the header says, 64 kB on disk


def _other_size(raw: Path) -> None:
    with gzip.open(raw / TEST_IMAGES, "wb") as f:
        f.write(idx_header(40, 1, 1) + bytes(40))


def _damaged_deflate(raw: Path) -> None:  # a gzip header, then a block of a reserved type
    (raw / TEST_IMAGES).write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x07" + bytes(20))


def _cut_short(raw: Path) -> None:
    with gzip.open(raw / TEST_IMAGES, "wb") as f:
        f.write(idx_header(40, 28, 28) + bytes(100))


def _bad_magic(raw: Path) -> None:
    with gzip.open(raw / TEST_IMAGES, "wb") as f:
        f.write(b"\x01\x02\x03\x04" + bytes(100))


@pytest.mark.parametrize("damage,words", [
    (_huge_header, "has a header that announces (2147483648, 2147483648, 4) values"),
    (_inflates_to_zeros, "holds more data than its header says"),
    (_other_size, "holds images of 1x1 pixels, but the training images are 28x28"),
    (_damaged_deflate, "is a damaged gzip file"),
    (_cut_short, "is truncated: header says (40, 28, 28), file holds 100 values"),
    (_bad_magic, "is not an IDX file (bad magic number)"),
])
def test_a_crafted_idx_file_is_one_paragraph_that_names_it(cli, tmp_path, damage, words):
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_idx_set(raw, train=60, test=40)
    damage(raw)
    proc = cli("data", "dataset=mnist", f"dataset.root={tmp_path / 'data'}",
               f"out={tmp_path / 'out'}", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    line = error_line(out)
    assert f"{raw / TEST_IMAGES}" in line and words in line, line


class Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def write_cifar(root: Path, test_batch: bytes | None = None) -> Path:
    """A CIFAR-10 folder in the real on-disk format (pickled dicts), 10 images a batch; its
    test_batch replaced by `test_batch` when given."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
                 "labels": list(range(10))}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2))
    if test_batch is not None:
        (folder / "test_batch").write_bytes(test_batch)
    return folder / "test_batch"


@pytest.mark.parametrize("planted,words", [
    ("reduce", "it asks to load os.makedirs while unpickling"),
    (b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc",  # bytes of 4 EB, said to follow
     "is not a pickle a CIFAR file could be (MemoryError while unpickling)"),
    (pickle.dumps({"data": np.zeros((10, 3072), np.uint8), "labels": [10**30] * 10}, protocol=2),
     f"has label {10**30} at position 0, but the dataset has 10 classes"),
])
def test_a_crafted_cifar_pickle_runs_nothing_and_is_one_paragraph(cli, tmp_path, planted, words):
    marker = tmp_path / "pwned"
    if planted == "reduce":
        planted = pickle.dumps({"data": Planted(marker), "labels": []}, protocol=2)
    batch = write_cifar(tmp_path / "data", planted)
    proc = cli("data", "dataset=cifar10", f"dataset.root={tmp_path / 'data'}",
               "dataset.download=false", f"out={tmp_path / 'out'}", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    line = error_line(out)
    assert str(batch) in line and words in line, line
    assert not marker.exists()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, width: int, height: int) -> None:
    """A gray PNG whose header says `width` x `height` (only its first row is stored)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", zlib.compress(bytes(width + 1)))
                     + png_chunk(b"IEND", b""))


def image_folder(root: Path) -> Path:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            write_png(root / name / f"{i}.png", 8, 8)
    return root


def train_on(cli, tmp_path: Path, root: Path):
    """`cnnbench train` on the image folder `root`: a file it cannot use stops it at once."""
    return cli("train", "dataset=imagefolder", f"dataset.path={root}", "dataset.image_size=8",
               "model=mlp", "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=120)


def test_a_decompression_bomb_in_an_image_folder_is_refused_by_name(cli, tmp_path):
    root = image_folder(tmp_path / "pictures")
    write_png(root / "cat" / "bomb.png", 20000, 20000)  # 400 M pixels, 100 bytes on disk
    proc = train_on(cli, tmp_path, root)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    line = error_line(out)
    assert "1 file in dataset.path" in line and "cat/bomb.png (DecompressionBombError" in line, \
        line


def test_devices_and_pipes_named_like_images_are_not_read(cli, tmp_path):
    root = image_folder(tmp_path / "pictures")
    (root / "cat" / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(root / "dog" / "pipe.png")
    (root / "dog" / "note.png").write_text("not a picture")
    proc = train_on(cli, tmp_path, root)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    line = error_line(out)  # the one file that is a file, and not a picture; no hang, no device
    assert "1 file in dataset.path" in line and "dog/note.png (not an image format" in line, line
