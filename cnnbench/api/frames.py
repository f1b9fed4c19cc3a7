"""Rows of dicts as a pandas DataFrame, for those who have pandas."""
from __future__ import annotations

from typing import Any, Sequence

from cnnbench.api.errors import CnnbenchError


def pandas_frame(rows: Sequence[dict[str, Any]]):
    """`rows` as a pandas DataFrame; a clear error when pandas is not installed."""
    try:
        import pandas
    except ImportError:
        raise CnnbenchError("A DataFrame needs pandas, which is not installed: pip install "
                            "pandas (the rows are also there as a list of dicts).") from None
    return pandas.DataFrame(list(rows))
