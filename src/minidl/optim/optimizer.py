"""``Optimizer``: the base class that owns the mechanics of every update rule.

The base class walks the parameters, counts steps, creates per-parameter state lazily on the
first step (keyed by the :class:`~minidl.Parameter` object, never by a name), applies weight
decay and saves/restores state. A subclass writes only its maths::

    class SignSGD(Optimizer):
        def __init__(self, params, lr=0.01, weight_decay=0.0):
            super().__init__(params, lr=lr, weight_decay=weight_decay)

        def update(self, param, grad, state, lr):
            param -= lr * np.sign(grad)

``update(param, grad, state, lr)`` changes the array ``param`` in place. ``grad`` already
includes L2 weight decay (``grad + weight_decay * param``) unless the class sets
``decoupled_weight_decay = True``, in which case the base class first shrinks the parameter,
``param *= 1 - lr * weight_decay`` (AdamW). ``state`` is the dict returned by
``init_state(param)`` (empty by default), with ``state["step"]`` counting this parameter's
updates from 1 (the optimizer's ``step_count`` is read from these counters, never kept apart).
Hyperparameters live in ``self.defaults`` (``self.hparams`` adds the live learning rate).

A parameter without a gradient is skipped entirely, as torch skips a parameter whose ``grad``
is None: no weight decay, no state created or updated, no step counted. minidl's ``grad`` is an
array allocated once, so "no gradient" is derived (:attr:`Parameter.has_grad`): ``zero_grad()``
marks every parameter as having none, and a parameter has one again once a layer's ``backward``
writes it (even with zeros, as for a dead unit) or once it holds a nonzero value written by
hand. So ``zero_grad(); step()`` changes nothing, and with ``zero_grad()`` before each forward
pass (what :class:`~minidl.Trainer` does), a layer outside the forward pass is not decayed. A
parameter never zeroed counts as having a gradient (an exactly-zero gradient written by hand
into it must count, as it does in torch); call ``p.mark_grad()`` to make an all-zero gradient
written by hand after ``zero_grad()`` count. Skipped parameters fall behind in ``state["step"]``;
``step_count`` is the largest counter, and ``state_dict`` holds the state of parameters that
have stepped.

Parameter groups, as in torch: ``params`` may be a list of dicts ``{"params": [...], "lr": ...,
"weight_decay": ...}``; ``param_groups`` always holds at least one group, and
``param_groups[i]["lr"]`` may be changed between steps (what torch-style schedulers and
:mod:`minidl.schedules` do). ``opt.lr = value`` sets the learning rate of every group.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import ShapeError, StateDictError
from ..parameter import Parameter
from ..validation import check_betas, check_bool, check_number  # noqa: F401 (re-exported)
from . import fused as _fused


class Optimizer:
    """Base class of optimizers. See the module docstring."""

    decoupled_weight_decay: ClassVar[bool] = False

    #: Hyperparameters a parameter group may set for itself (the ones the base class applies).
    group_keys: ClassVar[tuple[str, ...]] = ("lr", "weight_decay")

    #: Names this class had before (checkpoints written under them still load).
    former_names: ClassVar[tuple[str, ...]] = ()

    #: State arrays that can never be negative (running averages of squared gradients): a
    #: state dict holding a negative value there is refused.
    nonnegative_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Iterable[Parameter] | Iterable[dict], lr: float,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 fused: bool | None = None, **hparams: Any):
        name = type(self).__name__
        check_number(name, "lr", lr, low=0.0)
        check_number(name, "weight_decay", weight_decay, low=0.0)
        #: The constructor's hyperparameters (torch's ``defaults``); the live ``lr`` and
        #: ``weight_decay`` of each parameter group are in :attr:`param_groups`.
        self.defaults: dict[str, Any] = {"lr": float(lr), "weight_decay": float(weight_decay),
                                         **hparams}
        self.param_groups: list[dict[str, Any]] = _param_groups(name, params, self.defaults)
        self.state: dict[Parameter, dict[str, Any]] = {}
        #: The fused path (:mod:`minidl.optim.fused`) chosen by ``foreach``/``fused``, or None.
        self._fused = _fused.choose(self, foreach, fused)

    @property
    def implementation(self) -> str:
        """Which path ``step`` runs: ``"fused"`` (the algorithm's numba kernel on each
        parameter it can take, ``update`` on the others) or ``"loop"`` (``update`` on every
        parameter, in NumPy; ``foreach=True`` asks for it)."""
        return "loop" if self._fused is None else "fused"

    @property
    def params(self) -> list[Parameter]:
        """Every parameter, group after group (the order of ``state_dict`` indices)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def hparams(self) -> dict[str, Any]:
        """The hyperparameters: :attr:`defaults`, with the live ``lr`` and ``weight_decay`` of
        the first parameter group (with several groups, read each one in :attr:`param_groups`)."""
        first = self.param_groups[0]
        return {**self.defaults, **{k: first[k] for k in self.group_keys}}

    @property
    def lr(self) -> float:
        """The learning rate of every parameter group (an error if they differ)."""
        lrs = {group["lr"] for group in self.param_groups}
        if len(lrs) > 1:
            raise ValueError(
                f"{type(self).__name__}: the parameter groups have different learning rates "
                f"{[g['lr'] for g in self.param_groups]}; read param_groups[i]['lr']"
            )
        return lrs.pop()

    @lr.setter
    def lr(self, value: float) -> None:
        check_number(type(self).__name__, "lr", value, low=0.0)
        for group in self.param_groups:
            group["lr"] = float(value)

    @property
    def step_count(self) -> int:
        """Steps taken: the per-parameter ``state["step"]`` counters, which move together."""
        return max((st["step"] for st in self.state.values()), default=0)

    # ------------------------------------------------------------------ what subclasses write
    def init_state(self, param: Parameter) -> dict[str, Any]:
        """Per-parameter state, created on the first step (arrays of the parameter's dtype)."""
        return {}

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any],
               lr: float) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")

    # ------------------------------------------------------------------ mechanics
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Mark every parameter as having no gradient (:meth:`Parameter.zero_grad`).

        ``set_to_none`` is accepted for torch's sake and changes nothing: minidl allocates each
        gradient once and keeps the array (``p.grad`` is never None), and a zeroed parameter
        already counts as having no gradient, as torch's ``None`` does, so ``step`` skips it
        until a backward pass writes its gradient. Either value does what ``zero_grad()``
        does."""
        if set_to_none is not True and set_to_none is not False:
            check_bool(f"{type(self).__name__}.zero_grad", "set_to_none", set_to_none)
        for p in self.params:
            p.zero_grad()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group, as torch's ``add_param_group``: a dict ``{"params": [...],
        "lr": ..., "weight_decay": ...}`` checked as the constructor checks its groups (only
        ``lr`` and ``weight_decay`` may be set, they default to the constructor's, and a
        parameter already trained by this optimizer is refused). The new parameters step from
        the next ``step`` on, on the same path (fused or loop) as the others."""
        name = type(self).__name__
        if not isinstance(param_group, Mapping):
            raise TypeError(f"{name}.add_param_group: expected a dict {{'params': [...], "
                            f"'lr': ...}}, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}.add_param_group: the group has no 'params'")
        specs = [*({"params": g["params"]} for g in self.param_groups), dict(param_group)]
        groups = _param_groups(name, specs, self.defaults)
        new = groups[-1]
        self.param_groups.append(new)
        if self._fused is not None:
            self._fused.params_added()

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient (:attr:`Parameter.has_grad`),
        using the gradients now in ``p.grad``, with the ``lr`` and ``weight_decay`` of the
        parameter's group; parameters without one are skipped (see the module docstring).
        The arrays are updated in place: ``p.data``, ``p.grad`` and the state arrays stay the
        arrays they were, on either path (:mod:`minidl.optim.fused`)."""
        if self._fused is not None:  # the same walk, a numba kernel per parameter
            self._fused.step()
        else:
            self._walk(self._update_one)

    def _walk(self, update) -> None:
        """``update(p, state, lr, weight_decay)`` for each parameter with a gradient, group
        after group, after creating its state if it has none and counting its step.

        Each group's ``lr`` and ``weight_decay`` are checked first, as the constructor and the
        ``lr`` setter check them (a scheduler or a user may have written
        ``param_groups[i]["lr"] = -1``)."""
        for gi, group in enumerate(self.param_groups):
            # Python floats, whatever a scheduler wrote (a NumPy float64 would make NumPy
            # compute a float32 parameter's update in float64)
            lr, weight_decay = group["lr"], group["weight_decay"]
            if not (type(lr) is float and type(weight_decay) is float  # the common case, fast
                    and 0.0 <= lr < math.inf and 0.0 <= weight_decay < math.inf):
                lr, weight_decay = self._group_rates(gi, group)
            for p in group["params"]:
                if not p.has_grad:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"step": 0, **self.init_state(p)}
                state["step"] += 1
                update(p, state, lr, weight_decay)

    def _group_rates(self, gi: int, group: dict[str, Any]) -> tuple[float, float]:
        """Group ``gi``'s ``lr`` and ``weight_decay`` as floats, or the ValueError the ``lr``
        setter gives, naming the group."""
        where = f"param_groups[{gi}]" if len(self.param_groups) > 1 else "param_groups[0]"
        for key in ("lr", "weight_decay"):
            check_number(type(self).__name__, f"{where}['{key}']", group[key], low=0.0)
        return float(group["lr"]), float(group["weight_decay"])

    def _check_grad(self, p: Parameter) -> None:
        """A ShapeError naming ``p`` unless its gradient is an array of its shape."""
        grad = p.grad
        if (isinstance(grad, np.ndarray) and grad.shape == p.data.shape
                and grad.dtype.kind in "biuf"):
            return  # an ndarray subclass
        index = next(i for i, q in enumerate(self.params) if q is p)
        gi = next(i for i, g in enumerate(self.param_groups) if any(q is p for q in g["params"]))
        where = f"{type(self).__name__}.step: parameter {index} (group {gi}, {p!r})"
        if not isinstance(grad, np.ndarray):  # p.grad = None is torch's habit
            raise TypeError(
                f"{where} has a gradient of a {type(grad).__name__}, not an array; minidl "
                f"allocates each gradient once: clear it with p.zero_grad() (or "
                f"optimizer.zero_grad()), never by assigning p.grad")
        if grad.shape == p.data.shape:
            raise TypeError(f"{where} has a gradient of dtype {grad.dtype}; p.grad must hold "
                            f"real numbers")
        raise ShapeError(
            f"{where} has a gradient of shape {grad.shape}; p.grad must be an array of the "
            f"parameter's shape {p.data.shape}"
        )

    def _update_one(self, p: Parameter, state: dict[str, Any], lr: float,
                    weight_decay: float) -> None:
        """The loop's update of one parameter: weight decay, then :meth:`update`. A gradient
        that is not an array of the parameter's shape (``p.grad = ...`` of another shape
        would be broadcast, or fail inside NumPy) is a ShapeError naming the parameter; the
        fused path sends such a parameter here (its kernel takes only matching arrays)."""
        grad = p.grad
        if (type(grad) is not np.ndarray or grad.shape != p.data.shape
                or grad.dtype.kind not in "biuf"):
            self._check_grad(p)
        if weight_decay:
            if self.decoupled_weight_decay:
                p.data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.data
        self.update(p.data, grad, state, lr)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count, parameter groups (parameters as indices into
        :attr:`params`, with their ``lr`` and ``weight_decay``) and per-parameter state
        (keyed by parameter index, never by name) of the parameters that have stepped: the
        arrays now in :attr:`state`, copied (the ones the last step updated, including any the
        user assigned there)."""
        params = self.params
        index = {id(p): i for i, p in enumerate(params)}
        return {
            "class": type(self).__name__,
            "hparams": self.hparams,
            "step_count": self.step_count,
            "param_groups": [
                {"params": [index[id(p)] for p in group["params"]],
                 **{k: group[k] for k in self.group_keys}}
                for group in self.param_groups
            ],
            "state": {
                index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                               for k, v in st.items()}
                for p, st in self.state.items() if st["step"]
            },
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into an optimizer over the same parameters.

        All or nothing: a state dict that does not fit raises a
        :class:`~minidl.errors.StateDictError` listing the problems, and changes nothing."""
        defaults, group_values, state = self._read_state_dict(state_dict)
        self.defaults.update(defaults)
        for group, values in zip(self.param_groups, group_values, strict=True):
            group.update(values)
        self.state = state

    def check_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Raise what :meth:`load_state_dict` would raise for ``state_dict``; change nothing."""
        self._read_state_dict(state_dict)

    def _read_state_dict(self, state_dict: dict[str, Any]):
        """``state_dict`` checked and converted into (defaults, each group's ``lr`` and
        ``weight_decay``, per-parameter state) for this optimizer, in new arrays, changing
        nothing; a state dict that does not fit raises :class:`StateDictError` (a malformed
        one, the conversion's own error)."""
        name = type(self).__name__
        _check_layout(name, state_dict)
        saved_class = state_dict.get("class", name)
        if saved_class != name and saved_class not in self.former_names:
            raise StateDictError(
                f"{name}: cannot load a state dict saved by {state_dict['class']}"
            )
        params = self.params
        problems = []
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, st in state_dict["state"].items():
            i = int(key)  # checked by _check_layout
            if not 0 <= i < len(params):
                problems.append(f"state for parameter {i}, but there are {len(params)}")
                continue
            p = params[i]
            fresh = {"step": 0, **self.init_state(p)}
            if set(st) != set(fresh):
                problems.append(f"parameter {i}: state keys {sorted(st)}, expected {sorted(fresh)}")
                continue
            for k, v in st.items():
                if isinstance(fresh[k], np.ndarray):
                    v = np.asarray(v)
                    if v.shape != fresh[k].shape:
                        problems.append(
                            f"parameter {i}: '{k}' has shape {v.shape}, expected {fresh[k].shape}"
                        )
                        continue
                    if v.dtype.kind not in "biuf" or not np.all(np.isfinite(v)):
                        problems.append(f"parameter {i}: '{k}' holds non-finite or non-numeric "
                                        f"values")
                        continue
                    if k in self.nonnegative_state and np.any(v < 0):
                        problems.append(f"parameter {i}: '{k}' holds negative values "
                                        f"(min {v.min()}), which it never can")
                        continue
                    fresh[k][...] = v
                elif k == "step":
                    ok = isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                    if not ok or v < 0:
                        problems.append(f"parameter {i}: step is {v!r}, not an int >= 0")
                        continue
                    fresh[k] = int(v)
                else:
                    fresh[k] = type(fresh[k])(v)
            new_state[p] = fresh
        unknown = set(state_dict["hparams"]) - set(self.defaults)
        if unknown:
            problems.append(f"unknown hyperparameters {sorted(unknown)}")
        defaults = {k: tuple(v) if isinstance(self.defaults[k], tuple) and
                    isinstance(v, (list, tuple)) else v
                    for k, v in state_dict["hparams"].items() if k in self.defaults}
        if not unknown:
            problems += self._hparam_problems(defaults)
        step_count = int(state_dict["step_count"])
        steps = {st["step"] for st in new_state.values()} or {0}
        if max(steps) != step_count:  # a parameter skipped without a gradient falls behind
            problems.append(f"step_count is {step_count}, but the parameters' states count "
                            f"{sorted(steps)} steps")
        # checkpoints written before parameter groups existed: one group, lr in hparams
        groups = state_dict.get("param_groups") or [
            {"params": list(range(len(params))),
             **{k: defaults.get(k, self.defaults[k]) for k in self.group_keys}}
        ]
        own = [[i for i, _ in enumerate(g["params"])] for g in self.param_groups]
        sizes = [len(g) for g in own]
        saved_sizes = [len(g["params"]) for g in groups]
        if saved_sizes != sizes:
            problems.append(f"parameter groups of sizes {saved_sizes}, expected {sizes}")
        group_values = []
        for gi, g in enumerate(groups):
            values = {}
            for k in self.group_keys:
                if k not in g:
                    continue
                v = g[k]
                if (not isinstance(v, (int, float, np.integer, np.floating))
                        or isinstance(v, (bool, np.bool_)) or not (math.isfinite(v) and v >= 0)):
                    problems.append(f"parameter group {gi} has {k}={v!r}, not a finite "
                                    f"number >= 0")
                    continue
                values[k] = float(v)
            group_values.append(values)
        if problems:
            raise StateDictError(f"{name}.load_state_dict: " + "; ".join(problems))
        return defaults, group_values, new_state

    def _hparam_problems(self, hparams: dict[str, Any]) -> list[str]:
        """What this class's constructor says of ``hparams`` (the check a checkpoint's
        optimizer goes through when it is rebuilt), run on a throwaway parameter: one
        validation for both ways of loading. A constructor that does not take the
        hyperparameters by name cannot judge them; then only ``lr`` and ``weight_decay`` are
        checked, as the base class's constructor checks them."""
        name = type(self).__name__
        merged = {**self.defaults, **hparams}
        dummy = [Parameter(np.zeros(1))]
        for kwargs in ({**merged, "foreach": False, "fused": False}, merged):
            try:
                inspect.signature(type(self)).bind(dummy, **kwargs)
            except TypeError:
                continue
            try:
                type(self)(dummy, **kwargs)
            except (TypeError, ValueError) as exc:
                return [f"hyperparameters refused: {exc}"]
            return []
        try:
            for k in ("lr", "weight_decay"):
                check_number(name, k, merged[k], low=0.0)
        except ValueError as exc:
            return [f"hyperparameters refused: {exc}"]
        return []

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"


