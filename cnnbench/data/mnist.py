"""MNIST and Fashion-MNIST: the four IDX files (gzipped or not) of <root>/<name>/raw, as
torchvision stores them; MNIST falls back to the copy inside the package."""
from __future__ import annotations

from pathlib import Path

from cnnbench.data.download import source_urls, try_download
from cnnbench.data.idx import read_idx
from cnnbench.data.image_data import ImageData, Split
from cnnbench.data.source_files import (
    bad_file,
    check_labels,
    not_on_disk,
)
from cnnbench.errors import UserError

EMBEDDED_MNIST = Path(__file__).parent / "embedded_mnist"

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_split(raw: Path, which: str, num_classes: int) -> Split:
    images_file, labels_file = (_find_idx(raw, stem) for stem in _IDX_FILES[which])
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3:
        raise bad_file(images_file, f"holds an array of shape {tuple(images.shape)}, not "
                                    f"images (N x height x width)")
    check_labels(labels, images.shape[0], num_classes, labels_file, images_file)
    return Split(images.unsqueeze(1).contiguous(), labels.long())


def _idx_complete(raw: Path) -> bool:
    return all(_find_idx(raw, stem) for pair in _IDX_FILES.values() for stem in pair)


def _missing(folder_name: str, tv_class: str, raw: Path,
             download_failure: str | None) -> UserError:
    files = [f"{stem}.gz" for pair in _IDX_FILES.values() for stem in pair]
    url = source_urls(tv_class)[0]
    return not_on_disk(
        folder_name, f"no complete set of the four *-ubyte(.gz) files in {raw.absolute()}",
        download_failure, f"put the four files {', '.join(files[:-1])} and {files[-1]} in "
        f"{raw.absolute()} by hand", url.rsplit("/", 1)[0] + "/")


def _load_idx_family(folder_name: str, tv_class: str, root: str | None, download: bool,
                     embedded: Path | None, num_classes: int = 10) -> tuple[Split, Split, Path]:
    raw = Path(root or ".").expanduser() / folder_name / "raw"
    if not _idx_complete(raw):
        failure = None
        if embedded is not None:
            raw = embedded
        elif download:
            failure = try_download(tv_class, raw.parent.parent) or "it fetched too few files"
        if not _idx_complete(raw):
            raise _missing(folder_name, tv_class, raw, failure)
    try:
        train, test = (_read_idx_split(raw, which, num_classes) for which in ("train", "test"))
    except (OSError, ValueError, EOFError) as err:
        raise UserError(
            f"The {folder_name} files in {raw.resolve()} could not be read ({err}). They are "
            f"probably corrupted or incomplete: delete them and copy or download them again."
        ) from None
    if test.images.shape[2:] != train.images.shape[2:]:
        size = "x".join(map(str, test.images.shape[2:]))
        raise bad_file(_find_idx(raw, _IDX_FILES["test"][0]),
                       f"holds images of {size} pixels, but the training images are "
                       f"{'x'.join(map(str, train.images.shape[2:]))}: the two sets must be "
                       f"of one size")
    return train, test, raw


def load_mnist(root: str | None, download: bool = True) -> ImageData:
    """MNIST from <root>/MNIST/raw when it is there, else from the copy inside the package."""
    train, test, raw = _load_idx_family("MNIST", "MNIST", root, download, EMBEDDED_MNIST)
    return ImageData("mnist", train, test, MNIST_CLASSES, (0.1307,), (0.3081,),
                     source=raw.absolute(), shipped=raw == EMBEDDED_MNIST)


def load_fashion_mnist(root: str | None, download: bool = True) -> ImageData:
    train, test, raw = _load_idx_family("FashionMNIST", "FashionMNIST", root, download, None)
    return ImageData("fashion_mnist", train, test, FASHION_CLASSES, (0.2860,), (0.3530,),
                     source=raw.absolute())
