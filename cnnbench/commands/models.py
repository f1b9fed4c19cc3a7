"""`cnnbench models`: every model in conf/model/, sized for one dataset's input; with
`--timm PATTERN`, timm's models whose names match (`resnet*`), as `model=timm model.name=NAME`
builds them.

For each model: parameters and output shape for the dataset's channels, image size and classes
(taken from a metadata table, no files are read), or the reason it cannot take that input.
Models are built on PyTorch's "meta" device, so even a 300-million-parameter AlexNet for
224x224 images costs no memory or time; the counts are those of the real model.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from omegaconf import DictConfig
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cnnbench.data.shapes import InputShape, input_shape
from cnnbench.errors import UserError
from cnnbench.settings.names import check_override_names, plain_group_choices
from cnnbench.settings.options import flag, normalized

USAGE = ("Usage: cnnbench models dataset=NAME, optionally with dataset.KEY=VALUE overrides, "
         "--timm PATTERN (timm's models whose names match, e.g. 'resnet*') and json=true; "
         "`cnnbench models --help` explains each.")
HELP = """\
usage: cnnbench models dataset=NAME [dataset.KEY=VALUE ...] [--timm PATTERN]

Lists every model of conf/model/ sized for a dataset: its parameters and output
for the dataset's channels, image size and classes (no file is read, no model is
trained), or why it cannot take that input.
  dataset=NAME, dataset.KEY=VALUE  as for cnnbench train
  --timm PATTERN   timm's models whose names match instead, e.g. 'resnet*'
  json=true        the list as JSON on stdout, no table
Examples:
  cnnbench models dataset=cifar100
  cnnbench models --timm 'convnext*' dataset=cifar10
  cnnbench models dataset=synthetic dataset.image_size=64 dataset.channels=3
"""
SOURCES = "source 000-004: the course material a model follows; docs/models.md lists them."
TIMM_LIMIT = 300  # models listed for one pattern (timm has well over a thousand)
ERROR_CHARS = 120  # an error's reason, as a row of the listing keeps it


@dataclass
class ZooRow:
    model: str
    params: int | None
    output_shape: list[int] | None
    target: str
    summary: str
    error: str | None = None


def describe(name: str, shape: InputShape, device: str = "meta") -> ZooRow:
    """One model sized for `shape`: its parameter count and output, or why it cannot be built."""
    from cnnbench.models import model_config, model_summary

    cfg = model_config(name)
    return sized(ZooRow(name, None, None, str(cfg.get("_target_", "")), model_summary(name)),
                 cfg, shape, device)


def sized(row: ZooRow, cfg, shape: InputShape, device: str = "meta") -> ZooRow:
    """`row` with the parameters and output of the model `cfg` for `shape` (or the error)."""
    import torch

    from cnnbench.models import build_model, count_parameters
    from cnnbench.models.meta_build import meta_build, meta_forward

    name = row.model
    try:
        with meta_build() if device == "meta" else torch.device(device):
            model = build_model(cfg, in_channels=shape.channels, image_size=shape.image_size,
                                num_classes=shape.num_classes, name=name)
        model.eval()
        with meta_forward() if device == "meta" else torch.inference_mode():
            out = model(torch.zeros(1, shape.channels, *shape.image_size, device=device))
    except UserError as err:
        row.error = getattr(err, "reason", None) or str(err)
        return row
    except Exception as err:  # noqa: BLE001 (a timm model's own check of its input, or its failure)
        row.error = f"cannot take {shape.channels}x{shape.height}x{shape.width} images: " \
                    f"{last_line(err)}"
        return row
    row.params = count_parameters(model)
    row.output_shape = list(out.shape[1:])
    return row


def last_line(err: BaseException, limit: int = ERROR_CHARS) -> str:
    """The last line of an error (PyTorch puts the specific one last), at most `limit` long."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[-1] if lines else type(err).__name__
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def zoo(shape: InputShape) -> list[ZooRow]:
    from cnnbench.models import model_names

    return [describe(name, shape) for name in model_names()]


