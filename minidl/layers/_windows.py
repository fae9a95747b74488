"""Sliding windows over the last two axes of NCHW arrays, and their adjoint.

``windows(x, kernel, stride)`` is a strided *view* of shape (N, C, OH, OW, kh, kw) (no copy):
``windows(x)[n, c, i, j] = x[n, c, i*sh : i*sh + kh, j*sw : j*sw + kw]``, with
``OH = (H - kh) // sh + 1`` (rows that fit no window are left out, as PyTorch and Keras do).

``add_windows(dwin, shape, stride)`` is its adjoint (col2im): it adds each window's gradient back
onto the input positions the window was read from, so overlapping windows sum. It loops over
the kh*kw kernel offsets, never over samples or pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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
