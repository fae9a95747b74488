"""Batch normalisation over the feature axis of (N, C) inputs."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..layer import Layer, as_float_array
from ..parameter import Parameter
from ..validation import check_bool, check_float_dtype, check_int, check_number


class BatchNorm1d(Layer):
    """Batch normalisation of (N, C) inputs, as ``torch.nn.BatchNorm1d`` does it.

    Training: with the batch mean ``mu`` and *biased* variance ``var`` of each feature,
    ``x_hat = (x - mu) / sqrt(var + eps)`` and ``y = gamma * x_hat + beta``. The running
    statistics are updated with the *unbiased* variance:
    ``running_mean = (1 - momentum) * running_mean + momentum * mu`` and
    ``running_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)``.

    Evaluation: ``y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``.

    Backward (training), with ``d = g * gamma``:
    ``dx = (d - mean(d) - x_hat * mean(d * x_hat)) / sqrt(var + eps)``,
    ``dgamma = sum(g * x_hat)``, ``dbeta = sum(g)`` (sums and means over the batch axis).

    Parameters, in this order: ``weight`` (gamma, ones) then ``bias`` (beta, zeros), when
    ``affine=True``. Buffers: ``running_mean`` (zeros), ``running_var`` (ones). ``momentum`` is
    a number in [0, 1] (PyTorch's ``momentum=None``, a cumulative average, is not offered).
    """

    _config_keys = ("num_features", "eps", "momentum", "affine", "dtype")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, dtype=np.float64):
        super().__init__()
        num_features = check_int("BatchNorm1d", "num_features", num_features, low=1)
        check_number("BatchNorm1d", "eps", eps, low=0.0)
        if eps == 0:
            raise ValueError("BatchNorm1d: eps must be > 0, got 0")
        check_number("BatchNorm1d", "momentum", momentum, low=0.0, high=1.0)
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = check_bool("BatchNorm1d", "affine", affine)
        self.dtype = check_float_dtype("BatchNorm1d", dtype)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features), dtype=self.dtype)
            self.bias = Parameter(np.zeros(self.num_features), dtype=self.dtype)
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype=self.dtype))
        self.register_buffer("running_var", np.ones(self.num_features, dtype=self.dtype))
        self._x_hat = None

    def forward(self, x):
        x = as_float_array(x, self.dtype, self)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{self.describe()}: expected input of shape (N, {self.num_features}), "
                f"got {x.shape}"
            )
        n = x.shape[0]
        if self.training:
            if n < 2:
                raise ValueError(
                    f"{self.describe()}: training needs more than 1 sample per batch to estimate "
                    f"a variance, got a batch of {n}"
                )
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            # A non-finite batch (a diverging run) must not poison statistics that outlive it:
            # a feature whose batch mean or variance is not finite keeps its running values.
            m = self.momentum
            finite = np.isfinite(mean) & np.isfinite(var)
            if finite.all():
                self.running_mean *= 1 - m
                self.running_mean += m * mean
                self.running_var *= 1 - m
                self.running_var += (m * n / (n - 1)) * var
            else:
                self.running_mean[finite] = ((1 - m) * self.running_mean + m * mean)[finite]
                self.running_var[finite] = ((1 - m) * self.running_var
                                            + (m * n / (n - 1)) * var)[finite]
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self._x_hat, self._inv_std, self._mode = x_hat, inv_std, self.training
        if self.affine:
            return x_hat * self.weight.data + self.bias.data
        return x_hat

    def backward(self, grad_out):
        x_hat = self._cache("_x_hat")
        g = self._check_grad_out(grad_out, x_hat.shape).astype(self.dtype, copy=False)
        if self.affine:
            np.sum(g * x_hat, axis=0, out=self.weight.grad)
            np.sum(g, axis=0, out=self.bias.grad)
            d = g * self.weight.data
        else:
            d = g
        if not self._mode:
            return d * self._inv_std
        return (d - d.mean(axis=0) - x_hat * (d * x_hat).mean(axis=0)) * self._inv_std
