"""The tuning budget: which learning rates are tried, and which one wins.

By default a log grid of :data:`GRID_POINTS` learning rates over the optimizer's declared range
(a class attribute ``lr_range = (low, high)``; without one, :data:`DEFAULT_RANGE`); with
``budget=N``, N draws log-uniform from that range by a numpy Generator seeded with
:data:`DRAW_SEED`. Each candidate is trained on one seed and scored on the validation split;
the best (a diverged run scores worst; ties go to the smaller learning rate) is then run on
every seed and scored on the test split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_RANGE = (1e-4, 1.0)
GRID_POINTS, QUICK_GRID_POINTS = 7, 3
DRAW_SEED = 0


def lr_range(cls: type) -> tuple[float, float]:
    """``cls.lr_range`` when the class declares one, else :data:`DEFAULT_RANGE`. Raises
    ``ValueError`` for a declared range that is not two finite numbers 0 < low <= high."""
    declared = getattr(cls, "lr_range", None)
    if declared is None:
        return DEFAULT_RANGE
    try:
        low, high = (float(v) for v in declared)
    except (TypeError, ValueError):
        raise ValueError(f"{cls.__name__}.lr_range must be (low, high), got {declared!r}") \
            from None
    if not (0 < low <= high < math.inf):
        raise ValueError(f"{cls.__name__}.lr_range must have 0 < low <= high, both finite, "
                         f"got {declared!r}")
    return low, high


def candidates(low: float, high: float, budget: int | None = None,
               points: int = GRID_POINTS, seed: int = DRAW_SEED) -> list[float]:
    """The learning rates tried: ``points`` on a log grid from ``low`` to ``high``, or
    (``budget``) that many log-uniform draws, sorted. Rounded to 6 significant digits, so they
    print, hash and read back the same."""
    if budget is None:
        values = np.geomspace(low, high, points) if points > 1 else np.array([low])
    else:
        rng = np.random.default_rng(seed)
        values = np.sort(np.exp(rng.uniform(np.log(low), np.log(high), budget)))
    return [float(f"{v:.6g}") for v in values]


def settings(low: float, high: float, budget: int | None, points: int) -> dict:
    """The budget as it enters the cache key."""
    if budget is None:
        return {"kind": "grid", "points": points, "range": [low, high]}
    return {"kind": "random", "draws": budget, "seed": DRAW_SEED, "range": [low, high]}


def utility(value: float, higher_is_better: bool) -> float:
    """A score as "higher is better"; a NaN or infinite one (a diverged run) is -inf."""
    if not math.isfinite(value):
        return -math.inf
    return value if higher_is_better else -value


def best(lrs: Sequence[float], scores: Sequence[float], higher_is_better: bool) -> float:
    """The learning rate of the best validation score (ties: the smaller learning rate; all
    diverged: the smallest)."""
    if not lrs:
        raise ValueError("best: no candidates")
    ranked = sorted(zip(lrs, scores, strict=True),
                    key=lambda pair: (-utility(pair[1], higher_is_better), pair[0]))
    return ranked[0][0]
