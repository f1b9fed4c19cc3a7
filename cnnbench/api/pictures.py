"""Pictures that a notebook shows inline: a PNG file of a run or a comparison, or a figure."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from cnnbench.rundir.stored_text import read_stored_bytes


class Picture:
    """A PNG picture; Jupyter shows it inline (`_repr_png_`). `path` is its file, when it has
    one; `png` its bytes."""

    def __init__(self, path: Path | None = None, make: Callable[[], bytes] | None = None,
                 name: str = "picture") -> None:
        self.path = Path(path) if path is not None else None
        self._make = make
        self.name = self.path.stem if self.path is not None else name

    @property
    def png(self) -> bytes:
        if self.path is not None:
            return read_stored_bytes(self.path)  # a regular file of a bounded size
        assert self._make is not None
        return self._make()

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | Path) -> Path:
        """The picture written to `path`."""
        target = Path(path)
        target.write_bytes(self.png)
        return target

    def __repr__(self) -> str:
        return f"Picture({str(self.path) if self.path else self.name})"


def figure_picture(make_figure: Callable[[], object], name: str) -> Picture | None:
    """A figure (matplotlib, from the compare command's plots) as a Picture; None when there is
    nothing to draw."""
    from cnnbench.commands.compare.figure_png import render
    from cnnbench.evaluation.png import png_bytes

    figure = make_figure()
    if figure is None:
        return None
    return Picture(make=lambda: png_bytes(render(figure)), name=name)


def pictures_in(folder: Path) -> dict[str, Picture]:
    """Every PNG file directly in `folder`, by name without .png."""
    return {p.stem: Picture(p) for p in sorted(Path(folder).glob("*.png"))}
