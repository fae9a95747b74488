"""numba loops for the window copies of Conv2D (im2col, col2im) and for max pooling.

Imported by :mod:`._windows` and :mod:`.pooling` only when numba is installed (the ``fast``
extra); each loop computes bit for bit what its NumPy version there computes: the copies move
values, and the additions are made in the NumPy version's order (kernel offset by kernel offset,
from zero), with no ``fastmath``, so neither reordered nor contracted. Serial loops (no
``prange``): they run between BLAS calls, whose threads would fight numba's for the cores, and
they work on blocks that fit in the cache. Compiled on first use for each dtype and cached on
disk (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def im2col(x, kh, kw, sh, sw, oh, ow, out):  # pragma: no cover - compiled
    """``out`` (C*kh*kw, N*OH*OW) from ``x`` (N, C, H, W): row (c, i, j), column (n, p, q)
    holds ``x[n, c, i + p*sh, j + q*sw]``."""
    n_, c_ = x.shape[0], x.shape[1]
    cols = out.reshape(c_, kh, kw, n_, oh, ow)
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                for n in range(n_):
                    for p in range(oh):
                        row = x[n, c, i + p * sh]
                        dst = cols[c, i, j, n, p]
                        for q in range(ow):
                            dst[q] = row[j + q * sw]
    return out


@numba.njit(cache=True)
def col2im(dcols, kh, kw, sh, sw, oh, ow, dx):  # pragma: no cover - compiled
    """The adjoint of :func:`im2col`, added into ``dx`` (N, C, H, W), which the caller zeroes:
    for each (c, n), the kernel offsets in order (i, j), as the NumPy version adds them."""
    n_, c_ = dx.shape[0], dx.shape[1]
    cols = dcols.reshape(c_, kh, kw, n_, oh, ow)
    for c in range(c_):
        for n in range(n_):
            for i in range(kh):
                for j in range(kw):
                    for p in range(oh):
                        row = dx[n, c, i + p * sh]
                        src = cols[c, i, j, n, p]
                        for q in range(ow):
                            row[j + q * sw] += src[q]
    return dx


@numba.njit(cache=True)
def max_pool(x, kh, kw, sh, sw, oh, ow, out, argmax):  # pragma: no cover - compiled
    """``out[n, c, p, q]`` the maximum of the window at (p, q) and ``argmax`` its position
    i*kw + j in the window: the first maximum, or the first NaN, as ``np.argmax`` (the window's
    values are compared in that order, a row of windows at a time)."""
    n_, c_ = x.shape[0], x.shape[1]
    for n in range(n_):
        for c in range(c_):
            for p in range(oh):
                o = out[n, c, p]
                a = argmax[n, c, p]
                first = x[n, c, p * sh]
                for q in range(ow):
                    o[q] = first[q * sw]
                    a[q] = 0
                for i in range(kh):
                    row = x[n, c, p * sh + i]
                    for j in range(kw):
                        if i == 0 and j == 0:
                            continue
                        k = i * kw + j
                        for q in range(ow):
                            v = row[q * sw + j]
                            best = o[q]
                            if v > best or (v != v and best == best):
                                o[q] = v
                                a[q] = k
    return out


@numba.njit(cache=True)
def max_pool_grad(g, argmax, kh, kw, sh, sw, dx):  # pragma: no cover - compiled
    """Adds each ``g[n, c, p, q]`` onto its window's maximum in ``dx`` (zeroed by the caller),
    kernel offset by kernel offset as the NumPy version's adjoint of the windows."""
    n_, c_, oh, ow = g.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for p in range(oh):
                        for q in range(ow):
                            if argmax[n, c, p, q] == k:  # (NumPy adds 0.0 elsewhere:
                                # no change, as dx is never -0.0)
                                dx[n, c, p * sh + i, q * sw + j] += g[n, c, p, q]
    return dx


def warm(dtype) -> None:
    """Compile (or load from the disk cache) the loops for ``dtype`` on tiny arrays."""
    x = np.zeros((1, 1, 2, 2), dtype)
    cols = np.zeros((4, 1), dtype)
    im2col(x, 2, 2, 1, 1, 1, 1, cols)
    col2im(cols, 2, 2, 1, 1, 1, 1, x)
