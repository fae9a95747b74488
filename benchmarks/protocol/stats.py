"""Honest statistics: a difference is called only where the seeds separate it.

Each optimizer's final test metric over its seeds gives an interval, mean +- 2 standard errors
(standard error: the sample standard deviation over sqrt(seeds)). Two optimizers differ only
where their intervals do not overlap; otherwise the difference is "within noise". One seed
gives no interval and never separates anything.

A diverged run (a NaN or infinite metric) counts as the worst possible score: a sample whose
runs all diverged is a point at the bottom, below every finite interval; one where some
diverged reaches from the bottom up to its best finite run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BETTER, WORSE, NOISE = "better", "worse", "within noise"


def interval(values: Sequence[float], higher_is_better: bool = True) -> tuple[float, float]:
    """``(low, high)`` of mean +- 2 standard errors, in "higher is better" units (a loss is
    negated); diverged runs as described in the module docstring."""
    sign = 1.0 if higher_is_better else -1.0
    good = [sign * float(v) for v in values if math.isfinite(v)]
    if not good:
        return (-math.inf, -math.inf)
    if len(good) < len(values):
        return (-math.inf, max(good))
    n = len(good)
    mean = sum(good) / n
    if n < 2:
        return (-math.inf, math.inf)
    sd = math.sqrt(sum((v - mean) ** 2 for v in good) / (n - 1))
    half = 2 * sd / math.sqrt(n)
    return (mean - half, mean + half)


def compare(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True) -> str:
    """``"better"`` or ``"worse"`` (``a`` against ``b``) where the intervals mean +- 2 standard
    errors over seeds do not overlap, else ``"within noise"``."""
    lo_a, hi_a = interval(a, higher_is_better)
    lo_b, hi_b = interval(b, higher_is_better)
    if lo_a > hi_b:
        return BETTER
    if lo_b > hi_a:
        return WORSE
    if hi_a == hi_b == -math.inf:  # both diverged everywhere: equal, not separated
        return NOISE
    if hi_a == -math.inf:
        return WORSE
    if hi_b == -math.inf:
        return BETTER
    return NOISE
