"""Flatten every axis but the first."""

from __future__ import annotations

import numpy as np

from ..layer import Layer, as_float_array


class Flatten(Layer):
    """Reshape (N, d1, d2, ...) to (N, d1*d2*...); backward reshapes the gradient back."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, x):
        x = as_float_array(x, None, self)
        if x.ndim < 1:
            raise ValueError(f"{self.describe()}: expected at least a batch axis, got a scalar")
        self._shape, self._dtype = x.shape, x.dtype
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # -1 fails for an empty batch

    def backward(self, grad_out):
        shape = self._cache("_shape")
        g = self._check_grad_out(grad_out, (shape[0], int(np.prod(shape[1:], dtype=np.int64))))
        return g.astype(self._dtype, copy=False).reshape(shape)
