"""Learning-rate schedules, with the names, arguments and rules of ``torch.optim.lr_scheduler``.

Each schedule wraps an optimizer and sets the ``lr`` of each of its ``param_groups``, as
PyTorch's do (so a torch-style schedule you write yourself works the same way). Use it by
hand, PyTorch-style::

    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(100):
        ...                       # one epoch of optimizer.step() calls
        scheduler.step()          # ReduceLROnPlateau: scheduler.step(val_loss)

or pass it to :func:`minidl.fit` as a callback: it then steps at the end of every epoch (and
:class:`ReduceLROnPlateau` reads ``monitor`` from the epoch's logs). Either way, epoch e
(counting from 0) runs with the learning rate below, where ``base_lr`` is the optimizer's
learning rate when the schedule was created:

========================  ===================================================================
``StepLR``                ``base_lr * gamma ** (e // step_size)``
``ExponentialLR``         ``base_lr * gamma ** e``
``CosineAnnealingLR``     ``eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2``
``LambdaLR``              ``base_lr * lr_lambda(e)``
``OneCycleLR``            per batch step: up from ``max_lr / div_factor`` to ``max_lr``, then
                          down to ``max_lr / div_factor / final_div_factor`` (see the class)
``ReduceLROnPlateau``     ``lr * factor`` once the metric has not improved for more than
                          ``patience`` epochs (never below ``min_lr``)
========================  ===================================================================

The first three are computed in closed form (PyTorch's ``_get_closed_form_lr``), so they do
not compound rounding errors, and a schedule resumed from its ``state_dict`` gives the same
numbers. ``base_lrs`` holds each group's starting learning rate; with one parameter group
(the usual case) ``base_lr`` and ``get_last_lr()`` are floats, with several ``get_last_lr()``
is a list, one per group, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .callbacks import Callback, Monitor
from .optim.optimizer import Optimizer
from .validation import check_bool, check_int, check_number


class LRScheduler(Callback):
    """Base class of epoch-indexed schedules: a subclass writes ``closed_form(base_lr)``, the
    learning rate of epoch ``self.last_epoch`` for a group that started at ``base_lr``.
    Creating a schedule sets the epoch-0 learning rate of every parameter group."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    @property
    def base_lr(self) -> float:
        """The starting learning rate (of the first parameter group; see ``base_lrs``)."""
        return self.base_lrs[0]

    def closed_form(self, base_lr: float) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not implement closed_form()")

    def get_lr(self) -> list[float]:
        """The learning rate of each parameter group at epoch ``last_epoch``."""
        return [self.closed_form(base_lr) for base_lr in self.base_lrs]

    def step(self) -> None:
        """Move to the next epoch and set its learning rate."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> float | list[float]:
        """The learning rate now in the optimizer: a float with one parameter group, a list
        (one per group, as PyTorch returns it) with several."""
        return _group_lrs(self.optimizer)

    def _apply(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr

    # ------------------------------------------------------------------ as a callback
    def set_trainer(self, trainer):
        _check_same_optimizer(self, trainer)
        super().set_trainer(trainer)

    def on_epoch_end(self, epoch, logs=None):
        self.step()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # checkpoints written before parameter groups hold one "base_lr"
        base_lrs = state["base_lrs"] if "base_lrs" in state else [state["base_lr"]]
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"{type(self).__name__}: the saved state is for {len(base_lrs)} "
                             f"parameter group(s), the optimizer has "
                             f"{len(self.optimizer.param_groups)}")
        self.base_lrs = [float(lr) for lr in base_lrs]
        self.last_epoch = int(state["last_epoch"])

    def __repr__(self) -> str:
        lrs = ", ".join(f"{g['lr']:.6g}" for g in self.optimizer.param_groups)
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={lrs})"


def _group_lrs(optimizer: Optimizer) -> float | list[float]:
    lrs = [group["lr"] for group in optimizer.param_groups]
    return lrs[0] if len(lrs) == 1 else lrs


def _check_same_optimizer(schedule, trainer) -> None:
    if schedule.optimizer is not trainer.optimizer:
        raise ValueError(
            f"{type(schedule).__name__} was created for a different optimizer than the one fit "
            f"is training with; create it with the optimizer you pass to fit"
        )


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = check_int("StepLR", "step_size", step_size, low=1)
        check_number("StepLR", "gamma", gamma, low=0.0)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def closed_form(self, base_lr: float) -> float:
        return base_lr * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        check_number("ExponentialLR", "gamma", gamma, low=0.0)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def closed_form(self, base_lr: float) -> float:
        return base_lr * self.gamma ** self.last_epoch


class CosineAnnealingLR(LRScheduler):
    """Anneal from ``base_lr`` to ``eta_min`` along half a cosine over ``T_max`` epochs (SGDR
    without restarts, Loshchilov & Hutter 2017). Past ``T_max`` the cosine goes on, rising
    again, as in PyTorch."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max, low=1)
        check_number("CosineAnnealingLR", "eta_min", eta_min, low=0.0)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def closed_form(self, base_lr: float) -> float:
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2


