"""The `evaluation` config group as a plain, validated object."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from cnnbench.errors import UserError
from cnnbench.settings.typed import from_mapping


@dataclass
class EvaluationSettings:
    enabled: bool = True
    shifts: list[int] = field(default_factory=lambda: [2, 4])
    misclassified: int = 36
    plots: bool = True
    table: bool = True
    worst_classes: int = 3

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> EvaluationSettings:
        data = dict(cfg) if isinstance(cfg, Mapping) else cfg
        if isinstance(data, dict) and "shifts" in data:  # shifts=2 means [2]; null means none
            shifts = data["shifts"]
            data["shifts"] = (list(shifts) if isinstance(shifts, (list, tuple)) else
                              [] if shifts is None else [shifts])
        settings = from_mapping(cls, data, "evaluation")
        settings.validate()
        return settings

    def validate(self) -> None:
        for k in self.shifts:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise UserError(f"evaluation.shifts={self.shifts!r} is not valid: each shift is a "
                                f"whole number of pixels >= 1, e.g. 'evaluation.shifts=[2,4]' "
                                f"(or 'evaluation.shifts=[]' for none).")
        for key in ("misclassified", "worst_classes"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"evaluation.{key}={value!r} is not valid: it must be a whole "
                                f"number >= 0.")
