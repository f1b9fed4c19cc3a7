"""`cnnbench export checkpoint=RUN [format=onnx|torchscript] [out=FILE]`.

Writes the checkpoint's model (eval mode, fp32, CPU) as an ONNX or TorchScript file with its
class names and preprocessing inside, then runs the file on a batch of 1 and one of 3 and
compares its outputs with the PyTorch model's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
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
`logits`, N x classes. `cnnbench predict checkpoint=FILE.onnx` runs the file.
"""
# The file agrees with PyTorch where |file - PyTorch| <= ATOL + RTOL * scale, scale being the
# largest |logit| of the sample (as torch.testing's and numpy's allclose, with the outputs'
# magnitude for scale): float32 rounds relative to a value's size, so logits of 1e9 may differ
# by 1e3 and still agree to 7 digits, while logits of 1 may differ by no more than 2e-4.
ATOL, RTOL = 1e-4, 1e-4


def parse_args(args: Sequence[str]) -> tuple[str, str, str | None]:
    from cnnbench.commands.export.choices import FORMATS

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
    from cnnbench.commands.export.choices import SUFFIXES
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


def _gaps(got: Any, expected: Any) -> Any:
    """|got - expected| element by element, in float64; a NaN in either, or an infinity the
    other does not have, is an infinite gap (a NaN is never equal to anything)."""
    import torch

    gap = torch.where(got == expected, 0.0, (got.double() - expected.double()).abs())
    return torch.nan_to_num(gap, nan=math.inf)


def difference(got: Any, expected: Any) -> float:
    """The largest |got - expected| (see `_gaps`: NaN counts as an infinite difference)."""
    gap = _gaps(got, expected)
    return float(gap.max()) if gap.numel() else 0.0


def allowed(expected: Any) -> Any:
    """The largest |difference| each output may have: ATOL + RTOL x the largest finite |logit|
    of its sample (the last dimension), broadcastable against `expected`."""
    import torch

    size = torch.nan_to_num(expected.double().abs(), nan=0.0, posinf=0.0)
    scale = size.amax(dim=-1, keepdim=True) if size.dim() and size.shape[-1] else size
    return ATOL + RTOL * scale


def excess(got: Any, expected: Any) -> float:
    """The largest |got - expected| as a multiple of what `allowed` allows there: above 1, the
    file and the model disagree (an infinite gap is an infinite excess)."""
    ratio = _gaps(got, expected) / allowed(expected)
    return float(ratio.max()) if ratio.numel() else 0.0


@dataclass(frozen=True)
class Agreement:
    """How the file's logits compare with the model's, worst over the check batches."""
    difference: float   # the largest |difference|
    excess: float       # the largest |difference| / what the tolerance allows there
    scale: float        # the largest |logit| of the model's outputs

    @property
    def agrees(self) -> bool:
        return self.excess <= 1.0


def check(path: Path, fmt: str, trained: Any, expected: dict[int, Any]) -> Agreement | None:
    """How the file's logits agree with the model's (`expected`) over each check batch (None:
    not checked, onnxruntime missing)."""
    from cnnbench.commands.export.formats import example_batch, exported_outputs

    worst, ratio, scale = 0.0, 0.0, 0.0
    for n in CHECK_BATCHES:
        got = exported_outputs(path, fmt, example_batch(trained, n))
        if got is None:
            return None
        worst = max(worst, difference(got, expected[n]))
        ratio = max(ratio, excess(got, expected[n]))
        scale = max(scale, float(expected[n].abs().max()) if expected[n].numel() else 0.0)
    return Agreement(worst, ratio, scale)


def difference_text(difference: float | None, scale: float | None = None) -> str:
    """'3.1e-06 vs PyTorch (batches of 1 and 3)', then ', logits up to 12' when `scale` (the
    largest |logit|) is given."""
    if difference is None:
        return "not checked (onnxruntime is not installed)"
    if not math.isfinite(difference):
        return "not finite: the file's outputs are NaN or infinite (batches of 1 and 3)"
    size = f", logits up to {scale:.2g}" if scale is not None else ""
    return f"{difference:.2g} vs PyTorch (batches of 1 and 3){size}"


def tolerance_text() -> str:
    return f"{ATOL:g} + {RTOL:g} x the sample's largest |logit|"


def export(args: Sequence[str], console: Console) -> Path:
    """The exported file; the command line is checked before torch is imported."""
    checkpoint, fmt, out = parse_args(args)
    from cnnbench.run.trained import load_trained

    trained = load_trained(Path(checkpoint).expanduser(), "cpu")  # no checkpoint: before torch
    from cnnbench.commands.export.formats import (
        is_export,
        onnx_bytes,
        torchscript_bytes,
    )
    from cnnbench.run.sinks import print_paths, summary_table
    from cnnbench.rundir import claim_outputs, write_bytes

    expected = reference_outputs(trained)
    path = target_path(out, trained.checkpoint, fmt)
    writer = claim_outputs(path.parent, "export", [path.name], lambda _: is_export(path))
    data = onnx_bytes(trained) if fmt == "onnx" else torchscript_bytes(trained)
    try:
        write_bytes(path, data, writer)
    except OSError as err:
        raise UserError(f"Cannot write {path} ({err.strerror or err}): choose a file in a "
                        f"folder you can write to with out=FILE.") from None
    agreement = check(path, fmt, trained, expected)
    shown = difference_text(None) if agreement is None else \
        difference_text(agreement.difference, agreement.scale)
    prep = trained.prep
    console.print(summary_table(escape(f"{trained.name} on {trained.dataset} as {fmt}"), {
        "input": f"{' x '.join(map(str, ['N', *prep.input_shape]))}, normalized",
        "classes": escape(f"{len(prep.classes)} ({', '.join(prep.classes[:5])}"
                          f"{', ...' if len(prep.classes) > 5 else ''})"),
        "size": f"{len(data) / 1e6:,.2f} MB",
        "max |difference|": shown,
    }))
    if agreement is not None and not agreement.agrees:
        console.print(f"[yellow]warning:[/] the exported model's outputs differ from the "
                      f"PyTorch model's: max |difference| {escape(shown)}, more than the "
                      f"tolerance ({tolerance_text()}) allows.", highlight=False)
    print_paths(console, {"checkpoint": trained.checkpoint, "exported": path})
    return path


def main(args: Sequence[str], console: Console) -> int:
    return run_subcommand(args, console, USAGE, export)
