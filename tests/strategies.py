"""Shared hypothesis strategies for the gradient-check and layer tests.

Shapes come from hypothesis (batch 1..8, widths 1..16); the values come from a NumPy Generator
seeded by a hypothesis-drawn seed, so that examples are well-conditioned floats (hypothesis'
own floats would spend their budget on denormals and infinities, which gradcheck cannot use).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

batch_sizes = st.integers(min_value=1, max_value=8)
widths = st.integers(min_value=1, max_value=16)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def normal(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.05) -> np.ndarray:
    """Values at least ``margin`` from 0: for ReLU-like layers, whose kink breaks finite
    differences (the step is 1e-6, so any margin well above it will do)."""
    z = rng.standard_normal(shape)
    return np.sign(z + (z == 0)) * (np.abs(z) + margin)


def spread_columns(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(n, d) values whose every column has a clear spread (std well above 0), so that batch
    normalisation in training mode is well conditioned even for n = 2."""
    base = np.linspace(-1.0, 1.0, n)
    cols = [rng.permutation(base) * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1) for _ in range(d)]
    return np.stack(cols, axis=1) + 0.05 * rng.standard_normal((n, d))


def distinct(rng: np.random.Generator, shape, gap: float = 0.01) -> np.ndarray:
    """Values at least ``gap`` apart from each other, in random order: for max pooling, whose
    choice of maximum must not flip under the finite-difference step (1e-6)."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * gap - size * gap / 2).reshape(shape)
