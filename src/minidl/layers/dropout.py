"""Inverted dropout."""

from __future__ import annotations

import numbers

import numpy as np

from ..init import as_generator
from ..layer import Layer, as_float_array


class Dropout(Layer):
    """Inverted dropout with drop probability ``p``.

    Training: ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn afresh each forward
    pass from ``rng``; backward: ``dx = g * m / (1 - p)`` (the same mask). With ``p = 1`` every
    unit is dropped and the output is zero. Evaluation: identity.
    """

    _config_keys = ("p",)

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        # any real number (np.float32 too), but not a bool (p=True is a mistake) or NaN
        if (not isinstance(p, numbers.Real) or isinstance(p, (bool, np.bool_))
                or not 0.0 <= p <= 1.0):
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng, "Dropout")
        self._scale = None
        self._shape = None

    def forward(self, x):
        x = as_float_array(x, None, self)
        self._shape, self._dtype = x.shape, x.dtype
        if not self.training or self.p == 0.0:
            self._scale = 1.0
            return x
        keep = self.rng.random(x.shape) >= self.p
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        self._scale = keep.astype(x.dtype) * x.dtype.type(scale)
        return x * self._scale

    def backward(self, grad_out):
        scale = self._cache("_scale")
        g = self._check_grad_out(grad_out, self._shape).astype(self._dtype, copy=False)
        return g * scale