def check_eps(owner: str, eps: Any, zero_denominator: str) -> None:
    """``eps`` must be a finite number > 0 where ``zero_denominator`` (when the update's
    denominator is exactly 0) can happen: eps = 0 there gives 0/0, a NaN weight."""
    check_number(owner, "eps", eps, low=0.0)
    if eps == 0:
        raise ValueError(f"{owner}: eps must be > 0, got {eps!r}: the update divides by "
                         f"0 + eps {zero_denominator}, and 0/0 would make the weight NaN")


def _check_layout(name: str, state_dict: Any) -> None:
    """A StateDictError unless ``state_dict`` has the layout :meth:`Optimizer.state_dict`
    writes (a dict with ``hparams`` and ``state`` dicts, an int ``step_count``, state keys
    that are parameter indices, each state a dict, groups a list of dicts), so that what is
    wrong is named, not met as a KeyError or a failed ``int()`` half-way through."""
    where = f"{name}.load_state_dict"
    if not isinstance(state_dict, Mapping):
        raise StateDictError(f"{where}: expected a dict (what state_dict() returns), got "
                             f"{type(state_dict).__name__}")
    missing = [k for k in ("hparams", "step_count", "state") if k not in state_dict]
    if missing:
        raise StateDictError(f"{where}: the state dict has no {missing} (it has "
                             f"{sorted(map(str, state_dict))}); was it written by "
                             f"Optimizer.state_dict()?")
    problems = []
    for key in ("hparams", "state"):
        if not isinstance(state_dict[key], Mapping):
            problems.append(f"'{key}' is a {type(state_dict[key]).__name__}, not a dict")
    count = state_dict["step_count"]
    if not isinstance(count, (int, np.integer)) or isinstance(count, (bool, np.bool_)):
        problems.append(f"step_count is {count!r}, not an int")
    if isinstance(state_dict["state"], Mapping):
        for key, st in state_dict["state"].items():
            digits = isinstance(key, str) and key.isascii() and key.isdigit()
            integer = isinstance(key, (int, np.integer)) and not isinstance(key, bool)
            if not (integer or digits):
                problems.append(f"state key {key!r} is not a parameter index")
            elif not isinstance(st, Mapping):
                problems.append(f"state[{key!r}] is a {type(st).__name__}, not a dict")
    groups = state_dict.get("param_groups")
    if groups is not None and not (isinstance(groups, (list, tuple)) and all(
            isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
            for g in groups)):
        problems.append("param_groups is not a list of dicts with a 'params' list")
    if problems:
        raise StateDictError(f"{where}: " + "; ".join(problems))


