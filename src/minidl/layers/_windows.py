"""Sliding windows over the last two axes of NCHW arrays, and their adjoint.

``windows(x, kernel, stride)`` is a strided *view* of shape (N, C, OH, OW, kh, kw) (no copy):
``windows(x)[n, c, i, j] = x[n, c, i*sh : i*sh + kh, j*sw : j*sw + kw]``, with
``OH = (H - kh) // sh + 1`` (rows that fit no window are left out, as PyTorch and Keras do).

``add_windows(dwin, shape, stride)`` is its adjoint (col2im): it adds each window's gradient back
onto the input positions the window was read from, so overlapping windows sum. It loops over
the kh*kw kernel offsets, never over samples or pixels.

``im2col(x, kernel, stride, out_hw)`` copies the windows into the (C*kh*kw, N*OH*OW) matrix of
a convolution, channel-major: row ``(c, i, j)`` holds ``x[:, c, i::sh, j::sw]`` (OH x OW of it)
for every sample, so each of the kh*kw copies moves whole image rows (a sample-major layout,
windows in rows, copies kw values at a time and was 5x slower to build). ``col2im`` is its
adjoint.

When numba is installed (the ``fast`` extra) and :data:`NUMBA` is true, ``im2col`` and
``col2im`` run the loops of :mod:`._kernels_numba`, which give the same bits as the NumPy code
here (tests/test_conv.py compares them).
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Use the numba loops when numba is installed (set False to run the NumPy code alone).
NUMBA = importlib.util.find_spec("numba") is not None
_kernels: ModuleType | None = None
#: The dtypes the numba loops are compiled for (others take the NumPy code).
FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def kernels() -> ModuleType | None:
    """The numba loops (:mod:`._kernels_numba`), imported on first use, or None when
    :data:`NUMBA` is false or numba is not installed."""
    global _kernels
    if not NUMBA:
        return None
    if _kernels is None:
        from . import _kernels_numba

        _kernels = _kernels_numba
    return _kernels


def pair(owner: str, name: str, value, low: int) -> tuple[int, int]:
    """An int or a pair of ints >= ``low``, as a pair; a ValueError naming ``owner`` otherwise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low for v in items
    ):
        raise ValueError(f"{owner}: {name} must be an int >= {low} or a pair of them, "
                         f"got {value!r}")
    return int(items[0]), int(items[1])


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    view = sliding_window_view(x, kernel, axis=(2, 3))  # (N, C, H-kh+1, W-kw+1, kh, kw)
    return view[:, :, ::stride[0], ::stride[1]]


def add_windows(dwin: np.ndarray, shape: tuple[int, ...], stride: tuple[int, int]) -> np.ndarray:
    """The adjoint of :func:`windows`: ``dx`` of ``shape`` from ``dwin`` (N, C, OH, OW, kh, kw)."""
    _, _, oh, ow, kh, kw = dwin.shape
    sh, sw = stride
    dx = np.zeros(shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += dwin[..., i, j]
    return dx


def _offsets(kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """For each kernel offset (i, j): the input rows and columns the windows read there."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           out_hw: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """The (C*kh*kw, N*OH*OW) window matrix of ``x`` (N, C, H, W), channel-major (see above),
    written into ``out`` when it is a C-contiguous array of that shape and dtype (into a new one
    otherwise)."""
    n, c = x.shape[:2]
    shape = (c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1])
    if (out is None or out.shape != shape or out.dtype != x.dtype
            or not out.flags.c_contiguous):  # (the reshape below must be a view of it)
        out = np.empty(shape, dtype=x.dtype)
    fast = kernels()
    if fast is not None and x.flags.c_contiguous and x.dtype in FAST_DTYPES:
        return fast.im2col(x, *kernel, *stride, *out_hw, out)
    cols = out.reshape(c, *kernel, n, *out_hw)
    xt = x.transpose(1, 0, 2, 3)
    for i, j, (rows, columns) in _offsets(kernel, stride, out_hw):
        cols[:, i, j] = xt[:, :, rows, columns]
    return out


def col2im(dcols: np.ndarray, shape: tuple[int, ...], kernel: tuple[int, int],
           stride: tuple[int, int], out_hw: tuple[int, int],
           out: np.ndarray | None = None) -> np.ndarray:
    """The adjoint of :func:`im2col`: ``dx`` of ``shape`` (N, C, H, W) from ``dcols``, written
    into ``out`` (a C-contiguous array of that shape and dtype) when given."""
    n, c = shape[:2]
    if out is None:
        out = np.empty(shape, dtype=dcols.dtype)
    out[...] = 0
    fast = kernels()
    if (fast is not None and dcols.flags.c_contiguous and out.flags.c_contiguous
            and dcols.dtype in FAST_DTYPES and out.dtype == dcols.dtype):
        return fast.col2im(dcols, *kernel, *stride, *out_hw, out)
    dcols = dcols.reshape(c, *kernel, n, *out_hw)
    dxt = out.transpose(1, 0, 2, 3)
    for i, j, (rows, columns) in _offsets(kernel, stride, out_hw):
        dxt[:, :, rows, columns] += dcols[:, i, j]
    return out
