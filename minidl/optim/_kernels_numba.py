"""The fused kernels (``fused``): one numba loop per algorithm over a flat segment.

Each loop reads every array once and writes it once, with the arithmetic of its algorithm's
``update`` in the same order and roundings (the scalars arrive already of the arrays' dtype, and
numba, without ``fastmath``, neither contracts a multiply and an add into one fused multiply-add
nor reorders), so the results are bit-for-bit those of the per-parameter loop. Arguments are
those of :mod:`._kernels_numpy`, without the scratch. A segment of at least
:data:`PARALLEL_MIN_SIZE` values runs the ``parallel=True`` compilation on numba's threads; a
smaller one the serial compilation, whose call costs less than waking the threads.

Compiled on first use for each dtype (a second or two each) and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

# numba's OpenMP threads spin after each parallel loop, and OpenBLAS's after each GEMM: where
# there are as many cores as threads, the two pools steal each other's cores (a training step of
# the MNIST MLP took 8.7 ms instead of 1.2 ms on 2 cores). Passive waiting (sleep, not spin)
# removes that, at about 45 us on an isolated step. This must be set before numba starts its
# OpenMP runtime (on the first parallel kernel); a policy the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba
import numpy as np

#: Segments this large run on all of numba's threads; smaller ones on the calling thread.
PARALLEL_MIN_SIZE = 1 << 15


def _sgd(p, g, buf, wd, shrink, lr, momentum, one_minus_dampening, nesterov, first):
    for i in numba.prange(p.size):
        pi = p[i]
        if shrink != 1:
            pi = pi * shrink
        gi = g[i]
        if wd != 0:
            gi = gi + wd * pi
        if momentum != 0:
            bi = gi if first else buf[i] * momentum + gi * one_minus_dampening
            buf[i] = bi
            gi = gi + bi * momentum if nesterov else bi
        p[i] = pi - gi * lr


def _adam(p, g, m, v, vmax, wd, shrink, beta1, one_minus_beta1, beta2, one_minus_beta2,
          step_size, bias_correction2_sqrt, eps, amsgrad):
    for i in numba.prange(p.size):
        pi = p[i]
        if shrink != 1:
            pi = pi * shrink
        gi = g[i]
        if wd != 0:
            gi = gi + pi * wd
        mi = m[i] * beta1 + gi * one_minus_beta1
        vi = v[i] * beta2 + (gi * gi) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi > vm or vi != vi:  # np.maximum: a NaN on either side wins
                vm = vi
            vmax[i] = vm
            vi = vm
        denom = math.sqrt(vi) / bias_correction2_sqrt + eps
        p[i] = pi - (mi / denom) * step_size


def _adagrad(p, g, s, wd, shrink, clr, eps):
    for i in numba.prange(p.size):
        pi = p[i]
        if shrink != 1:
            pi = pi * shrink
        gi = g[i]
        if wd != 0:
            gi = gi + pi * wd
        si = s[i] + gi * gi
        s[i] = si
        p[i] = pi - (gi / (math.sqrt(si) + eps)) * clr


def _rmsprop(p, g, v, a, buf, wd, shrink, lr, alpha, one_minus_alpha, eps, momentum, centered):
    for i in numba.prange(p.size):
        pi = p[i]
        if shrink != 1:
            pi = pi * shrink
        gi = g[i]
        if wd != 0:
            gi = gi + pi * wd
        vi = v[i] * alpha + (gi * gi) * one_minus_alpha
        v[i] = vi
        if centered:
            ai = a[i] + (gi - a[i]) * one_minus_alpha
            a[i] = ai
            avg = math.sqrt(vi - ai * ai) + eps
        else:
            avg = math.sqrt(vi) + eps
        step = gi / avg
        if momentum != 0:
            step = buf[i] * momentum + step
            buf[i] = step
        p[i] = pi - step * lr


_SOURCES: dict[str, Callable[..., None]] = {
    "sgd": _sgd, "adam": _adam, "adagrad": _adagrad, "rmsprop": _rmsprop,
}
_SERIAL = {name: numba.njit(cache=True)(f) for name, f in _SOURCES.items()}
_PARALLEL = {name: numba.njit(parallel=True, cache=True)(f) for name, f in _SOURCES.items()}


def kernel(name: str, dtype: np.dtype, size: int):
    """The compiled kernel ``name`` for a segment of ``size`` values (``dtype`` is typed by
    numba on the first call)."""
    return (_PARALLEL if size >= PARALLEL_MIN_SIZE else _SERIAL)[name]
