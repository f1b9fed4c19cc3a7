"""`published`: the number a preset reproduces, as its source published it.

An experiment preset may carry, at the top level of the config,

    published:
      value: 0.988          # a fraction in (0, 1]
      metric: test/acc
      source: "course notebook 004 (LeNet-5 in PyTorch), test accuracy after 10 epochs"

and the run copies it into metrics.json as `published` (null when the config has none), so a
run's result can be set beside the number it aims at.
"""
from __future__ import annotations

from typing import Any, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from cnnbench.errors import UserError
from cnnbench.settings.checks import check_fraction

KEYS = ("value", "metric", "source")
EXAMPLE = "published={value:0.988,metric:test/acc,source:'where the number comes from'}"


def published_block(block: Any) -> dict[str, Any] | None:
    """The `published` block as a plain dict of exactly value, metric and source; None when
    there is none. Anything else is one paragraph."""
    if isinstance(block, (DictConfig, ListConfig)):
        block = OmegaConf.to_container(block, resolve=True)
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise UserError(f"published={block!r} is not valid: it must be a group of three keys "
                        f"(value, metric, source), e.g. {EXAMPLE}, or null.")
    missing = [k for k in KEYS if k not in block]
    unknown = sorted(str(k) for k in block if k not in KEYS)
    if missing or unknown:
        wrong = "; ".join(part for part in (
            f"it lacks {', '.join(missing)}" if missing else "",
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not known"
            if unknown else "") if part)
        raise UserError(f"The published block is not valid: {wrong}. It holds exactly value "
                        f"(a fraction in (0, 1]), metric and source, e.g. {EXAMPLE}.")
    check_fraction("published.value", block["value"], "the published number", nullable=False)
    for key in ("metric", "source"):
        value = block[key]
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"published.{key}={value!r} is not valid: it must be a non-empty "
                            f"string, e.g. {EXAMPLE}.")
    return {"value": float(block["value"]), "metric": block["metric"],
            "source": block["source"]}
