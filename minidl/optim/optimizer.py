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

Parameter groups, as in torch: ``params`` may be a list of dicts ``{"params": [...], "lr": ...,
"weight_decay": ...}``; ``param_groups`` always holds at least one group, and
``param_groups[i]["lr"]`` may be changed between steps (what torch-style schedulers and
:mod:`minidl.schedules` do). ``opt.lr = value`` sets the learning rate of every group.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..errors import StateDictError
from ..parameter import Parameter
from ..validation import check_betas, check_number  # noqa: F401 (re-exported for subclasses)
from . import flat


class Optimizer:
    """Base class of optimizers. See the module docstring."""

    decoupled_weight_decay: ClassVar[bool] = False

    #: Hyperparameters a parameter group may set for itself (the ones the base class applies).
    group_keys: ClassVar[tuple[str, ...]] = ("lr", "weight_decay")

    #: Names this class had before (checkpoints written under them still load).
    former_names: ClassVar[tuple[str, ...]] = ()

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
        #: The flat path (:mod:`minidl.optim.flat`) chosen by ``foreach``/``fused``, or None.
        self._flat = flat.choose(self, foreach, fused)

    @property
    def implementation(self) -> str:
        """Which path ``step`` runs: ``"fused"`` (numba kernels on flat buffers), ``"foreach"``
        (NumPy on flat buffers) or ``"loop"`` (``update`` per parameter)."""
        return "loop" if self._flat is None else self._flat.implementation

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
    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter, using the gradients now in ``p.grad``, with the
        ``lr`` and ``weight_decay`` of the parameter's group."""
        if self._flat is not None:  # same arithmetic, one kernel call per group and dtype
            self._flat.step()
            return
        for group in self.param_groups:
            lr, weight_decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"step": 0, **self.init_state(p)}
                state["step"] += 1
                grad = p.grad
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
        (keyed by parameter index, never by name)."""
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
                for p, st in self.state.items()
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
        saved_class = state_dict.get("class", name)
        if saved_class != name and saved_class not in self.former_names:
            raise StateDictError(
                f"{name}: cannot load a state dict saved by {state_dict['class']}"
            )
        params = self.params
        problems = []
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, st in state_dict["state"].items():
            i = int(key)
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
                    fresh[k][...] = v
                else:
                    fresh[k] = type(fresh[k])(v)
            new_state[p] = fresh
        unknown = set(state_dict["hparams"]) - set(self.defaults)
        if unknown:
            problems.append(f"unknown hyperparameters {sorted(unknown)}")
        defaults = {k: tuple(v) if isinstance(self.defaults[k], tuple) else v
                    for k, v in state_dict["hparams"].items() if k in self.defaults}
        step_count = int(state_dict["step_count"])
        steps = {st["step"] for st in new_state.values()} or {0}
        if steps != {step_count}:
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
        for g in groups:
            values = {k: float(g[k]) for k in self.group_keys if k in g}
            for k, v in values.items():
                if not (math.isfinite(v) and v >= 0):
                    problems.append(f"a parameter group has {k}={v}")
            group_values.append(values)
        if problems:
            raise StateDictError(f"{name}.load_state_dict: " + "; ".join(problems))
        return defaults, group_values, new_state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"


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
        group = {"params": unique}
        for key in ("lr", "weight_decay"):
            value = spec.get(key, defaults[key])
            check_number(owner, key, value, low=0.0)
            group[key] = float(value)
        groups.append(group)
    return groups