def _param_groups(owner: str, params, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """``params`` (Parameters, a Layer, or torch-style group dicts ``{"params": [...],
    "lr": ...}``) as checked parameter groups, each with its own ``lr`` and ``weight_decay``."""
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    items = list(params)
    if not items:
        raise ValueError(f"{owner}: got an empty parameter list; pass model.parameters()")
    specs = items if all(isinstance(g, dict) for g in items) else [{"params": items}]
    groups = []
    seen: set[int] = set()
    for gi, spec in enumerate(specs):
        where = f"parameter group {gi}" if len(specs) > 1 else "parameter list"
        unknown = set(spec) - {"params", "lr", "weight_decay"}
        if unknown:
            raise ValueError(
                f"{owner}: {where} sets {sorted(unknown)}; a group may set only lr and "
                f"weight_decay (the other hyperparameters are the optimizer's)"
            )
        group_params = spec.get("params", [])
        if hasattr(group_params, "parameters") and callable(group_params.parameters):
            group_params = group_params.parameters()
        group_params = [group_params] if isinstance(group_params, Parameter) else list(
            group_params)
        unique, own = [], set()
        for i, p in enumerate(group_params):
            if not isinstance(p, Parameter):
                prefix = f"{where}: " if len(specs) > 1 else ""
                raise TypeError(
                    f"{owner}: {prefix}parameter {i} is {type(p).__name__}, not a Parameter"
                )
            if id(p) in seen:
                if id(p) not in own:
                    raise ValueError(f"{owner}: parameter {i} of {where} is also in an earlier "
                                     f"group; a parameter belongs to one group")
                continue  # listed twice in one group: kept once, so updated once per step
            seen.add(id(p))
            own.add(id(p))
            unique.append(p)
        if not unique:
            raise ValueError(f"{owner}: {where} has no parameters")
        group: dict[str, Any] = {"params": unique}
        for key in ("lr", "weight_decay"):
            value = spec.get(key, defaults[key])
            check_number(owner, key, value, low=0.0)
            group[key] = float(value)
        groups.append(group)
    return groups
