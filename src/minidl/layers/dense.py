"""Fully connected layer: y = x W + b."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..init import as_generator, get_initializer, init_config
from ..layer import Layer, as_float_array
from ..parameter import Parameter
from ..validation import check_allocation, check_bool, check_float_dtype, check_int


class Dense(Layer):
    """Fully connected layer ``y = x @ W + b``.

    Forward:  ``y = x W + b``, with x of shape (N, in_features), W of shape
    (in_features, out_features) and b of shape (out_features,).

    Backward: ``dW = x^T g``, ``db = sum_n g[n]``, ``dx = g W^T`` for g = dL/dy.

    Parameters, in this order: ``weight`` (in_features, out_features), then ``bias``
    (out_features,) when ``bias=True``. ``init`` names an initialiser from :mod:`minidl.init`
    or is a callable ``init(shape, rng, dtype)``; the bias starts at zero. ``rng`` (a
    ``numpy.random.Generator`` or an int seed) is required. Inputs are cast to the layer's dtype.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init="glorot_uniform", rng=None, dtype=np.float64):
        super().__init__()
        self.in_features = check_int("Dense", "in_features", in_features, low=1)
        self.out_features = check_int("Dense", "out_features", out_features, low=1)
        bias = check_bool("Dense", "bias", bias)
        self.init = init
        self.dtype = check_float_dtype("Dense", dtype)
        generator = as_generator(rng, "Dense")
        check_allocation("Dense", f"a {self.in_features}x{self.out_features} weight (and its "
                         f"gradient)", [(self.in_features, self.out_features)] * 2, self.dtype)
        weight = get_initializer(init)((self.in_features, self.out_features), generator, self.dtype)
        self.weight = Parameter(weight, dtype=self.dtype)
        self.bias = Parameter(np.zeros(self.out_features), dtype=self.dtype) if bias else None
        self._x = None

    @property
    def use_bias(self) -> bool:
        return self.bias is not None

    def get_config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.use_bias,
            "init": init_config(self.init),
            "dtype": self.dtype.name,
        }

    def forward(self, x):
        x = as_float_array(x, self.dtype, self)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ShapeError(
                f"{self.describe()}: expected input of shape (N, {self.in_features}), "
                f"got {x.shape}"
            )
        self._x = x
        out = x @ self.weight.data
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, grad_out):
        x = self._cache("_x")
        g = self._check_grad_out(grad_out, (x.shape[0], self.out_features))
        g = g.astype(self.dtype, copy=False)
        np.matmul(x.T, g, out=self.weight.grad)
        if self.bias is not None:
            np.sum(g, axis=0, out=self.bias.grad)
        return g @ self.weight.data.T if self.needs_input_grad else None


#: PyTorch's name for a fully connected layer (its weight here is (in, out), not (out, in)).
Linear = Dense
