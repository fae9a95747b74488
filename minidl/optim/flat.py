"""The flat path of the built-in optimizers: one kernel call per parameter group and dtype.

On its first step an optimizer with a kernel gathers its parameters into one flat buffer per
dtype (:class:`FlatBuffer`): each ``Parameter.data`` and ``Parameter.grad`` becomes a view of
it, so layers keep reading and writing them in place as before, and an update of every parameter
is one call on two contiguous arrays. Its state arrays (``exp_avg`` ...) are laid out the same
way, and ``optimizer.state[p]`` holds views of them, so ``state_dict`` and ``load_state_dict``
are unchanged and a state dict loads into any path.

The buffers are allocated once and never reallocated while their views are in use (thinc's
lesson, see STYLE.md). Before each step :meth:`FlatPath.step` checks that every parameter still
holds its views and that ``optimizer.state`` is still the dict it laid out; if not (after
``model.astype`` or ``optimizer.load_state_dict``) it lays out again from what is there.

Two sets of kernels, the same arithmetic as the algorithm's ``update`` in the same order, so all
three paths give bit-identical results:

- ``fused``: numba loops (:mod:`._kernels_numba`), the default when numba is installed
  (``pip install 'minidl[fast]'``);
- ``foreach``: in-place NumPy on cache-sized chunks (:mod:`._kernels_numpy`), the default
  without numba (said once, as a :class:`PerformanceNotice`).

An algorithm takes part by naming its kernel in a class attribute ``kernel``
(:class:`Kernel`); a subclass that overrides ``update`` or ``init_state`` runs the
per-parameter loop, since the kernel would not do what its ``update`` says.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter, is_not
from types import ModuleType
from typing import Any

import numpy as np

from ..validation import check_bool

HAVE_NUMBA = importlib.util.find_spec("numba") is not None

_data, _grad, _has_grad = attrgetter("data"), attrgetter("grad"), attrgetter("has_grad")


class PerformanceNotice(UserWarning):
    """Said once per process: minidl runs a slower path than it could (numba is missing)."""


_noticed = False


def _notice_no_numba() -> None:
    global _noticed
    if not _noticed:
        _noticed = True
        warnings.warn(
            "numba is not installed, so minidl's optimizers update their parameters with NumPy "
            "(the 'foreach' path, slower than the fused kernels); "
            "pip install 'minidl[fast]' for the fused kernels",
            PerformanceNotice, stacklevel=5,
        )


@dataclass(frozen=True)
class Kernel:
    """How an optimizer class runs on the flat path.

    ``name`` is the kernel's function in :mod:`._kernels_numba` and :mod:`._kernels_numpy`;
    ``state_keys`` the state arrays it takes, in order (a key the state lacks, e.g.
    ``max_exp_avg_sq`` without amsgrad, is passed as an empty array); ``scalars(defaults, lr,
    step)`` the algorithm's scalars for a step, computed in Python exactly as its ``update``
    computes them (the kernels receive them cast to the parameters' dtype, as NumPy casts a
    Python float against a float32 array)."""

    name: str
    state_keys: tuple[str, ...]
    scalars: Callable[[dict[str, Any], float, int], tuple]


def kernel_of(cls: type) -> Kernel | None:
    """The :class:`Kernel` that does what ``cls.update`` does, or None."""
    for owner in cls.__mro__:
        attrs = vars(owner)
        if "kernel" in attrs:
            same = all(getattr(cls, m) is getattr(owner, m) for m in ("update", "init_state"))
            return attrs["kernel"] if same else None
    return None


def choose(optimizer, foreach: bool | None, fused: bool | None) -> FlatPath | None:
    """The flat path for ``optimizer`` given torch-style flags, or None for the per-parameter
    loop. ``fused=None`` means "if numba is installed", ``foreach=None`` "if not fused"; so by
    default the fused kernels run, or the NumPy ones without numba, and
    ``foreach=False, fused=False`` is the per-parameter loop. Classes without a kernel always
    run the loop (asking for a flat path raises)."""
    name = type(optimizer).__name__
    foreach = check_bool(name, "foreach", foreach, allow_none=True)
    fused = check_bool(name, "fused", fused, allow_none=True)
    if foreach and fused:
        raise ValueError(f"{name}: foreach=True and fused=True exclude each other; pick one")
    kernel = kernel_of(type(optimizer))
    if kernel is None:
        if foreach or fused:
            raise ValueError(
                f"{name} has no flat kernel (only the built-in SGD, Adam, AdamW, Adagrad and "
                f"RMSprop do, when their update is not overridden); leave foreach and fused "
                f"unset"
            )
        return None
    if fused and not HAVE_NUMBA:
        raise ImportError(f"{name}(fused=True) needs numba: pip install 'minidl[fast]'")
    if fused is None:
        fused = HAVE_NUMBA and not foreach
        if not fused and foreach is None:
            _notice_no_numba()
    if foreach is None:
        foreach = not fused
    kernels: ModuleType
    if fused:
        from . import _kernels_numba as kernels
    elif foreach:
        from . import _kernels_numpy as kernels
    else:
        return None
    return FlatPath(optimizer, kernel, kernels, "fused" if fused else "foreach")


class FlatBuffer:
    """The parameters of one dtype in two contiguous arrays, ``data`` and ``grad``; each
    parameter's ``.data`` and ``.grad`` become views of them (values kept). Allocated once."""

    def __init__(self, params: list):
        self.params = params
        self.dtype = params[0].dtype
        self.bounds = np.cumsum([0] + [p.size for p in params]).tolist()
        self.data = np.empty(self.bounds[-1], self.dtype)
        self.grad = np.empty(self.bounds[-1], self.dtype)
        for p, lo, hi in zip(params, self.bounds, self.bounds[1:], strict=False):
            self.data[lo:hi] = p.data.ravel()
            self.grad[lo:hi] = p.grad.ravel()
            p.data = self.data[lo:hi].reshape(p.shape)
            p.grad = self.grad[lo:hi].reshape(p.shape)
        self._views = ([p.data for p in params], [p.grad for p in params])

    def holds(self, params: list) -> bool:
        """Whether ``params`` are this buffer's parameters, each still holding its views."""
        data_views, grad_views = self._views
        return (params == self.params
                and not any(map(is_not, map(_data, params), data_views))
                and not any(map(is_not, map(_grad, params), grad_views)))

    def gather(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """A new flat array laid out like ``data`` holding ``arrays`` (one per parameter), and
        its views shaped like them."""
        flat = np.empty(self.bounds[-1], self.dtype)
        views = []
        for a, lo, hi in zip(arrays, self.bounds, self.bounds[1:], strict=False):
            flat[lo:hi] = a.ravel()
            views.append(flat[lo:hi].reshape(a.shape))
        return flat, views


@dataclass
class _Segment:
    """Consecutive values of one buffer that one kernel call updates: parameters of one group
    and one dtype, each with a gradient, whose step counters agree."""

    group: dict
    counters: list  # the states of its parameters, whose "step" counters agree
    arrays: tuple  # data, grad, then the kernel's state arrays
    call: Callable


class FlatPath:
    """Runs ``optimizer.step()`` on flat buffers with one set of kernels (see the module)."""

    def __init__(self, optimizer, kernel: Kernel, kernels, implementation: str):
        self.optimizer = optimizer
        self.kernel = kernel
        self.kernels = kernels
        self.implementation = implementation
        self.buffers: dict[np.dtype, FlatBuffer] = {}
        self._state: dict | None = None
        self._has_grad: list[bool] = []
        self._segments: list[_Segment] = []

    def step(self) -> None:
        opt = self.optimizer
        params = opt.params
        # which parameters have a gradient (the loop's test); a parameter without one is in
        # no segment, so it is skipped as the loop skips it
        has_grad = list(map(_has_grad, params))
        if has_grad != self._has_grad or not self.in_sync(params):
            self.lay_out(params, has_grad)
        decoupled = opt.decoupled_weight_decay
        for seg in self._segments:
            for st in seg.counters:
                st["step"] += 1
            lr, wd = seg.group["lr"], seg.group["weight_decay"]
            cast = seg.arrays[0].dtype.type
            # the base class's weight decay: L2 into the gradient, or a decoupled shrink
            l2, shrink = (0.0, 1 - lr * wd) if decoupled and wd else (wd, 1.0)
            step = seg.counters[0]["step"]
            scalars = (l2, shrink, *self.kernel.scalars(opt.defaults, lr, step))
            seg.call(*seg.arrays, *(s if isinstance(s, bool) else cast(s) for s in scalars))

    @property
    def compilations(self) -> list[str]:
        """Per segment, what ran its last update: ``"numpy"`` (foreach), or the fused kernel's
        ``"serial"`` or ``"parallel"`` compilation (see :class:`._kernels_numba.Adaptive`)."""
        if self.implementation == "foreach":
            return ["numpy"] * len(self._segments)
        return [getattr(seg.call, "last", "serial") for seg in self._segments]

    def in_sync(self, params: list) -> bool:
        """Whether the buffers still hold ``params`` and ``optimizer.state`` is the one laid
        out (a few C-level identity checks per parameter: cheap next to the update)."""
        state = self.optimizer.state
        if self._state is None or state is not self._state or len(state) != len(params):
            return False
        if len(self.buffers) == 1:
            (buffer,) = self.buffers.values()
            return buffer.holds(params)
        return (sum(len(b.params) for b in self.buffers.values()) == len(params)
                and all(b.holds([p for p in params if p.dtype == dt])
                        for dt, b in self.buffers.items()))

    def lay_out(self, params: list, has_grad: list[bool]) -> None:
        """Gather ``params``, their gradients and their state (created here at step 0 if
        missing, as the loop creates it on a first step) into flat buffers, reusing a parameter
        buffer whose views are all still in place, and cut them into segments: runs of
        parameters with a gradient (``has_grad``) and equal step counters. Laid out again when
        the parameters with a gradient change."""
        opt = self.optimizer
        for p in params:
            if p not in opt.state:
                opt.state[p] = {"step": 0, **opt.init_state(p)}
        by_dtype: dict[np.dtype, list] = {}
        for p in params:
            by_dtype.setdefault(p.dtype, []).append(p)
        self.buffers = {
            dt: old if (old := self.buffers.get(dt)) is not None and old.holds(ps)
            else FlatBuffer(ps)
            for dt, ps in by_dtype.items()
        }
        flat_state: dict[tuple[np.dtype, str], np.ndarray] = {}
        for dt, buffer in self.buffers.items():
            states = [opt.state[p] for p in buffer.params]
            for key in self.kernel.state_keys:
                if key in states[0]:
                    flat, views = buffer.gather([st[key] for st in states])
                    flat_state[dt, key] = flat
                    for st, view in zip(states, views, strict=True):
                        st[key] = view
        self._segments = []
        empty = {dt: np.empty(0, dt) for dt in self.buffers}
        with_grad = {id(p) for p, has in zip(params, has_grad, strict=True) if has}
        for group in opt.param_groups:
            for dt, buffer in self.buffers.items():
                index = {id(p): i for i, p in enumerate(buffer.params)}
                members = [index[id(p)] for p in group["params"] if p.dtype == dt]
                runs: list[list[int]] = []  # runs of parameters with a gradient, equal steps
                for i, member in enumerate(members):
                    p = buffer.params[member]
                    if id(p) not in with_grad:
                        continue
                    if (runs and runs[-1][-1] == members[i - 1]
                            and opt.state[buffer.params[runs[-1][0]]]["step"]
                            == opt.state[p]["step"]):
                        runs[-1].append(member)
                    else:
                        runs.append([member])
                for run in runs:
                    a, b = buffer.bounds[run[0]], buffer.bounds[run[-1] + 1]
                    state_arrays = tuple(
                        flat_state[dt, key][a:b] if (dt, key) in flat_state else empty[dt]
                        for key in self.kernel.state_keys)
                    self._segments.append(_Segment(
                        group, [opt.state[buffer.params[m]] for m in run],
                        (buffer.data[a:b], buffer.grad[a:b], *state_arrays),
                        self.kernels.kernel(self.kernel.name, dt, b - a)))
        self._has_grad = has_grad
        self._state = opt.state
