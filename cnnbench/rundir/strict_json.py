"""Every JSON file cnnbench writes is strict JSON: no NaN and no Infinity, which Python's json
module would otherwise write bare and which other readers (jq, JavaScript, pandas' strict mode)
refuse. A number that is not finite becomes null, and the file says which ones were.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

NOT_FINITE_KEY = "not_finite"  # where the file lists the values written as null


def strict(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every float that is NaN or infinite, at any depth, replaced by None, and
    NOT_FINITE_KEY listing where they were as dotted paths ('test/loss',
    'last_epoch_metrics.val/loss'), added to the paths an earlier write listed."""
    found: list[str] = []
    clean = {key: _clean(value, str(key), found) for key, value in data.items()}
    if found:
        earlier = clean.get(NOT_FINITE_KEY)
        earlier = [p for p in earlier if isinstance(p, str)] if isinstance(earlier, list) else []
        clean[NOT_FINITE_KEY] = list(dict.fromkeys([*earlier, *found]))
    return clean


def _clean(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _clean(v, f"{path}.{k}", found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{path}.{i}", found) for i, v in enumerate(value)]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not math.isfinite(float(value)):
            found.append(path)
            return None
        return float(value)
    return value
