"""What `cnnbench compare` prints, as data: a row per group of seeds (the mean test accuracy,
its 95% interval, Welch's p against the best group), its pictures, and the runs."""
from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from cnnbench.api.errors import library_errors
from cnnbench.api.frames import pandas_frame
from cnnbench.api.pictures import Picture
from cnnbench.api.run import Run


class Comparison:
    """`rows`: comparison.csv's rows (raw numbers: fractions, seconds, p-values); `table`: the
    cells as the terminal table shows them; `runs`; pictures `accuracy_vs_time` and `curves`;
    `dir`: where comparison.csv, comparison.md and the pictures were written."""

    def __init__(self, result: Any) -> None:
        from cnnbench.commands.compare.group_csv import group_rows
        from cnnbench.commands.compare.group_table import group_columns

        self._result = result
        self.dir = Path(result.out_dir).resolve()
        self.rows: list[dict[str, Any]] = group_rows(result.groups)
        self.columns, self.cells = group_columns(result.groups)
        self.runs = [Run(r.path) for r in result.runs]

    def frame(self):
        """`rows` as a pandas DataFrame."""
        return pandas_frame(self.rows)

    @property
    def accuracy_vs_time(self) -> Picture | None:
        return self._picture("comparison.png")

    @property
    def curves(self) -> Picture | None:
        return self._picture("curves.png")

    def _picture(self, name: str) -> Picture | None:
        path = self.dir / name
        return Picture(path) if path.is_file() else None

    def text(self, width: int = 160) -> str:
        """The table as `cnnbench compare` prints it, as plain text."""
        from rich.console import Console

        from cnnbench.commands.compare.group_view import group_report

        buffer = io.StringIO()
        console = Console(file=buffer, width=width, color_system=None, force_jupyter=False)
        n_runs, n_groups = len(self.runs), len(self.rows)
        console.print(group_report(self._result.groups, f"{n_runs} runs in {n_groups} groups",
                                   width))
        return buffer.getvalue()

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"Comparison({str(self.dir)!r}, {len(self.rows)} groups, {len(self.runs)} runs)"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                       + "</tr>" for row in self.cells)
        return (f"<table class='cnnbench-comparison'><caption>{len(self.runs)} runs in "
                f"{len(self.rows)} groups ({html.escape(str(self.dir))})</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def compare(*paths: str | Path, out: str | Path | None = None) -> Comparison:
    """The comparison of the runs under `paths` (run directories, sweep directories, or
    outputs/), written to `out` as `cnnbench compare PATH... out=DIR` does."""
    from cnnbench.commands.compare.command import compare as compare_runs
    from cnnbench.commands.compare.command import parse_args

    with library_errors():
        parse_args([str(p) for p in paths])  # no PATH: the command's paragraph
        return Comparison(compare_runs(list(paths), out))

