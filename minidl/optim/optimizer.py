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
updates from 1. Hyperparameters live in ``self.hparams``; ``self.lr`` may be changed between
steps (learning-rate schedules do).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..errors import StateDictError
from ..parameter import Parameter
from ..validation import check_betas, check_number  # noqa: F401 (re-exported for subclasses)


class Optimizer:
    """Base class of optimizers. See the module docstring."""

    decoupled_weight_decay: ClassVar[bool] = False

    def __init__(self, params: Iterable[Parameter], lr: float, weight_decay: float = 0.0,
                 **hparams: Any):
        name = type(self).__name__
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list; pass model.parameters()")
        unique: dict[int, Parameter] = {}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameter {i} is {type(p).__name__}, not a Parameter")
            unique.setdefault(id(p), p)
        self.params: list[Parameter] = list(unique.values())
        check_number(name, "lr", lr, low=0.0)
        check_number(name, "weight_decay", weight_decay, low=0.0)
        self.hparams: dict[str, Any] = {"lr": float(lr), "weight_decay": float(weight_decay),
                                        **hparams}
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.step_count = 0

    @property
    def lr(self) -> float:
        return self.hparams["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        check_number(type(self).__name__, "lr", value, low=0.0)
        self.hparams["lr"] = float(value)

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
        """Apply one update to every parameter, using the gradients now in ``p.grad``."""
        self.step_count += 1
        lr = self.hparams["lr"]
        weight_decay = self.hparams["weight_decay"]
        for p in self.params:
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
        """Hyperparameters, step count and per-parameter state (keyed by parameter index)."""
        index = {id(p): i for i, p in enumerate(self.params)}
        return {
            "class": type(self).__name__,
            "hparams": dict(self.hparams),
            "step_count": self.step_count,
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
        hparams, step_count, state = self._read_state_dict(state_dict)
        self.hparams.update(hparams)
        self.step_count = step_count
        self.state = state

    def check_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Raise what :meth:`load_state_dict` would raise for ``state_dict``; change nothing."""
        self._read_state_dict(state_dict)

    def _read_state_dict(self, state_dict: dict[str, Any]):
        """``state_dict`` checked and converted into (hparams, step_count, per-parameter
        state) for this optimizer, in new arrays, changing nothing; a state dict that does not
        fit raises :class:`StateDictError` (a malformed one, the conversion's own error)."""
        name = type(self).__name__
        if state_dict.get("class", name) != name:
            raise StateDictError(
                f"{name}: cannot load a state dict saved by {state_dict['class']}"
            )
        problems = []
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, st in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(self.params):
                problems.append(f"state for parameter {i}, but there are {len(self.params)}")
                continue
            p = self.params[i]
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
        unknown = set(state_dict["hparams"]) - set(self.hparams)
        if unknown:
            problems.append(f"unknown hyperparameters {sorted(unknown)}")
        hparams = {k: tuple(v) if isinstance(self.hparams[k], tuple) else v
                   for k, v in state_dict["hparams"].items() if k in self.hparams}
        step_count = int(state_dict["step_count"])
        if problems:
            raise StateDictError(f"{name}.load_state_dict: " + "; ".join(problems))
        return hparams, step_count, new_state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"
