"""The two paths of :meth:`Optimizer.step <minidl.Optimizer.step>`, and how one is chosen.

Both walk the parameters the same way (the base class's walk: skip a parameter without a
gradient, create its state, count its step) and differ only in what updates one parameter:

- the loop: the base class's weight decay, then the algorithm's ``update``, in NumPy. The
  readable reference, and what every optimizer of your own runs;
- ``fused``: one call of the algorithm's numba kernel (:mod:`._kernels_numba`) on the
  parameter's arrays as they are, ``p.data``, ``p.grad`` and its state arrays, each raveled as
  a view, as torch's fused kernels take their tensors. Nothing is copied, gathered or rebound:
  ``W = layer.weight.data`` is still the array that ``step()`` updated, a layer may assign
  ``p.grad`` a new array each step, and two optimizers over one model do not interfere. The
  kernels are bit-identical to ``update``. Parameters under
  :data:`._kernels_numba.PARALLEL_MIN_SIZE` values are updated in batches: one call from Python
  runs the serial kernel on each of them from compiled code (a call from Python costs about a
  microsecond of argument checks per parameter, as long as the update of a thousand values),
  in the loop's order.

The fused kernel takes a parameter only if it does there what ``update`` would: ``data``,
``grad`` and every state array the kernel takes are NumPy arrays of the parameter's shape and
of one dtype, float32 or float64 (numba has no float16 or longdouble), C-contiguous (so the
raveled view is a view, never a copy) and writeable. Any other parameter runs the loop's
``update``, which then does what the loop does: a transposed tied weight stays tied, a strided
view keeps updating its base array, a read-only array raises, a float32 gradient in a float64
parameter (or float64 state after ``model.astype(np.float32)``) is computed as NumPy computes
it. The two paths agree on every parameter; when the fused path was asked for explicitly
(``fused=True``), the first such fallback of each parameter says why, as a
:class:`FusedFallbackWarning` naming it.

The flags are torch's: ``fused=True`` is the numba kernel, ``foreach=True`` the NumPy path (the
loop: NumPy has no multi-tensor kernels, and a flat NumPy path over one buffer measured no
faster than ``update`` on it), ``foreach=False, fused=False`` the loop too. ``None`` chooses:
fused when numba is installed (``pip install 'minidl[fast]'``) and the algorithm has a kernel,
else the loop (without numba a built-in algorithm says so once, as a
:class:`PerformanceNotice`). A kernel belongs to a class by reference
(:data:`._kernels_numba.KERNELS`); a subclass that overrides ``update`` or ``init_state`` runs
the loop, since the kernel would not do what its ``update`` says.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from operator import is_
from typing import Any

import numpy as np

from ..validation import check_bool

HAVE_NUMBA = importlib.util.find_spec("numba") is not None

#: The dtypes numba's kernels take.
KERNEL_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})

#: An optional state array that is off (``max_exp_avg_sq`` without amsgrad), per dtype.
_EMPTY = {dt: np.empty(0, dt) for dt in KERNEL_DTYPES}


class PerformanceNotice(UserWarning):
    """Said once per process: minidl runs a slower path than it could (numba is missing)."""


class FusedFallbackWarning(UserWarning):
    """``fused=True`` was asked for, but a parameter runs the loop's ``update`` (the message
    names the parameter and says why)."""


_noticed = False


def _notice_no_numba() -> None:
    global _noticed
    if not _noticed:
        _noticed = True
        warnings.warn(
            "numba is not installed, so minidl's optimizers update their parameters with NumPy "
            "(the loop, slower than the fused kernels); "
            "pip install 'minidl[fast]' for the fused kernels",
            PerformanceNotice, stacklevel=5,
        )


def kernel_of(cls: type):
    """The :class:`._kernels_numba.Kernel` that does what ``cls.update`` does, or None (numba
    must be installed)."""
    from ._kernels_numba import KERNELS

    for owner in cls.__mro__:
        if owner in KERNELS:
            same = all(getattr(cls, m) is getattr(owner, m) for m in ("update", "init_state"))
            return KERNELS[owner] if same else None
    return None


def _builtin_update(cls: Any) -> bool:
    """Whether ``cls.update`` is one of minidl's algorithms (for the no-numba notice only)."""
    module = cls.update.__module__
    return module.startswith(__package__ + ".") and module != __package__ + ".optimizer"


def choose(optimizer, foreach: bool | None, fused: bool | None) -> Fused | None:
    """The fused path for ``optimizer`` given torch-style flags, or None for the loop (see the
    module docstring). A class without a kernel refuses ``fused=True``."""
    name = type(optimizer).__name__
    foreach = check_bool(name, "foreach", foreach, allow_none=True)
    fused = check_bool(name, "fused", fused, allow_none=True)
    if foreach and fused:
        raise ValueError(f"{name}: foreach=True and fused=True exclude each other; pick one")
    if foreach or fused is False:
        return None
    if not HAVE_NUMBA:
        if fused:
            raise ImportError(f"{name}(fused=True) needs numba: pip install 'minidl[fast]'")
        if foreach is None and _builtin_update(type(optimizer)):
            _notice_no_numba()
        return None
    kernel = kernel_of(type(optimizer))
    if kernel is None:
        if fused:
            raise ValueError(
                f"{name} has no fused kernel (only the built-in SGD, Adam, AdamW, Adagrad and "
                f"RMSprop do, when their update is not overridden); leave fused unset"
            )
        return None
    return Fused(optimizer, kernel, explicit=bool(fused))