def timm_zoo(pattern: str, shape: InputShape) -> tuple[list[ZooRow], int]:
    """timm's models matching `pattern`, sized for `shape` (at most TIMM_LIMIT of them), and
    how many match in all."""
    import timm

    from cnnbench.models import model_config

    names = timm.list_models(pattern)
    cfg = model_config("timm")
    rows = []
    for name in names[:TIMM_LIMIT]:
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{name}.*")]
        more = f" (+{len(tags) - 1} more)" if len(tags) > 1 else ""
        summary = f"pretrained: {tags[0]}{more}" if tags else "no pretrained weights"
        cfg.name = name
        rows.append(sized(ZooRow(name, None, None, "timm", summary), cfg, shape))
    return rows, len(names)


def table(rows: list[ZooRow], dataset: str, shape: InputShape) -> Table:
    """The models that take the input; those that cannot are `refusals`."""
    t = Table(title=f"Models for {dataset} ({shape})", title_justify="left")
    t.add_column("model", style="bold")
    t.add_column("parameters", justify="right")
    t.add_column("output", justify="right")
    t.add_column("what it is")
    for r in rows:
        if not r.error:
            t.add_row(r.model, f"{r.params:,}", "x".join(map(str, r.output_shape)), r.summary)
    return t


def refusals(rows: list[ZooRow], shape: InputShape) -> list[Text]:
    """One line per model that cannot be built or run for `shape`: `model: why`, cut to the
    terminal's width rather than wrapped."""
    failed = [r for r in rows if r.error]
    if not failed:
        return []
    head = Text(f"{len(failed)} of {len(rows)} models cannot be built or run for {shape}:")
    lines = [Text.assemble((r.model, "bold"), ": ", (r.error, "red")) for r in failed]
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return [head, *lines]


def compose_dataset(overrides: list[str]) -> DictConfig:
    """The `dataset` node of the train config with these overrides, as `cnnbench train` sees it."""
    from cnnbench.settings.config_files import compose_checked

    return compose_checked(overrides, "models", USAGE).dataset


def run_models(args: list[str], console: Console) -> int:
    if any(a in ("-h", "--help") for a in args):
        console.print(HELP, highlight=False, markup=False)
        return 0
    args = normalized(args, flags=("json",), valued=("timm",))
    as_json = any(flag(a.partition("=")[2], "json") for a in args if a.startswith("json="))
    patterns = [a.partition("=")[2] for a in args if a.startswith("timm=")]
    overrides = plain_group_choices([a for a in args if not a.startswith(("json=", "timm="))])
    flags = [a for a in overrides if a.startswith("-")]
    if flags:
        raise UserError(f"Unknown option(s) {' '.join(flags)} for `cnnbench models`. {USAGE}")
    check_override_names(overrides, "models", own=("json", "timm"))
    dataset = compose_dataset(overrides)
    shape = input_shape(dataset)
    if patterns:
        rows, matched = timm_zoo(patterns[-1], shape)
        if not matched:
            raise UserError(f"No timm model name matches {patterns[-1]!r}: a pattern uses * as "
                            f"a wildcard, e.g. --timm 'resnet*' or --timm '*vit_tiny*'.")
        if matched > len(rows):
            console.print(f"{matched} timm models match {patterns[-1]!r}; the first {len(rows)} "
                          f"are listed (narrow the pattern for the others).", highlight=False)
    else:
        rows = zoo(shape)
    if as_json:
        print(json.dumps([{"dataset": dataset.name, "input": [shape.channels, *shape.image_size],
                           **asdict(r)} for r in rows], indent=2))
    else:
        console.print(table(rows, dataset.name, shape))
        if any(re.search(r"\bsources? 00\d", r.summary) for r in rows if not r.error):
            console.print(Group(Text(SOURCES, no_wrap=False, overflow="fold")))
        for line in refusals(rows, shape):
            console.print(line, highlight=False)
    return 0
