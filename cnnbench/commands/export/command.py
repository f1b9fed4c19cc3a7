"""`cnnbench export checkpoint=RUN [format=onnx|torchscript] [out=FILE]`.

Writes the checkpoint's model (eval mode, fp32, CPU) as an ONNX or TorchScript file with its
class names and preprocessing inside, then runs the file on a batch of 1 and one of 3 and
compares its outputs with the PyTorch model's.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.markup import escape

from cnnbench.errors import UserError
from cnnbench.settings.options import normalized, run_subcommand

USAGE = """\
usage: cnnbench export checkpoint=PATH [format=onnx|torchscript] [out=FILE]

Writes a trained model as one file for other programs, with its class names and
how to prepare its input (channels, size, mean/std) in the file's metadata.
  checkpoint=PATH   a run directory or a best.pt/last.pt file
  format=onnx       onnx (needs: pip install onnx onnxruntime, or the project's
                    [export] extra) or torchscript
  out=FILE          the file to write (a folder: the default name inside it);
                    default: <run>/export/<checkpoint>.onnx (or .torchscript.pt)
The input is `input`, float32 N x C x H x W (any N), normalized; the output is
`logits`, N x classes. `cnnbench predict checkpoint=FILE.onnx` uses an ONNX file.
"""
TOLERANCE = 1e-4


def parse_args(args: Sequence[str]) -> tuple[str, str, str | None]:
    from cnnbench.commands.export.formats import FORMATS

    found: dict[str, str] = {}
    for arg in normalized(args, valued=("checkpoint", "format", "out")):
        key, sep, value = arg.partition("=")
        if not sep or key not in ("checkpoint", "format", "out"):
            raise UserError(f"'{arg}' is not an option of `cnnbench export`.\n{USAGE}")
        found[key] = value
    if not found.get("checkpoint"):
        raise UserError(f"`cnnbench export` needs checkpoint=PATH.\n{USAGE}")
    fmt = found.get("format", "onnx").lower()
    if fmt not in FORMATS:
        raise UserError(f"format={found['format']} is not an export format: "
                        f"{' or '.join(FORMATS)}.")
    return found["checkpoint"], fmt, found.get("out")


def default_path(checkpoint: Path, fmt: str) -> Path:
    """<run>/export/<stem><suffix> for a run's checkpoints/<stem>.pt; beside the file for one
    elsewhere."""
    from cnnbench.commands.export.formats import SUFFIXES
    from cnnbench.rundir import CHECKPOINT_DIR

    folder = checkpoint.parent
    if folder.name == CHECKPOINT_DIR:
        folder = folder.parent
    return folder / "export" / f"{checkpoint.stem}{SUFFIXES[fmt]}"


def target_path(out: str | None, checkpoint: Path, fmt: str) -> Path:
    default = default_path(checkpoint, fmt)
    if out is None:
        return default
    path = Path(out).expanduser()
    return path / default.name if path.is_dir() or out.endswith(("/", "\\")) else path


CHECK_BATCHES = (1, 3)  # the exported file is run on a batch of each size


def reference_outputs(trained: Any) -> dict[int, Any]:
    """The PyTorch model's logits for each check batch; a UserError when any is NaN or infinite
    (the model's weights were checked when it was loaded: its computation overflows)."""
    import torch

    from cnnbench.commands.export.formats import example_batch
    from cnnbench.engine.finite import nonfinite_rows

    with torch.no_grad():
        outputs = {n: trained.model(example_batch(trained, n)) for n in CHECK_BATCHES}
    if any(nonfinite_rows(out) for out in outputs.values()):
        raise UserError(f"{trained.checkpoint} gives outputs that are NaN or infinite for a "
                        f"normalized random batch, so an export of it would too: nothing was "
                        f"written. Export a checkpoint of a run that did not diverge.")
    return outputs


def difference(got: Any, expected: Any) -> float:
    """The largest |got - expected|; a NaN in either, or an infinity the other does not have,
    is an infinite difference (a NaN is never equal to anything)."""
    import torch

    gap = torch.where(got == expected, 0.0, (got.double() - expected.double()).abs())
    return float(torch.nan_to_num(gap, nan=math.inf).max()) if gap.numel() else 0.0


def check(path: Path, fmt: str, trained: Any, expected: dict[int, Any]) -> float | None:
    """The largest |difference| between the file's logits and the model's (`expected`), over
    each check batch (None: not checked, onnxruntime missing)."""
    from cnnbench.commands.export.formats import example_batch, exported_outputs

    worst = 0.0
    for n in CHECK_BATCHES:
        got = exported_outputs(path, fmt, example_batch(trained, n))
        if got is None:
            return None
        worst = max(worst, difference(got, expected[n]))
    return worst


def difference_text(difference: float | None) -> str:
    if difference is None:
        return "not checked (onnxruntime is not installed)"
    if not math.isfinite(difference):
        return "not finite: the file's outputs are NaN or infinite (batches of 1 and 3)"
    return f"{difference:.2g} vs PyTorch (batches of 1 and 3)"


def export(args: Sequence[str], console: Console) -> Path:
    from cnnbench.commands.export.formats import (
        is_export,
        onnx_bytes,
        torchscript_bytes,
    )
    from cnnbench.run.sinks import print_paths, summary_table
    from cnnbench.run.trained import load_trained
    from cnnbench.rundir import claim_outputs, write_bytes

    checkpoint, fmt, out = parse_args(args)
    trained = load_trained(Path(checkpoint).expanduser(), "cpu")
    expected = reference_outputs(trained)
    path = target_path(out, trained.checkpoint, fmt)
    writer = claim_outputs(path.parent, "export", [path.name], lambda _: is_export(path))
    data = onnx_bytes(trained) if fmt == "onnx" else torchscript_bytes(trained)
    try:
        write_bytes(path, data, writer)
    except OSError as err:
        raise UserError(f"Cannot write {path} ({err.strerror or err}): choose a file in a "
                        f"folder you can write to with out=FILE.") from None
    difference = check(path, fmt, trained, expected)
    prep = trained.prep
    console.print(summary_table(escape(f"{trained.name} on {trained.dataset} as {fmt}"), {
        "input": f"{' x '.join(map(str, ['N', *prep.input_shape]))}, normalized",
        "classes": escape(f"{len(prep.classes)} ({', '.join(prep.classes[:5])}"
                          f"{', ...' if len(prep.classes) > 5 else ''})"),
        "size": f"{len(data) / 1e6:,.2f} MB",
        "max |difference|": difference_text(difference),
    }))
    if difference is not None and not difference <= TOLERANCE:
        console.print(f"[yellow]warning:[/] the exported model's outputs differ from the "
                      f"PyTorch model's: max |difference| {difference_text(difference)}, more "
                      f"than {TOLERANCE:g}.", highlight=False)
    print_paths(console, {"checkpoint": trained.checkpoint, "exported": path})
    return path


def main(args: Sequence[str], console: Console) -> int:
    return run_subcommand(args, console, USAGE, export)