class Fused:
    """Runs ``optimizer.step()`` with one kernel call per parameter (see the module)."""

    def __init__(self, optimizer, kernel, explicit: bool):
        from . import _kernels_numba

        self.optimizer = optimizer
        self.kernel = kernel
        self.explicit = explicit
        #: The compilation the last step ran for its large parameters ("serial" without any).
        self.last = "serial"
        self._kernels = _kernels_numba
        self._adaptive = _kernels_numba.Adaptive(functools.partial(self._step, "serial"),
                                                 functools.partial(self._step, "parallel"))
        self._large = any(p.size >= _kernels_numba.PARALLEL_MIN_SIZE for p in optimizer.params)
        self._warned: set[tuple[int, str]] = set()
        #: Per parameter: its data, grad and state arrays last seen, their raveled views, its
        #: dtype and size class (:meth:`_keep`).
        self._views: dict[Any, tuple] = {}
        #: Per (kernel, dtype, number of arrays): the last batch's kept views with their
        #: addresses and sizes (:meth:`_run_batch`).
        self._batches: dict[tuple, tuple] = {}
        #: The compiled specializations found so far (:func:`_specialization`).
        self._calls: dict[tuple, dict[tuple, Any]] = {}

    def params_added(self) -> None:
        """The optimizer has new parameters (``add_param_group``): take their sizes in."""
        self._large = any(p.size >= self._kernels.PARALLEL_MIN_SIZE
                          for p in self.optimizer.params)

    def step(self) -> None:
        if self._large:
            self._adaptive()
        else:
            self._step("serial")

    def _step(self, mode: str) -> None:
        opt = self.optimizer
        serial, parallel = self.kernel.compilations(opt.defaults)
        large = parallel if mode == "parallel" else serial
        hparams = tuple(opt.defaults[k] for k in self.kernel.hparams)
        decoupled = opt.decoupled_weight_decay
        keys = self.state_keys()
        on = [key for key in keys if key]
        kept_views, loop = self._views, opt._update_one
        # (dtype, large?) -> the compiled specialization, for these compilations and scalar types
        hparam_types = tuple(tuple(map(type, h)) if isinstance(h, tuple) else type(h)
                             for h in hparams)
        calls = self._calls.setdefault((mode, serial, hparam_types), {})

        # small parameters wait in a batch (one driver call for all of them, see _run_batch);
        # any other update runs the batch first, so the parameters update in the loop's order
        batch: list[tuple] = []
        batch_of: list[tuple] = []  # (dtype, lr, weight_decay) of the batch
        ordinal = iter(range(len(opt.params)))  # which batch of this step: its cache slot

        def flush() -> None:
            if batch:
                dtype, lr, weight_decay = batch_of[0]
                self._run_batch(serial, next(ordinal), batch, dtype, lr, weight_decay,
                                decoupled, hparams)
                batch.clear()
                batch_of.clear()

        def update(p, state: dict[str, Any], lr: float, weight_decay: float) -> None:
            # the views are kept while the arrays stay the same and writeable
            data, grad = p.data, p.grad
            kept = kept_views.get(p)
            if (kept is None or kept[0] is not data or kept[1] is not grad
                    or not all(map(is_, map(state.get, on), kept[2]))):
                kept = self._keep(p, state, keys)
            if kept is not None:
                for a in kept[2]:
                    if not a.flags.writeable:  # a flag that may change in place
                        kept = None
                        break
            if kept is None or not data.flags.writeable:
                flush()
                if self.explicit:
                    self._warn(p, state, keys)
                loop(p, state, lr, weight_decay)
                return
            if not kept[4][1]:  # small: into the batch
                of = (kept[4][0], lr, weight_decay)
                if batch_of and batch_of[0] != of:
                    flush()
                if not batch_of:
                    batch_of.append(of)
                batch.append((kept, state["step"]))
                return
            flush()
            call = calls.get(kept[4])
            if call is None:  # the first parameter of its dtype and size class
                call = calls[kept[4]] = _specialization(
                    large if kept[4][1] else serial,
                    (*kept[3], state["step"], lr, weight_decay, decoupled, *hparams))
            call(*kept[3], state["step"], lr, weight_decay, decoupled, *hparams)

        opt._walk(update)
        flush()
        self.last = mode

    def _run_batch(self, serial, ordinal: int, batch: list[tuple], dtype, lr: float,
                   weight_decay: float, decoupled: bool, hparams: tuple) -> None:
        """Update the small parameters of ``batch`` (their kept views, and steps) with one call
        of the kernel's batch driver (:func:`._kernels_numba.many`), which runs the serial
        kernel on each in turn from compiled code. The driver gets each array as an address
        and a size: kept here with the views they point into, so they stay valid, and made
        again only when a view changed (the batch is then not the same sequence of views). A
        step cut into several batches (by a large parameter between small ones, say) keeps one
        set per batch, by its ``ordinal`` in the step, so none is rebuilt at every step."""
        kepts = [kept for kept, _ in batch]
        arrays = len(kepts[0][3])
        key = (serial, dtype, arrays, ordinal)
        known = self._batches.get(key)
        if known is None or len(known[0]) != len(kepts) or not all(map(is_, known[0], kepts)):
            views = [kept[3] for kept in kepts]
            addresses = np.array([[v.ctypes.data for v in row] for row in views], np.int64)
            sizes = np.array([[v.size for v in row] for row in views], np.int64)
            known = self._batches[key] = (kepts, addresses, sizes)
        steps = np.fromiter((step for _, step in batch), np.int64, len(batch))
        self._kernels.many(serial, arrays, dtype)(known[1], known[2], steps, lr, weight_decay,
                                                  decoupled, hparams)

    def state_keys(self) -> list[str | None]:
        """The kernel's state arrays, in order, as the hyperparameters now have them: a key, or
        None for an optional array that is off."""
        defaults, optional = self.optimizer.defaults, self.kernel.optional
        return [None if key in optional and not defaults[optional[key]] else key
                for key in self.kernel.state_keys]

    def _keep(self, p, state: dict[str, Any], keys: list[str | None]):
        """Check ``p``'s data, gradient and state arrays ``keys`` and keep them (data, grad, the
        state arrays that are on) with their raveled views (an empty array for a state array
        that is off), its dtype and whether it is large (:data:`._kernels_numba.PARALLEL_MIN_SIZE`
        values or more), or return None if the kernel cannot take them as they are
        (:func:`why_not` says why).

        Views are kept from one step to the next while the arrays stay the same (identity
        checks, a few tenths of a microsecond, against two microseconds for checking and
        raveling them again): an array replaced (``p.grad = ...``, ``model.astype``, a state
        array assigned or loaded) is checked and raveled again."""
        self._views.pop(p, None)
        if why_not(p, state, keys):
            return None
        data = p.data
        arrays = [data, p.grad, *[state[key] if key else _EMPTY[data.dtype] for key in keys]]
        on = [st for st, key in zip(arrays[2:], keys, strict=True) if key]
        large = data.size >= self._kernels.PARALLEL_MIN_SIZE
        kept = self._views[p] = (data, arrays[1], on, [a.reshape(-1) for a in arrays],
                                 (data.dtype, large))
        return kept

    def _warn(self, p, state: dict[str, Any], keys: list[str | None]) -> None:
        why = why_not(p, state, keys)
        if (id(p), why) in self._warned:
            return
        self._warned.add((id(p), why))
        index = next(i for i, q in enumerate(self.optimizer.params) if q is p)
        warnings.warn(
            f"{type(self.optimizer).__name__}(fused=True): parameter {index} ({p!r}) runs "
            f"update() instead of the fused kernel: {why}", FusedFallbackWarning, stacklevel=7)