class LambdaLR(LRScheduler):
    """The learning rate of epoch e is ``base_lr * lr_lambda(e)``, as PyTorch's ``LambdaLR``;
    ``lr_lambda`` is a function of the epoch, or a list of them, one per parameter group. Its
    value must be a finite number >= 0 (else a ValueError naming the epoch)."""

    def __init__(self, optimizer: Optimizer, lr_lambda):
        groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 1
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(lambdas) != groups:
            raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter "
                             f"group), got {len(lambdas)}")
        for f in lambdas:
            if not callable(f):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch (or a "
                                f"list of them), got {f!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        lrs = []
        for base_lr, f in zip(self.base_lrs, self.lr_lambdas, strict=True):
            factor = f(self.last_epoch)
            check_number("LambdaLR", f"lr_lambda({self.last_epoch})", factor, low=0.0)
            lrs.append(base_lr * float(factor))
        return lrs


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2017), with PyTorch's arguments and formulas: the
    learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` (or ``epochs * steps_per_epoch``) steps, then falls to
    ``max_lr / div_factor / final_div_factor`` (``three_phase=True``: back to the start first,
    then down), along a cosine (``anneal_strategy="cos"``) or a line (``"linear"``).
    ``max_lr`` may be a list, one per parameter group.

    It is stepped after every *batch*: ``scheduler.step()`` after each ``optimizer.step()``,
    and as a callback of :func:`minidl.fit` it steps at each batch end. Stepping more than
    ``total_steps`` times is a ValueError, as in PyTorch. With ``cycle_momentum=True`` (the
    default) the momentum (``momentum``, or Adam's ``beta1``) moves the other way, between
    ``max_momentum`` and ``base_momentum``; minidl's momentum is the optimizer's, shared by its
    groups, so the optimizer must have a nonzero ``momentum`` or ``betas`` (else pass
    ``cycle_momentum=False``) and a list of momenta must hold one value."""

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False):
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")
        groups = len(optimizer.param_groups)
        if total_steps is not None:
            self.total_steps = check_int(name, "total_steps", total_steps, low=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (check_int(name, "epochs", epochs, low=1)
                                * check_int(name, "steps_per_epoch", steps_per_epoch, low=1))
        else:
            raise ValueError(f"{name}: pass total_steps, or epochs and steps_per_epoch")
        check_number(name, "pct_start", pct_start, low=0.0, high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        for arg, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            check_number(name, arg, value, low=0.0)
            if value == 0:
                raise ValueError(f"{name}: {arg} must be > 0 (the learning rates divide by it)")
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * groups
        if len(max_lrs) != groups:
            raise ValueError(f"{name}: expected {groups} values of max_lr (one per parameter "
                             f"group), got {len(max_lrs)}")
        for value in max_lrs:
            check_number(name, "max_lr", value, low=0.0)
        self.max_lrs = [float(v) for v in max_lrs]
        self.initial_lrs = [v / float(div_factor) for v in self.max_lrs]
        self.min_lrs = [v / float(final_div_factor) for v in self.initial_lrs]
        self.anneal_strategy = anneal_strategy
        pct = float(pct_start)
        total = self.total_steps
        # (end step, start and end as "initial"/"max"/"min", momentum start and end)
        self._phases: list[tuple[float, str, str, str, str]]
        if three_phase:
            self._phases = [(pct * total - 1, "initial", "max", "max_m", "base_m"),
                            (2 * pct * total - 2, "max", "initial", "base_m", "max_m"),
                            (total - 1, "initial", "min", "max_m", "max_m")]
        else:
            self._phases = [(pct * total - 1, "initial", "max", "max_m", "base_m"),
                            (total - 1, "max", "min", "base_m", "max_m")]
        self.cycle_momentum = check_bool(name, "cycle_momentum", cycle_momentum)
        self._momentum_key = None
        if self.cycle_momentum:
            momenta = []
            for arg, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
                values = list(value) if isinstance(value, (list, tuple)) else [value]
                if len(set(values)) != 1:
                    raise ValueError(f"{name}: {arg} must be one value (minidl's momentum is "
                                     f"the optimizer's, shared by its groups), got {value!r}")
                check_number(name, arg, values[0], low=0.0, high=1.0, high_inclusive=False)
                momenta.append(float(values[0]))
            self.base_momentum, self.max_momentum = momenta
            defaults = optimizer.defaults
            if defaults.get("momentum"):
                self._momentum_key = "momentum"
            elif "betas" in defaults:
                self._momentum_key = "betas"
            else:
                raise ValueError(f"{name}: cycle_momentum=True needs an optimizer with a "
                                 f"nonzero momentum or with betas; {type(optimizer).__name__} "
                                 f"has neither: pass cycle_momentum=False")
        super().__init__(optimizer)

    def _at(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _point(self, values: dict[str, float], which: int) -> float:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, but total_steps is "
                             f"{self.total_steps}")
        start_step = 0.0
        for i, phase in enumerate(self._phases):
            end_step = phase[0]
            if step <= end_step or i == len(self._phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                start, end = (phase[1], phase[2]) if which == 0 else (phase[3], phase[4])
                return self._at(values[start], values[end], pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def get_lr(self) -> list[float]:
        return [self._point({"initial": lo, "max": hi, "min": end}, 0)
                for lo, hi, end in zip(self.initial_lrs, self.max_lrs, self.min_lrs,
                                       strict=True)]

    def _apply(self) -> None:
        super()._apply()
        if self._momentum_key is not None:
            m = self._point({"base_m": self.base_momentum, "max_m": self.max_momentum}, 1)
            defaults = self.optimizer.defaults
            if self._momentum_key == "betas":
                defaults["betas"] = (m, defaults["betas"][1])
            else:
                defaults["momentum"] = m

    def on_epoch_end(self, epoch, logs=None):
        pass  # stepped per batch

    def on_batch_end(self, batch, logs=None):
        self.step()


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when a metric has stopped improving, as PyTorch does it.

    ``step(metric)`` after each epoch. The metric improves on ``best`` when (``mode="min"``)
    ``metric < best * (1 - threshold)`` (``threshold_mode="rel"``) or
    ``metric < best - threshold`` (``"abs"``); mirrored for ``mode="max"``. After more than
    ``patience`` epochs in a row without improvement the learning rate becomes
    ``max(lr * factor, min_lr)`` (unless that changes it by less than ``eps``), and the next
    ``cooldown`` epochs do not count as bad epochs.

    As a callback in :func:`minidl.fit` it steps with ``logs[monitor]`` at each epoch end
    (``monitor`` is minidl's addition; PyTorch leaves the metric to you).
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8,
                 monitor: str = "val_loss"):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"ReduceLROnPlateau: expected an Optimizer, got {type(optimizer).__name__}"
            )
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        check_number("ReduceLROnPlateau", "factor", factor, low=0.0, high=1.0,
                     high_inclusive=False)
        patience = check_int("ReduceLROnPlateau", "patience", patience, low=0)
        cooldown = check_int("ReduceLROnPlateau", "cooldown", cooldown, low=0)
        check_number("ReduceLROnPlateau", "min_lr", min_lr, low=0.0)
        check_number("ReduceLROnPlateau", "eps", eps, low=0.0)
        self.optimizer = optimizer
        self.tracker = Monitor("ReduceLROnPlateau", monitor, mode, min_delta=threshold,
                               relative=threshold_mode == "rel")
        self.factor = float(factor)
        self.patience = patience
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        self.eps = float(eps)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    monitor = property(lambda self: self.tracker.monitor)
    mode = property(lambda self: self.tracker.mode)
    threshold = property(lambda self: self.tracker.min_delta)

    @property
    def best(self) -> float:
        return self.tracker.best

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics: float) -> None:
        value: object = (np.asarray(metrics) if isinstance(metrics, (np.ndarray, np.generic))
                         else metrics)
        if isinstance(value, np.ndarray):
            value = value.item() if value.shape == () and value.dtype.kind in "iuf" else None
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(f"ReduceLROnPlateau.step: the monitored value must be a real number "
                             f"(a validation loss, say), got {metrics!r}")
        metrics = float(value)
        self.last_epoch += 1
        if self.tracker.update(metrics):
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group in self.optimizer.param_groups:
                new_lr = max(group["lr"] * self.factor, self.min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def get_last_lr(self) -> float | list[float]:
        """The learning rate now in the optimizer (a list with several parameter groups)."""
        return _group_lrs(self.optimizer)

    # ------------------------------------------------------------------ as a callback
    def on_train_begin(self, logs=None):
        self.tracker.check_logged(self.params, keras_names=True)  # monitor="loss" as Keras

    def on_epoch_end(self, epoch, logs=None):
        self.step(self.tracker.value(logs))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.last_epoch = int(state["last_epoch"])

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, mode={self.mode!r}, "
                f"factor={self.factor}, patience={self.patience}, lr={self.get_last_lr()})")


__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "ReduceLROnPlateau",
    "StepLR",
]
