"""Pooling over NCHW inputs: MaxPool2D, AvgPool2D (windows) and GlobalAvgPool2D (whole maps)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..layer import Layer, as_float_array
from ..validation import check_allocation
from ._windows import FAST_DTYPES, add_windows, kernels, pair, windows


class _Pool2D(Layer):
    """Shared mechanics of window pooling: argument checks, shapes, windows and their adjoint.
    A subclass writes ``pool(win) -> y`` and ``window_grad(g) -> dL/dwin`` for the windows
    ``win`` of shape (N, C, OH, OW, kh*kw)."""

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else pair(name, "stride", stride, 1)
        self._shape = None

    def get_config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def forward(self, x):
        x = as_float_array(x, None, self)
        kh, kw = self.kernel_size
        if x.ndim != 4:
            raise ShapeError(f"{self.describe()}: expected input of shape (N, C, H, W), "
                             f"got {x.shape}")
        if x.shape[2] < kh or x.shape[3] < kw:
            raise ShapeError(f"{self.describe()}: input of {x.shape[2]}x{x.shape[3]} is smaller "
                             f"than the {kh}x{kw} window")
        self._check_windows(x)
        win = windows(x, self.kernel_size, self.stride)
        win = win.reshape(*win.shape[:4], kh * kw)                # (N, C, OH, OW, kh*kw) copy
        self._shape, self._dtype = x.shape, x.dtype
        return self.pool(win)

    def _out_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(N, C, OH, OW) of an input of ``shape`` (rows and columns no window fits dropped)."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (*shape[:2], (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1)

    def _check_windows(self, x: np.ndarray) -> tuple[int, int, int, int]:
        """Refuse, before any allocation, windows of ``x`` that cannot fit in memory; returns
        the output shape."""
        (kh, kw), out_shape = self.kernel_size, self._out_shape(x.shape)
        check_allocation(self.describe, lambda: f"{kh}x{kw} windows over a {x.shape[2]}x"
                         f"{x.shape[3]} input", [(*out_shape, kh, kw)], x.dtype, ShapeError)
        return out_shape

    def backward(self, grad_out):
        shape = self._cache("_shape")
        kh, kw = self.kernel_size
        out_shape = self._out_shape(shape)
        g = self._check_grad_out(grad_out, out_shape).astype(self._dtype, copy=False)
        dwin = self.window_grad(g).reshape(*out_shape, kh, kw)
        return add_windows(dwin, shape, self.stride)

    def pool(self, win: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def window_grad(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MaxPool2D(_Pool2D):
    """Max pooling over ``kernel_size`` windows moved by ``stride`` (default: ``kernel_size``).

    Forward: ``y[n, c, i, j] = max of x[n, c, i*sh : i*sh+kh, j*sw : j*sw+kw]``.
    Backward: each ``g[n, c, i, j]`` goes to the position of that window's maximum (the first
    one on a tie, as PyTorch); overlapping windows add up. Rows and columns that fit no window
    get no output and zero gradient.
    """

    def forward(self, x):
        fast = kernels()
        x = as_float_array(x, None, self)
        if fast is None or x.ndim != 4 or x.dtype not in FAST_DTYPES \
                or x.shape[2] < self.kernel_size[0] or x.shape[3] < self.kernel_size[1]:
            out = super().forward(x)             # (which also raises the shape errors)
            self._fast = False                   # (only once that forward has succeeded)
            return out
        # numba: the maxima and their positions in one pass over x, no window copy
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        # the same refusal as the NumPy path's (whose window copy this loop does not make: a
        # window count that large would take it hours)
        out = np.empty(self._check_windows(x), dtype=x.dtype)
        oh, ow = out.shape[2:]
        argmax = np.empty(out.shape, dtype=np.int32)
        fast.max_pool(np.ascontiguousarray(x), kh, kw, sh, sw, oh, ow, out, argmax)
        self._argmax, self._fast = argmax, True
        self._shape, self._dtype = x.shape, x.dtype
        return out

    def backward(self, grad_out):
        if not self.__dict__.get("_fast"):
            return super().backward(grad_out)
        from . import _kernels_numba as fast

        shape = self._cache("_shape")
        argmax = self._argmax
        g = self._check_grad_out(grad_out, argmax.shape)
        g = np.ascontiguousarray(g, dtype=self._dtype)
        dx = np.zeros(shape, dtype=self._dtype)
        fast.max_pool_grad(g, argmax, *self.kernel_size, *self.stride, dx)
        return dx

    def pool(self, win):
        self._argmax = win.argmax(axis=-1)[..., None]
        return np.take_along_axis(win, self._argmax, axis=-1)[..., 0]

    def window_grad(self, g):
        kh, kw = self.kernel_size
        dwin = np.zeros((*g.shape, kh * kw), dtype=g.dtype)
        np.put_along_axis(dwin, self._argmax, g[..., None], axis=-1)
        return dwin


class AvgPool2D(_Pool2D):
    """Average pooling: ``y[n, c, i, j]`` = mean of the window; backward spreads
    ``g[n, c, i, j] / (kh*kw)`` over it (overlapping windows add up)."""

    def pool(self, win):
        return win.mean(axis=-1)

    def window_grad(self, g):
        kh, kw = self.kernel_size
        return np.repeat((g / (kh * kw))[..., None], kh * kw, axis=-1)


class GlobalAvgPool2D(Layer):
    """(N, C, H, W) -> (N, C): the mean of each feature map; backward spreads g / (H*W)."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, x):
        x = as_float_array(x, None, self)
        if x.ndim != 4:
            raise ShapeError(f"{self.describe()}: expected input of shape (N, C, H, W), "
                             f"got {x.shape}")
        if x.shape[2] == 0 or x.shape[3] == 0:  # as window pooling and Conv2D refuse it
            raise ShapeError(f"{self.describe()}: input of {x.shape[2]}x{x.shape[3]} has no "
                             f"values to average")
        self._shape, self._dtype = x.shape, x.dtype
        return x.mean(axis=(2, 3))

    def backward(self, grad_out):
        shape = self._cache("_shape")
        g = self._check_grad_out(grad_out, shape[:2]).astype(self._dtype, copy=False)
        return np.broadcast_to((g / (shape[2] * shape[3]))[:, :, None, None], shape).copy()


#: PyTorch's names.
MaxPool2d = MaxPool2D
AvgPool2d = AvgPool2D