_MISSING = object()


def _specialization(dispatcher, args: tuple):
    """The compilation of the numba function ``dispatcher`` for the types of ``args``
    (compiled now if need be). Calling it skips numba's dispatch, which types every argument
    on every call: 0.4 us, as long as an SGD step of 1,000 values, so a third of a step over
    1,000 small parameters. It is only called with arguments of those types: views that
    :meth:`Fused._keep` checked, of the dtype it was resolved for, and scalars of the same types
    (the step an int, ``lr`` and ``weight_decay`` floats, the hyperparameters' types in the
    key it is kept under)."""
    import numba

    signature = tuple(map(numba.typeof, args))
    dispatcher.compile(signature)
    return dispatcher.get_overload(signature)


def why_not(p, state: dict[str, Any], keys: list[str | None]) -> str:
    """Why the fused kernel cannot take ``p`` as it is, or "" if it can: the one list of
    conditions, which :meth:`Fused._keep` checks and a ``FusedFallbackWarning`` quotes."""
    data = p.data
    if not isinstance(data, np.ndarray):
        return f"its data is a {type(data).__name__}, not a NumPy array"
    if data.dtype not in KERNEL_DTYPES:
        return f"its dtype is {data.dtype} (the kernels take float32 and float64)"
    named = [("data", data), ("grad", p.grad)]
    named += [(f"state[{key!r}]", state.get(key, _MISSING)) for key in keys if key]
    for what, a in named:
        if a is _MISSING:
            return f"its {what} is missing"
        if not isinstance(a, np.ndarray):
            return f"its {what} is a {type(a).__name__}, not a NumPy array"
        if a.dtype != data.dtype:
            return f"its {what} is {a.dtype}, its data {data.dtype}"
        if a.shape != data.shape:
            return f"its {what} has shape {a.shape}, its data {data.shape}"
        if not a.flags.c_contiguous:
            return f"its {what} is not C-contiguous (a strided or transposed view)"
        if not a.flags.writeable:
            return f"its {what} is read-only"
        if not a.flags.aligned:
            return f"its {what} is not aligned to its dtype"
    return ""
