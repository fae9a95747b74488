"""The fused kernels (``fused``): one numba loop per algorithm, over the arrays of one parameter.

:meth:`~minidl.Optimizer.step` calls the kernel of its algorithm once per parameter (small
parameters through a batch driver, :func:`many`, which calls it for each from compiled code), on
the arrays as they are: ``p.data``, ``p.grad`` and the parameter's state arrays, each raveled as a
view (:mod:`.fused` checks that they can be), so nothing is copied, gathered or rebound. A
kernel's arguments are those arrays (an empty array for an optional one that is off, e.g.
``max_exp_avg_sq`` without amsgrad), then the parameter's ``step`` counter, the group's ``lr``
and ``weight_decay``, whether the weight decay is decoupled, and the algorithm's
hyperparameters (:class:`Kernel` says which, in order).

Each loop computes its scalars as its algorithm's ``update`` does (bias corrections included:
in float64, as Python does, then cast to the arrays' dtype, as NumPy casts a Python float
against a float32 array; ``beta ** float(step)`` calls the C library's ``pow`` as Python's
``beta ** step`` does, where an integer power would multiply) and does its arithmetic in the
same order and roundings (numba, without ``fastmath``, neither contracts a multiply and an add
into one fused multiply-add nor reorders), so the results are bit-for-bit those of ``update``.
They follow NumPy's error model: 0/0 is NaN, as in the loop, where numba's default would raise
ZeroDivisionError and, for the check on every element, could not vectorise a division (8x
slower). The base class's weight decay is the one other copy, inlined into each loop
(:func:`_decayed`).

Each loop is compiled twice: serially, and ``parallel=True`` for numba's threads. Which one is
faster depends on the rest of the program, not on the kernel: numba's threads and the BLAS
library's threads are two pools, and on a machine with as many cores as threads each spins
after its work and steals the other's cores. Optimizer steps back to back run twice as fast on
two threads; in a training loop, between matrix products, waking numba's threads can cost more
than the whole update (on 2 cores: 1.3 ms for an Adam step of 203k values that takes 0.1 ms on
one thread). So an optimizer with a parameter of at least :data:`PARALLEL_MIN_SIZE` values
steps through an :class:`Adaptive` choice that times both where it runs and keeps the faster
(for those parameters; smaller ones always run serially). Both give the same bits.

Compiled on first use for each dtype (a second or two each) and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numba.core import cgutils
from numba.extending import intrinsic

from .adagrad import Adagrad
from .adam import Adam
from .rmsprop import RMSprop
from .sgd import SGD

#: Parameters this large may be updated on all of numba's threads; smaller ones on the calling
#: thread.
PARALLEL_MIN_SIZE = 1 << 15

#: ``"auto"``: an optimizer with a parameter of at least :data:`PARALLEL_MIN_SIZE` values runs
#: the compilation that has been faster here (:class:`Adaptive`); ``"serial"`` or
#: ``"parallel"`` forces one, e.g. to benchmark it.
THREADS = "auto"


@numba.njit(inline="always")
def _decay(p, lr, weight_decay, decoupled):
    """The base class's weight decay as (shrink?, factor, l2?, coefficient) in ``p``'s dtype:
    the decoupled shrink ``1 - lr * weight_decay``, or the L2 coefficient ``weight_decay``."""
    cast = p.dtype.type
    shrinks = decoupled and weight_decay != 0
    l2 = not decoupled and weight_decay != 0
    return shrinks, cast(1 - lr * weight_decay), l2, cast(weight_decay)


@numba.njit(inline="always")
def _decayed(pi, gi, shrinks, shrink, l2, wd):
    """The base class's weight decay, as every algorithm's ``update`` receives it: the parameter
    shrunk (decoupled decay), or the gradient plus ``wd`` times the parameter (L2)."""
    if shrinks:
        pi = pi * shrink
    if l2:
        gi = gi + pi * wd
    return pi, gi


@numba.njit(inline="always")
def _with_momentum(buf, i, step, momentum, on):
    """RMSprop's momentum: ``buf = momentum * buf + step`` (kept), or ``step`` without it."""
    if on:
        step = buf[i] * momentum + step
        buf[i] = step
    return step


def _sgd(p, g, buf, step, lr, weight_decay, decoupled, momentum, dampening, nesterov):
    cast = p.dtype.type
    shrinks, shrink, l2, wd = _decay(p, lr, weight_decay, decoupled)
    first, on = step == 1, momentum != 0
    mom, one_minus_dampening, lr_ = cast(momentum), cast(1 - dampening), cast(lr)
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], shrinks, shrink, l2, wd)
        if on:
            bi = gi if first else buf[i] * mom + gi * one_minus_dampening
            buf[i] = bi
            gi = gi + bi * mom if nesterov else bi
        p[i] = pi - gi * lr_


