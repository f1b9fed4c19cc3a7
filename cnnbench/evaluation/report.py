"""The per-class table printed at the end of a run, with the worst classes highlighted."""
from __future__ import annotations

from typing import Any, Sequence

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
    table.add_column("class", style="bold")
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for i in shown:
        row = per_class[i]
        table.add_row(f"{row['class']} *" if i in worst else row["class"],
                      f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      f"{row['f1']:.3f}", f"{row['support']:,}",
                      style="bold red" if i in worst else None)
    return table
