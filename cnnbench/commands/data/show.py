"""`cnnbench data` on the terminal: the summary as a few tables. A table's title is short (a
title wider than its table is squeezed into the table's columns); what qualifies it is a note
under the table, wrapped at the terminal's width at spaces, piped or not."""
from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

SHOWN_SKIPPED = 20  # skipped files listed on the terminal (data.json holds more)
FILE_NAMES = {"data": "summary", "class_counts": "class counts", "samples": "samples"}


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", highlight=False)


def note(text: str, style: str = "") -> Group:
    """Plain text wrapped at the console's width, at spaces, even where the console does not
    wrap (piped output). (In a Group: console.print joins bare Text objects into one.)"""
    return Group(Text(text, style=style, no_wrap=False, overflow="fold"))


def headline(s: dict) -> list:
    """The dataset, its image shape and classes; its options; where its images came from."""
    c, h, w = s["image_shape"]
    options = " ".join(f"{k}={v}" for k, v in s["options"].items()
                       if k != "name" and v is not None)
    return [f"[bold]{escape(s['dataset'])}[/]: {c}x{h}x{w} images (channels x height x width), "
            f"{s['num_classes']} classes", note(f"dataset options: {options}", "dim"),
            escape(source_line(s.get("read_from")))]


def source_line(read_from: dict | None) -> str:
    """Where the images came from, in words."""
    if read_from is None:
        return "made in memory (no files read)"
    if read_from["shipped_inside_cnnbench"]:
        return f"read from the copy shipped inside cnnbench: {read_from['path']}"
    return f"read from {read_from['path']}"


def split_note(s: dict) -> str:
    val_split, seed = s["split"]["val_split"], s["split"]["seed"]
    return (f"trainer.val_split={val_split:g} of the training set is held out for validation, "
            f"drawn with trainer.seed={seed}." if val_split else
            "trainer.val_split=0: no validation split.")


def split_table(s: dict) -> Table:
    t = _table("Splits, as a run uses them")
    t.add_column("split")
    t.add_column("images", justify="right")
    t.add_column("share", justify="right")
    total = s["sizes"]["total"]
    for name, n in s["sizes"].items():
        share = "" if name == "total" else f"{100 * n / max(total, 1):.1f}%"
        t.add_row(f"[bold]{name}[/]" if name == "total" else name, f"{n:,}", share)
    return t


def class_table(s: dict) -> Table:
    counts = s["class_counts"]
    t = _table("Images per class")
    t.add_column("class", overflow="fold")  # a long class name wraps, it is never cut short
    for name in [*counts, "total", "share"]:
        t.add_column(name, justify="right", no_wrap=True)
    grand = max(s["sizes"]["total"], 1)
    for k, cls in enumerate(s["classes"]):
        row = [counts[name][k] for name in counts]
        t.add_row(escape(cls), *(f"{n:,}" for n in row), f"{sum(row):,}",
                  f"{100 * sum(row) / grand:.1f}%")
    return t


def normalization_note(s: dict) -> str:
    used, measured = s["normalization"]["used"], s["normalization"]["measured"]
    return (f"run: what a run normalizes with, {used['about']}; measured: over the run's train "
            f"split ({measured['images']:,} images).")


def normalization_table(s: dict) -> Table:
    used, measured = s["normalization"]["used"], s["normalization"]["measured"]
    t = _table("Normalization per channel (pixel values in [0, 1])")
    t.add_column("channel")
    for head in ("mean (run)", "std (run)", "mean (measured)", "std (measured)"):
        t.add_column(head, justify="right")
    names = ["gray"] if len(used["mean"]) == 1 else ["red", "green", "blue"]
    for k, name in enumerate(names[:len(used["mean"])]):
        t.add_row(name, *(f"{v:.4f}" for v in (used["mean"][k], used["std"][k],
                                               measured["mean"][k], measured["std"][k])))
    return t


def sizes_note(folder: dict) -> str:
    h, w = folder["resized_to"]
    return (f"{folder['original_sizes']['images']:,} images; a run resizes each to {w}x{h} "
            f"(width x height), aspect ratio not kept.")


def sizes_table(folder: dict) -> Table:
    sizes = folder["original_sizes"]
    t = _table("Original image sizes")
    t.add_column("")
    t.add_column("min", justify="right")
    t.add_column("median", justify="right")
    t.add_column("max", justify="right")
    for side in ("width", "height"):
        if side in sizes:
            v = sizes[side]
            t.add_row(side, f"{v['min']:,}", f"{v['median']:,g}", f"{v['max']:,}")
    return t


def sizes_lines(folder: dict) -> str:
    sizes = folder["original_sizes"]
    common = ", ".join(f"{c['width']}x{c['height']} ({c['images']:,})"
                       for c in sizes.get("most_common", []))
    modes = ", ".join(f"{m} ({n:,})" for m, n in sizes.get("modes", {}).items())
    return (f"most common sizes (width x height): {common} of {sizes.get('distinct_sizes', 0)} "
            f"distinct\nPillow colour modes: {modes}")


def skipped_note(folder: dict) -> str:
    count = folder["skipped_count"]
    more = f", the first {SHOWN_SKIPPED} above" if count > SHOWN_SKIPPED else ""
    return f"{count:,} file{'s' * (count != 1)} skipped{more}; data.json lists them."


def skipped_table(folder: dict) -> Table:
    t = _table("Files the loader skips")
    t.add_column("file", overflow="fold")
    t.add_column("reason")
    for item in folder["skipped"][:SHOWN_SKIPPED]:
        style = "red" if item["stops_run"] else ""
        t.add_row(escape(item["file"]), f"[{style}]{escape(item['reason'])}[/]" if style
                  else escape(item["reason"]))
    return t


def show_folder(console: Console, folder: dict) -> None:
    console.print(f"Image folder {escape(folder['path'])}: {folder['files_used']:,} images used",
                  highlight=False)
    if folder["original_sizes"]["images"]:
        console.print(sizes_table(folder))
        console.print(note(sizes_note(folder)))
        for line in sizes_lines(folder).splitlines():
            console.print(note(line))
    if folder["skipped_count"]:
        console.print(skipped_table(folder))
        console.print(note(skipped_note(folder)))
    else:
        console.print("No file in the folder is skipped.")
    bad = folder["unreadable_count"]
    if bad:
        them = "them" if bad != 1 else "it"
        warning = Text.assemble(("warning:", "bold yellow"), (
            f" {bad} file{'s' * (bad != 1)} could not be read as an image, and a training run "
            f"stops on {them}: remove or replace {them}. Everything above describes the folder "
            f"without {them}."))
        warning.no_wrap, warning.overflow = False, "fold"
        console.print(Group(warning))


def show(console: Console, s: dict) -> None:
    for line in headline(s):
        console.print(line, highlight=False)
    for table, below in ((split_table(s), split_note(s)), (class_table(s), None),
                         (normalization_table(s), normalization_note(s))):
        console.print(table)
        if below:
            console.print(note(below))
    if "imagefolder" in s:
        show_folder(console, s["imagefolder"])
    samples = s.get("samples")
    if samples and len(samples["classes_shown"]) < s["num_classes"]:
        console.print(f"samples.png shows {samples['per_class']} images of each of the first "
                      f"{len(samples['classes_shown'])} of the {s['num_classes']} classes.",
                      highlight=False)
    for key, path in s.get("files", {}).items():  # one whole path a line, as every command
        console.print(f"{FILE_NAMES.get(key, key)}: {path}", markup=False, highlight=False,
                      soft_wrap=True)
