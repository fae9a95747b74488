"""The fused kernels (``fused``): one numba loop per algorithm over a flat segment.

Each loop reads every array once and writes it once, with the arithmetic of its algorithm's
``update`` in the same order and roundings (the scalars arrive already of the arrays' dtype, and
numba, without ``fastmath``, neither contracts a multiply and an add into one fused multiply-add
nor reorders), so the results are bit-for-bit those of the per-parameter loop. They follow
NumPy's error model: 0/0 is NaN, as in the loop, where numba's default would raise
ZeroDivisionError and, for the check on every element, could not vectorise a division (8x
slower). Arguments are those of :mod:`._kernels_numpy`, without the scratch.

Each loop is compiled twice: serially, and ``parallel=True`` for numba's threads. Which one is
faster depends on the rest of the program, not on the kernel: numba's threads and the BLAS
library's threads are two pools, and on a machine with as many cores as threads each spins
after its work and steals the other's cores. Optimizer steps back to back run twice as fast on
two threads; in a training loop, between matrix products, waking numba's threads can cost more
than the whole update (on 2 cores: 1.3 ms for an Adam step of 203k values that takes 0.1 ms on
one thread). So a segment of at least :data:`PARALLEL_MIN_SIZE` values gets an
:class:`Adaptive` kernel that times both where it runs and keeps the faster; a smaller one the
serial compilation. Both give the same bits.

Compiled on first use for each dtype (a second or two each) and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable

import numba
import numpy as np

#: Segments this large may run on all of numba's threads; smaller ones on the calling thread.
PARALLEL_MIN_SIZE = 1 << 15

#: ``"auto"``: a segment of at least :data:`PARALLEL_MIN_SIZE` values runs the compilation that
#: has been faster here (:class:`Adaptive`); ``"serial"`` or ``"parallel"`` forces one, e.g. to
#: benchmark it.
THREADS = "auto"


@numba.njit(inline="always")
def _decayed(pi, gi, wd, shrink):
    """The base class's weight decay, as every algorithm's ``update`` receives it: the parameter
    shrunk (decoupled decay), then the gradient plus ``wd`` times it (L2); inlined into each
    loop, like :func:`._kernels_numpy._grad`."""
    if shrink != 1:
        pi = pi * shrink
    if wd != 0:
        gi = gi + pi * wd
    return pi, gi


@numba.njit(inline="always")
def _with_momentum(buf, i, step, momentum):
    """RMSprop's momentum: ``buf = momentum * buf + step`` (kept), or ``step`` without it."""
    if momentum != 0:
        step = buf[i] * momentum + step
        buf[i] = step
    return step


def _sgd(p, g, buf, wd, shrink, lr, momentum, one_minus_dampening, nesterov, first):
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], wd, shrink)
        if momentum != 0:
            bi = gi if first else buf[i] * momentum + gi * one_minus_dampening
            buf[i] = bi
            gi = gi + bi * momentum if nesterov else bi
        p[i] = pi - gi * lr


def _adam(p, g, m, v, vmax, wd, shrink, beta1, one_minus_beta1, beta2, one_minus_beta2,
          step_size, bias_correction2_sqrt, eps, amsgrad):
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], wd, shrink)
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
        pi, gi = _decayed(p[i], g[i], wd, shrink)
        si = s[i] + gi * gi
        s[i] = si
        p[i] = pi - (gi / (math.sqrt(si) + eps)) * clr


def _rmsprop_plain(p, g, v, a, buf, wd, shrink, lr, alpha, one_minus_alpha, eps, momentum,
                   centered):
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], wd, shrink)
        vi = v[i] * alpha + (gi * gi) * one_minus_alpha
        v[i] = vi
        step = gi / (math.sqrt(vi) + eps)
        p[i] = pi - _with_momentum(buf, i, step, momentum) * lr


def _rmsprop_centered(p, g, v, a, buf, wd, shrink, lr, alpha, one_minus_alpha, eps, momentum,
                      centered):
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], wd, shrink)
        vi = v[i] * alpha + (gi * gi) * one_minus_alpha
        v[i] = vi
        ai = a[i] + (gi - a[i]) * one_minus_alpha
        a[i] = ai
        step = gi / (math.sqrt(vi - ai * ai) + eps)
        p[i] = pi - _with_momentum(buf, i, step, momentum) * lr


class _Centered:
    """RMSprop's kernel: the centered loop or the plain one, by its last argument. One loop with
    an ``if centered`` inside compiled to code 20x slower on 16M values (230-400 ms against
    15 ms a step, with centered=False), though each branch alone was fast."""

    def __init__(self, plain: Callable, centered: Callable):
        self._kernels = (plain, centered)
        self._ran = plain

    def __call__(self, *args) -> None:
        self._ran = self._kernels[bool(args[-1])]
        self._ran(*args)

    @property
    def last(self) -> str:
        return getattr(self._ran, "last", "serial")


_SOURCES: dict[str, Callable[..., None]] = {
    "sgd": _sgd, "adam": _adam, "adagrad": _adagrad,
    "rmsprop_plain": _rmsprop_plain, "rmsprop_centered": _rmsprop_centered,
}


