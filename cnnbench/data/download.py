"""torchvision's download, as the fallback for a dataset not on disk: bounded in time, its failure
named (the address it tried and why), and the folders it made for nothing removed again."""
from __future__ import annotations

import socket
import urllib.error
from pathlib import Path

# Seconds a silent server or a hanging name lookup may hold the download before it gives up.
DOWNLOAD_TIMEOUT_S = 20.0


def source_urls(tv_class: str) -> list[str]:
    """The addresses torchvision fetches `tv_class` from (first mirror of each file)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, tv_class)
    if hasattr(cls, "mirrors"):
        return [f"{cls.mirrors[0]}{name}" for name, _ in cls.resources]
    return [cls.url]


def _reason(err: BaseException) -> str:
    """The last line of an error, without urllib's '<urlopen error ...>' wrapping."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        err_text = str(err.reason)
    else:
        err_text = str(err)
    lines = [line.strip() for line in err_text.splitlines() if line.strip()]
    text = lines[-1] if lines else type(err).__name__
    if text.startswith("<urlopen error ") and text.endswith(">"):
        text = text[len("<urlopen error "):-1]
    return text[:160] + ("..." if len(text) > 160 else "")


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    for path in folders:
        if not path.is_dir():
            continue  # never made
        try:
            path.rmdir()
        except OSError:  # not empty: a partial download stays for the user to see
            return


def _target(cls: type, root: Path) -> Path:
    """The deepest folder torchvision makes for `cls` under `root`."""
    return root / cls.__name__ / "raw" if hasattr(cls, "mirrors") else root / cls.base_folder


def try_download(tv_class: str, root: Path) -> str | None:
    """Fetch `tv_class` into `root` with torchvision. None when it worked; else one line saying
    which address failed and why. The folders this made and that are still empty after a failure
    are removed; folders that were there before stay."""
    import torchvision.datasets as tvd

    created = _missing_folders(_target(getattr(tvd, tv_class), root.absolute()))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        getattr(tvd, tv_class)(str(root), train=True, download=True)
        getattr(tvd, tv_class)(str(root), train=False, download=True)
        return None
    except Exception as err:  # noqa: BLE001 (no network, refused, bad checksum: all are reported)
        return f"{source_urls(tv_class)[0]}: {_reason(err)}"
    finally:
        socket.setdefaulttimeout(previous)
        _remove_if_empty(created)  # after a success they hold the files and stay
