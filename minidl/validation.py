"""Argument checks shared by layers, optimizers and schedules: a clear ValueError or nothing."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def check_number(owner: str, name: str, value: Any, low: float | None = None,
                 high: float | None = None, high_inclusive: bool = True) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number in [low, high] (or [low, high))."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value!r}")
    if high is not None and (value > high or (not high_inclusive and value == high)):
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{owner}: {name} must lie in [{low}, {high}{bracket}, got {value!r}")


def check_betas(owner: str, betas: Any) -> tuple[float, float]:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        check_number(owner, f"betas[{i}]", b, low=0.0, high=1.0, high_inclusive=False)
    return float(betas[0]), float(betas[1])
