"""The NumPy kernels of the flat path (``foreach``): one call updates a whole flat segment.

Each function does exactly the arithmetic of its algorithm's ``update`` (same operations, same
order, same scalar roundings), so its results are bit-for-bit those of the per-parameter loop,
but in place: it walks the segment in chunks of :data:`CHUNK_BYTES`, so the arrays it touches
stay in cache, and writes its intermediate values into preallocated ``scratch`` rows (``out=``),
so a step allocates no parameter-sized array.

Shared arguments: ``p`` and ``g`` are the flat parameters and gradients, then the algorithm's
flat state arrays (an empty array for an optional one that is off), then ``wd`` (L2 weight decay
added to the gradient; 0 for decoupled decay) and ``shrink`` (the decoupled factor
``1 - lr * weight_decay``; 1 otherwise), then the algorithm's scalars, already of the arrays'
dtype. :func:`kernel` binds the scratch rows.
"""

from __future__ import annotations

import functools

import numpy as np

#: Bytes of one array that a chunk covers (256 KiB: about seven such arrays fit in L2).
CHUNK_BYTES = 1 << 18

#: Scratch rows each kernel needs.
_SCRATCH_ROWS = 2


def _chunks(n: int, chunk: int):
    for lo in range(0, n, chunk):
        yield slice(lo, min(lo + chunk, n))


def _grad(p, g, wd, shrink, t0):
    """Decoupled shrink of ``p`` (in place), then the gradient with L2 decay (in ``t0``)."""
    if shrink != 1:
        np.multiply(p, shrink, out=p)
    if wd != 0:
        np.multiply(p, wd, out=t0)
        np.add(g, t0, out=t0)
        return t0
    return g


def sgd(p, g, buf, wd, shrink, lr, momentum, one_minus_dampening, nesterov, first, *, scratch):
    for sl in _chunks(p.size, scratch.shape[1]):
        pc, n = p[sl], sl.stop - sl.start
        t0, t1 = scratch[0, :n], scratch[1, :n]
        gc = _grad(pc, g[sl], wd, shrink, t0)
        if momentum != 0:
            bc = buf[sl]
            if first:
                np.copyto(bc, gc)
            else:
                np.multiply(bc, momentum, out=bc)
                np.multiply(gc, one_minus_dampening, out=t1)
                np.add(bc, t1, out=bc)
            if nesterov:
                np.multiply(bc, momentum, out=t1)
                np.add(gc, t1, out=t1)
                gc = t1
            else:
                gc = bc
        np.multiply(gc, lr, out=t1)
        np.subtract(pc, t1, out=pc)


def adam(p, g, m, v, vmax, wd, shrink, beta1, one_minus_beta1, beta2, one_minus_beta2,
         step_size, bias_correction2_sqrt, eps, amsgrad, *, scratch):
    for sl in _chunks(p.size, scratch.shape[1]):
        pc, mc, vc, n = p[sl], m[sl], v[sl], sl.stop - sl.start
        t0, t1 = scratch[0, :n], scratch[1, :n]
        gc = _grad(pc, g[sl], wd, shrink, t0)
        np.multiply(mc, beta1, out=mc)
        np.multiply(gc, one_minus_beta1, out=t1)
        np.add(mc, t1, out=mc)
        np.multiply(vc, beta2, out=vc)
        np.multiply(gc, gc, out=t1)
        np.multiply(t1, one_minus_beta2, out=t1)
        np.add(vc, t1, out=vc)
        if amsgrad:
            np.maximum(vmax[sl], vc, out=vmax[sl])
            vc = vmax[sl]
        np.sqrt(vc, out=t1)
        np.divide(t1, bias_correction2_sqrt, out=t1)
        np.add(t1, eps, out=t1)
        np.divide(mc, t1, out=t1)
        np.multiply(t1, step_size, out=t1)
        np.subtract(pc, t1, out=pc)


def adagrad(p, g, s, wd, shrink, clr, eps, *, scratch):
    for sl in _chunks(p.size, scratch.shape[1]):
        pc, sc, n = p[sl], s[sl], sl.stop - sl.start
        t0, t1 = scratch[0, :n], scratch[1, :n]
        gc = _grad(pc, g[sl], wd, shrink, t0)
        np.multiply(gc, gc, out=t1)
        np.add(sc, t1, out=sc)
        np.sqrt(sc, out=t1)
        np.add(t1, eps, out=t1)
        np.divide(gc, t1, out=t1)
        np.multiply(t1, clr, out=t1)
        np.subtract(pc, t1, out=pc)


def rmsprop(p, g, v, a, buf, wd, shrink, lr, alpha, one_minus_alpha, eps, momentum, centered,
            *, scratch):
    for sl in _chunks(p.size, scratch.shape[1]):
        pc, vc, n = p[sl], v[sl], sl.stop - sl.start
        t0, t1 = scratch[0, :n], scratch[1, :n]
        gc = _grad(pc, g[sl], wd, shrink, t0)
        np.multiply(vc, alpha, out=vc)
        np.multiply(gc, gc, out=t1)
        np.multiply(t1, one_minus_alpha, out=t1)
        np.add(vc, t1, out=vc)
        if centered:
            ac = a[sl]
            np.subtract(gc, ac, out=t1)
            np.multiply(t1, one_minus_alpha, out=t1)
            np.add(ac, t1, out=ac)
            np.multiply(ac, ac, out=t1)
            np.subtract(vc, t1, out=t1)
            np.sqrt(t1, out=t1)
        else:
            np.sqrt(vc, out=t1)
        np.add(t1, eps, out=t1)
        np.divide(gc, t1, out=t1)
        if momentum != 0:
            bc = buf[sl]
            np.multiply(bc, momentum, out=bc)
            np.add(bc, t1, out=bc)
            np.multiply(bc, lr, out=t1)
        else:
            np.multiply(t1, lr, out=t1)
        np.subtract(pc, t1, out=pc)


def kernel(name: str, dtype: np.dtype, size: int):
    """The kernel ``name`` for a segment of ``size`` values of ``dtype``, with its scratch."""
    chunk = max(1, min(size, CHUNK_BYTES // dtype.itemsize))
    scratch = np.empty((_SCRATCH_ROWS, chunk), dtype=dtype)
    return functools.partial(globals()[name], scratch=scratch)