def _adam(p, g, m, v, vmax, step, lr, weight_decay, decoupled, betas, eps, amsgrad):
    cast = p.dtype.type
    shrinks, shrink, l2, wd = _decay(p, lr, weight_decay, decoupled)
    beta1, beta2 = betas
    t = float(step)
    b1, one_minus_b1, b2, one_minus_b2 = cast(beta1), cast(1 - beta1), cast(beta2), cast(1 - beta2)
    step_size = cast(lr / (1 - beta1**t))
    bias_correction2_sqrt = cast(math.sqrt(1 - beta2**t))
    e = cast(eps)
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], shrinks, shrink, l2, wd)
        mi = m[i] * b1 + gi * one_minus_b1
        vi = v[i] * b2 + (gi * gi) * one_minus_b2
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi > vm or vi != vi:  # np.maximum: a NaN on either side wins
                vm = vi
            vmax[i] = vm
            vi = vm
        denom = math.sqrt(vi) / bias_correction2_sqrt + e
        p[i] = pi - (mi / denom) * step_size


def _adagrad(p, g, s, step, lr, weight_decay, decoupled, lr_decay, eps):
    cast = p.dtype.type
    shrinks, shrink, l2, wd = _decay(p, lr, weight_decay, decoupled)
    clr = cast(lr / (1 + (step - 1) * lr_decay))
    e = cast(eps)
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], shrinks, shrink, l2, wd)
        si = s[i] + gi * gi
        s[i] = si
        p[i] = pi - (gi / (math.sqrt(si) + e)) * clr


def _rmsprop_plain(p, g, v, a, buf, step, lr, weight_decay, decoupled, alpha, eps, momentum,
                   centered):
    cast = p.dtype.type
    shrinks, shrink, l2, wd = _decay(p, lr, weight_decay, decoupled)
    al, one_minus_alpha, e, mom, lr_ = (cast(alpha), cast(1 - alpha), cast(eps), cast(momentum),
                                        cast(lr))
    on = momentum != 0
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], shrinks, shrink, l2, wd)
        vi = v[i] * al + (gi * gi) * one_minus_alpha
        v[i] = vi
        step_i = gi / (math.sqrt(vi) + e)
        p[i] = pi - _with_momentum(buf, i, step_i, mom, on) * lr_


def _rmsprop_centered(p, g, v, a, buf, step, lr, weight_decay, decoupled, alpha, eps, momentum,
                      centered):
    cast = p.dtype.type
    shrinks, shrink, l2, wd = _decay(p, lr, weight_decay, decoupled)
    al, one_minus_alpha, e, mom, lr_ = (cast(alpha), cast(1 - alpha), cast(eps), cast(momentum),
                                        cast(lr))
    on = momentum != 0
    for i in numba.prange(p.size):
        pi, gi = _decayed(p[i], g[i], shrinks, shrink, l2, wd)
        vi = v[i] * al + (gi * gi) * one_minus_alpha
        v[i] = vi
        ai = a[i] + (gi - a[i]) * one_minus_alpha
        a[i] = ai
        step_i = gi / (math.sqrt(vi - ai * ai) + e)
        p[i] = pi - _with_momentum(buf, i, step_i, mom, on) * lr_


def _compile(f: Callable[..., None], how: str, **options) -> Callable[..., None]:
    """``f`` compiled with ``options``, as a copy named ``<f>_<how>``: numba's disk cache is
    one file per function name (and line), whatever the options, so compiling one function
    both serially and in parallel would hand whichever was cached first to both."""
    copy = types.FunctionType(f.__code__, f.__globals__, f"{f.__name__}_{how}",
                              f.__defaults__, f.__closure__)
    copy.__qualname__ = copy.__name__
    return numba.njit(cache=True, error_model="numpy", **options)(copy)


@dataclass(frozen=True)
class Kernel:
    """The fused kernel of one algorithm: its ``serial`` and ``parallel`` compilations, the
    state arrays it takes after ``p`` and ``g`` (``state_keys``, in order), the
    hyperparameters (keys of the optimizer's ``defaults``) it takes after ``decoupled``, and
    which state arrays are ``optional``: key -> the hyperparameter that turns it on (off, the
    kernel gets an empty array and never reads it). ``variant``: a hyperparameter and the
    compilations (serial, parallel) that run instead when it is on: RMSprop's centered loop (one
    loop with an ``if centered`` inside compiled to code 16-20x slower on 16M values, 124 ms
    against 7.5 ms a step with centered=False, though each branch alone was fast)."""

    serial: Callable[..., None]
    parallel: Callable[..., None]
    state_keys: tuple[str, ...]
    hparams: tuple[str, ...]
    optional: dict[str, str] = field(default_factory=dict)
    variant: tuple[str, tuple[Callable[..., None], Callable[..., None]]] | None = None

    def compilations(self, defaults: dict[str, Any]) -> tuple[Callable[..., None],
                                                               Callable[..., None]]:
        """The (serial, parallel) compilations for the hyperparameters ``defaults``."""
        if self.variant is not None and defaults[self.variant[0]]:
            return self.variant[1]
        return self.serial, self.parallel


def _compiled(f: Callable[..., None]) -> tuple[Callable[..., None], Callable[..., None]]:
    """``f``'s serial and parallel compilations."""
    return _compile(f, "serial"), _compile(f, "parallel", parallel=True)


