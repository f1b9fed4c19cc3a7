"""The per-class table printed at the end of a run, with the worst classes highlighted."""
from __future__ import annotations

from typing import Any, Sequence

from rich.markup import escape
from rich.table import Table

ALL_ROWS_UP_TO = 20   # more classes than this: print only the worst ones
WORST_SHOWN = 10


def worst_classes(per_class: Sequence[dict[str, Any]], count: int) -> list[int]:
    """Indices of up to `count` classes with the lowest F1 (then recall), worst first.

    Only classes below the mean F1 count as bad: when every class does equally well, none is.
    """
    if not per_class:
        return []
    mean_f1 = sum(row["f1"] for row in per_class) / len(per_class)
    order = sorted(range(len(per_class)),
                   key=lambda i: (per_class[i]["f1"], per_class[i]["recall"], i))
    return [i for i in order if per_class[i]["f1"] < mean_f1][:count]


def per_class_table(per_class: Sequence[dict[str, Any]], highlight: int = 3,
                    title: str = "Per-class results on the test set") -> Table:
    n = len(per_class)
    worst = worst_classes(per_class, highlight)
    if n <= ALL_ROWS_UP_TO:
        shown = list(range(n))
        caption = (f"*: the {len(worst)} class{'es' if len(worst) > 1 else ''} with the "
                   f"lowest F1" if worst else None)
    else:
        shown = sorted(range(n), key=lambda i: (per_class[i]["f1"], per_class[i]["recall"], i))
        shown = shown[:WORST_SHOWN]
        caption = (f"the {len(shown)} classes with the lowest F1 of {n}, worst first "
                   f"(all of them are in metrics.json); *: the {len(worst)} worst")
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("class", style="bold", overflow="fold")  # a long name wraps, never cut
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right", no_wrap=True)
    for i in shown:
        row = per_class[i]
        name = escape(str(row["class"]))  # a folder's name, never markup
        table.add_row(f"{name} *" if i in worst else name,
                      f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      f"{row['f1']:.3f}", f"{row['support']:,}",
                      style="bold red" if i in worst else None)
    return table


SHIFT_HEAD = "shift robustness (test images moved right and down):"


def shift_lines(accuracies: Sequence[tuple[int, float]], width: int) -> list[str]:
    """The test accuracy at each shift ('0 px 98.10% | 2 px 60.45% | ...') after `SHIFT_HEAD`:
    on one line where it fits `width`, else the accuracies on indented lines under it, each
    'N px acc%' whole (a shift is never parted from its accuracy)."""
    parts = [f"{k} px {100 * acc:.2f}%" for k, acc in accuracies]
    one = f"{SHIFT_HEAD} {' | '.join(parts)}"
    if len(one) <= width:
        return [one]
    lines, line = [SHIFT_HEAD], ""
    for part in parts:
        if line and len(f"  {line} | {part}") > width:
            lines.append(f"  {line} |")
            line = part
        else:
            line = f"{line} | {part}" if line else part
    return [*lines, f"  {line}"]