def _compile(f: Callable[..., None], how: str, **options) -> Callable[..., None]:
    """``f`` compiled with ``options``, as a copy named ``<f>_<how>``: numba's disk cache is
    one file per function name (and line), whatever the options, so compiling one function
    both serially and in parallel would hand whichever was cached first to both."""
    copy = types.FunctionType(f.__code__, f.__globals__, f"{f.__name__}_{how}",
                              f.__defaults__, f.__closure__)
    copy.__qualname__ = copy.__name__
    return numba.njit(cache=True, error_model="numpy", **options)(copy)


_SERIAL = {name: _compile(f, "serial") for name, f in _SOURCES.items()}
_PARALLEL = {name: _compile(f, "parallel", parallel=True) for name, f in _SOURCES.items()}


class Adaptive:
    """A kernel that runs serially or on numba's threads, whichever keeps the program faster.

    What is timed is the *cycle*: from one call to the next, so the time includes what the
    choice does to the rest of the program (a training step's matrix products slowed by spinning
    threads count against the threads). The first :attr:`WARMUP` calls are not timed (the
    program around them is warming up too: first matrix products, first pages), nor the first
    call of each compilation (it may compile); then each is timed for :attr:`SAMPLES` cycles,
    serial first, and the parallel one is chosen only if its median is below :attr:`MARGIN`
    times the serial one's. The one not running is timed again after :attr:`FIRST_RECHECK`
    calls and replaces the running one on the same terms; a cycle :attr:`GIVE_UP` times the
    running one's median ends the recheck at once (in a training loop a cycle on contended
    threads can cost ten steps). Each recheck that changes nothing doubles the wait, up to
    :attr:`LAST_RECHECK` calls. The results do not depend on the choice: both compilations give
    the same bits. ``mode`` is the compilation chosen, ``last`` the one the last call ran
    (which differs while the other is timed, or while :data:`THREADS` forces one).

    Cycles measure what a program does between two steps, so a step's timing is only as good
    as its loop is regular: a benchmark that interleaves other work between calls should let
    the kernel settle on a loop of its own and then force that choice (``THREADS``)."""

    WARMUP = 3
    SAMPLES = 5
    FIRST_RECHECK = 20
    LAST_RECHECK = 5000
    MARGIN = 0.9
    GIVE_UP = 2.0

    def __init__(self, serial: Callable, parallel: Callable,
                 clock: Callable[[], float] = time.perf_counter):
        self._compiled = {"serial": serial, "parallel": parallel}
        self._clock = clock
        self._cycles: dict[str, list[float]] = {"serial": [], "parallel": []}
        self._untimed = {"serial", "parallel"}
        self._warmup = self.WARMUP
        self._queue = ["serial", "parallel"]  # compilations to time before the next choice
        self.mode = self.last = "serial"
        self._interval = self.FIRST_RECHECK
        self._countdown = 0
        self._last: tuple[float, str] | None = None  # the previous call's start, and its mode

    def __call__(self, *args) -> None:
        if THREADS != "auto":
            if THREADS not in self._compiled:
                raise ValueError(f"minidl.optim._kernels_numba.THREADS must be 'auto', 'serial' "
                                 f"or 'parallel', got {THREADS!r}")
            self._last = None
            self.last = THREADS
            self._compiled[THREADS](*args)
            return
        now = self._clock()
        if self._last is not None:
            start, mode = self._last
            cycles = self._cycles[mode]
            cycles.append(now - start)
            del cycles[:-self.SAMPLES]
            self._after_cycle(mode)
        mode = self._queue[0] if self._queue else self.mode
        if self._warmup:
            self._warmup -= 1
            self._last = None
        elif mode in self._untimed:  # compiles or loads: no sample
            self._untimed.discard(mode)
            self._last = None
        else:
            self._last = (now, mode)
        self.last = mode
        self._compiled[mode](*args)

    def _after_cycle(self, mode: str) -> None:
        if not self._queue:  # running the chosen one: count down to the next recheck
            self._countdown -= 1
            if self._countdown <= 0:
                other = "parallel" if self.mode == "serial" else "serial"
                self._cycles[other].clear()
                self._queue.append(other)
            return
        if mode != self._queue[0]:
            return
        median = {m: sorted(c)[len(c) // 2] for m, c in self._cycles.items()
                  if len(c) == self.SAMPLES}
        current = median.get(self.mode) if mode != self.mode else None
        if current is not None and self._cycles[mode][-1] > self.GIVE_UP * current:
            self._queue.clear()  # hopeless: one such cycle is enough (and costly)
        elif len(self._cycles[mode]) < self.SAMPLES:
            return
        else:
            self._queue.pop(0)
            if self._queue:
                return
            if current is not None and median[mode] < self.MARGIN * current:
                self.mode, self._interval = mode, self.FIRST_RECHECK
        self._countdown = self._interval
        self._interval = min(2 * self._interval, self.LAST_RECHECK)


def kernel(name: str, dtype: np.dtype, size: int) -> Callable:
    """The kernel ``name`` for a segment of ``size`` values (``dtype`` is typed by numba on the
    first call): an :class:`Adaptive` one from :data:`PARALLEL_MIN_SIZE` values on."""
    if name == "rmsprop":
        return _Centered(kernel("rmsprop_plain", dtype, size),
                         kernel("rmsprop_centered", dtype, size))
    if size < PARALLEL_MIN_SIZE:
        return _SERIAL[name]
    return Adaptive(_SERIAL[name], _PARALLEL[name])
