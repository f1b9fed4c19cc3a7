"""`cnnbench data` on the terminal: the summary as a few tables."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

SHOWN_SKIPPED = 20  # skipped files listed on the terminal (data.json holds more)


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", highlight=False)


def headline(s: dict) -> str:
    c, h, w = s["image_shape"]
    options = " ".join(f"{k}={v}" for k, v in s["options"].items()
                       if k != "name" and v is not None)
    return (f"[bold]{escape(s['dataset'])}[/]: {c}x{h}x{w} images (channels x height x width), "
            f"{s['num_classes']} classes\n[dim]dataset options: {escape(options)}[/]\n"
            f"{escape(source_line(s.get('read_from')))}")


def source_line(read_from: dict | None) -> str:
    """Where the images came from, in words."""
    if read_from is None:
        return "made in memory (no files read)"
    if read_from["shipped_inside_cnnbench"]:
        return f"read from the copy shipped inside cnnbench: {read_from['path']}"
    return f"read from {read_from['path']}"


def split_table(s: dict) -> Table:
    val_split, seed = s["split"]["val_split"], s["split"]["seed"]
    held = (f"trainer.val_split={val_split:g} of the training set held out for validation, "
            f"seeded by trainer.seed={seed}" if val_split else
            "trainer.val_split=0: no validation split")
    t = _table(f"Splits, as a run uses them ({held})")
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
    t.add_column("class")
    for name in counts:
        t.add_column(name, justify="right")
    t.add_column("total", justify="right")
    t.add_column("share", justify="right")
    grand = max(s["sizes"]["total"], 1)
    for k, cls in enumerate(s["classes"]):
        row = [counts[name][k] for name in counts]
        t.add_row(escape(cls), *(f"{n:,}" for n in row), f"{sum(row):,}",
                  f"{100 * sum(row) / grand:.1f}%")
    return t


def normalization_table(s: dict) -> Table:
    used, measured = s["normalization"]["used"], s["normalization"]["measured"]
    t = _table(f"Normalization per channel (pixel values in [0, 1]): the run uses "
               f"{used['about']}; measured: over the run's train split "
               f"({measured['images']:,} images)")
    t.add_column("channel")
    for head in ("mean (run)", "std (run)", "mean (measured)", "std (measured)"):
        t.add_column(head, justify="right")
    names = ["gray"] if len(used["mean"]) == 1 else ["red", "green", "blue"]
    for k, name in enumerate(names[:len(used["mean"])]):
        t.add_row(name, *(f"{v:.4f}" for v in (used["mean"][k], used["std"][k],
                                               measured["mean"][k], measured["std"][k])))
    return t


def sizes_table(folder: dict) -> Table:
    sizes = folder["original_sizes"]
    h, w = folder["resized_to"]
    t = _table(f"Original image sizes ({sizes['images']:,} images; a run resizes each to "
               f"{w}x{h}, width x height, aspect ratio not kept)")
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


def skipped_table(folder: dict) -> Table:
    count = folder["skipped_count"]
    more = f", the first {SHOWN_SKIPPED} here" if count > SHOWN_SKIPPED else ""
    t = _table(f"Files the loader skips ({count:,}{more}; data.json lists them)")
    t.add_column("file")
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
        console.print(escape(sizes_lines(folder)), highlight=False)
    if folder["skipped_count"]:
        console.print(skipped_table(folder))
    else:
        console.print("No file in the folder is skipped.")
    bad = folder["unreadable_count"]
    if bad:
        them = "them" if bad != 1 else "it"
        console.print(f"[bold yellow]warning:[/] {bad} file{'s' * (bad != 1)} could not be read "
                      f"as an image, and a training run stops on {them}: remove or replace "
                      f"{them}. Everything above describes the folder without {them}.",
                      highlight=False)


def show(console: Console, s: dict) -> None:
    console.print(headline(s), highlight=False)
    for table in (split_table(s), class_table(s), normalization_table(s)):
        console.print(table)
    if "imagefolder" in s:
        show_folder(console, s["imagefolder"])
    samples = s.get("samples")
    if samples and len(samples["classes_shown"]) < s["num_classes"]:
        console.print(f"samples.png shows {samples['per_class']} images of each of the first "
                      f"{len(samples['classes_shown'])} of the {s['num_classes']} classes.",
                      highlight=False)
    files = s.get("files", {})
    if files:
        console.print("Written: " + ", ".join(escape(str(p)) for p in files.values()),
                      highlight=False)
