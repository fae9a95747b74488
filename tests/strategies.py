"""Shared hypothesis strategies for the gradient-check and layer tests: those of
:mod:`minidl.testing`, which publishes them to users (this module re-exports them, so the tests
use the same ones)."""

from __future__ import annotations

from minidl.testing import (
    away_from_zero,
    batch_sizes,
    batches,
    distinct,
    normal,
    off_kinks,
    probabilities,
    seeds,
    shapes,
    spread_columns,
    widths,
)

__all__ = ["away_from_zero", "batch_sizes", "batches", "distinct", "normal", "off_kinks",
           "probabilities", "seeds", "shapes", "spread_columns", "widths"]