@intrinsic
def _pointer(typingctx, address):
    """The integer ``address`` as a ``void*``, for :func:`numba.carray`."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return numba.types.voidptr(address), codegen


# The batch drivers: the serial kernel ``KERNEL`` once per parameter of a batch, each array
# given by its address and size (rows of ``addresses``/``sizes``: data, grad, state arrays),
# viewed as a flat ``DTYPE`` array. One call from Python per batch instead of one per
# parameter: numba's call from Python unboxes every argument (about a microsecond a parameter),
# a call from compiled code does not. ``KERNEL`` and ``DTYPE`` are bound per copy (_many).
def _many3(addresses, sizes, steps, lr, weight_decay, decoupled, hparams):
    for i in range(addresses.shape[0]):
        KERNEL(numba.carray(_pointer(addresses[i, 0]), sizes[i, 0], DTYPE),  # noqa: F821
               numba.carray(_pointer(addresses[i, 1]), sizes[i, 1], DTYPE),  # noqa: F821
               numba.carray(_pointer(addresses[i, 2]), sizes[i, 2], DTYPE),  # noqa: F821
               steps[i], lr, weight_decay, decoupled, *hparams)


def _many5(addresses, sizes, steps, lr, weight_decay, decoupled, hparams):
    for i in range(addresses.shape[0]):
        KERNEL(numba.carray(_pointer(addresses[i, 0]), sizes[i, 0], DTYPE),  # noqa: F821
               numba.carray(_pointer(addresses[i, 1]), sizes[i, 1], DTYPE),  # noqa: F821
               numba.carray(_pointer(addresses[i, 2]), sizes[i, 2], DTYPE),  # noqa: F821
               numba.carray(_pointer(addresses[i, 3]), sizes[i, 3], DTYPE),  # noqa: F821
               numba.carray(_pointer(addresses[i, 4]), sizes[i, 4], DTYPE),  # noqa: F821
               steps[i], lr, weight_decay, decoupled, *hparams)


_DRIVERS = {3: _many3, 5: _many5}
_many_cache: dict[tuple[Any, np.dtype], Callable[..., None]] = {}


def many(serial: Any, arrays: int, dtype) -> Callable[..., None]:
    """The batch driver of the serial compilation ``serial`` for ``arrays`` arrays of ``dtype``
    (compiled on first use, cached on disk under its own name, as :func:`_compile` does)."""
    key = (serial, np.dtype(dtype))
    driver = _many_cache.get(key)
    if driver is None:
        f = _DRIVERS[arrays]
        scope = {**f.__globals__, "KERNEL": serial, "DTYPE": np.dtype(dtype).type}
        name = f"{f.__name__}_{serial.py_func.__name__}_{np.dtype(dtype).name}"
        copy = types.FunctionType(f.__code__, scope, name, f.__defaults__, f.__closure__)
        copy.__qualname__ = name
        driver = _many_cache[key] = numba.njit(cache=True, error_model="numpy")(copy)
    return driver


#: The kernel of each built-in algorithm, keyed by its class (a subclass inherits it unless it
#: overrides ``update`` or ``init_state``: :func:`.fused.kernel_of`).
KERNELS: dict[type, Kernel] = {
    SGD: Kernel(*_compiled(_sgd), ("momentum_buffer",), ("momentum", "dampening", "nesterov"),
                {"momentum_buffer": "momentum"}),
    Adam: Kernel(*_compiled(_adam), ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                 ("betas", "eps", "amsgrad"), {"max_exp_avg_sq": "amsgrad"}),
    Adagrad: Kernel(*_compiled(_adagrad), ("sum",), ("lr_decay", "eps")),
    RMSprop: Kernel(*_compiled(_rmsprop_plain), ("square_avg", "grad_avg", "momentum_buffer"),
                    ("alpha", "eps", "momentum", "centered"),
                    {"grad_avg": "centered", "momentum_buffer": "momentum"},
                    ("centered", _compiled(_rmsprop_centered))),
}


class Adaptive:
    """A step that runs serially or on numba's threads, whichever keeps the program faster.

    ``serial`` and ``parallel`` are the two ways of running it (an optimizer step with each
    compilation of its kernel). What is timed is the *cycle*: from one call to the next, so the
    time includes what the choice does to the rest of the program (a training step's matrix
    products slowed by spinning threads count against the threads). The first :attr:`WARMUP`
    calls are not timed (the program around them is warming up too: first matrix products,
    first pages), nor the first call of each compilation (it may compile); then each is timed
    for :attr:`SAMPLES` cycles, serial first, and the parallel one is chosen only if its median
    is below :attr:`MARGIN` times the serial one's. The one not running is timed again after
    :attr:`FIRST_RECHECK` calls and replaces the running one on the same terms; a cycle
    :attr:`GIVE_UP` times the running one's median ends the recheck at once (in a training loop
    a cycle on contended threads can cost ten steps). Each recheck that changes nothing doubles
    the wait, up to :attr:`LAST_RECHECK` calls. The results do not depend on the choice: both
    compilations give the same bits. ``mode`` is the compilation chosen, ``last`` the one the
    last call ran (which differs while the other is timed, or while :data:`THREADS` forces one).

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
