"""Losses: ``forward(pred, target) -> float`` and ``backward() -> dL/dpred``.

A subclass writes only its maths, ``value(pred, target)`` and ``gradient(pred, target)``, and
optionally ``check_target``; the base class converts and validates the inputs (shapes must
match exactly, values must be finite) and caches them for ``backward``. All losses average over
the batch, so their gradients carry the 1/N.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .activations import log_softmax, sigmoid, softmax
from .errors import BackwardBeforeForward, NonFiniteError, ShapeError
from .validation import check_bool, describe, returned_number


class Loss:
    """Base class of losses. See the module docstring."""

    _config_keys: ClassVar[tuple[str, ...]] = ()

    #: Where a single-output prediction of this loss splits the two classes: ``pred > threshold``
    #: is the positive class. 0 for +-1 regression targets (MSE) and for logits, 0.5 for
    #: probabilities; ``None`` where classes come from an argmax (softmax cross-entropy).
    #: Threshold metrics in :func:`minidl.fit` and :func:`minidl.evaluate` use it.
    decision_threshold: float | None = 0.0

    def __init__(self):
        self._pred = None
        self._target = None

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def forward(self, pred, target) -> float:
        name = type(self).__name__
        pred, target = np.asarray(pred), np.asarray(target)
        for what, arr in (("pred", pred), ("target", target)):
            if arr.dtype.kind not in "biuf":  # complex would be silently made real
                raise ValueError(f"{name}: {what} must be a real numeric array, got dtype "
                                 f"{arr.dtype}")
        if pred.dtype.kind != "f":
            pred = pred.astype(np.float64)
        self.check_shapes(pred, target)
        if pred.size == 0:
            raise ValueError(f"{name}: pred is empty (shape {pred.shape}); a loss averages over "
                             f"the batch, so it needs at least one element")
        _check_finite(self, "pred", pred)
        _check_finite(self, "target", target)
        target = self.check_target(pred, target)
        self._pred, self._target = None, None
        with np.errstate(over="ignore", invalid="ignore"):
            value = returned_number(self.value(pred, target), f"{name}.value()",
                                    "a loss returns one number, averaged over the batch")
        if not np.isfinite(value):
            exc = NonFiniteError(
                f"{name}: the loss is {value} for finite predictions and targets (the value "
                f"overflowed {pred.dtype}); training has probably diverged"
            )
            exc.loss_value = value
            raise exc
        self._pred, self._target = pred, target
        return value

    def backward(self) -> np.ndarray:
        if self._pred is None:
            raise BackwardBeforeForward(
                f"{self!r}: backward() called before forward(); compute the loss first"
            )
        grad = self.gradient(self._pred, self._target)
        if not (isinstance(grad, np.ndarray) and grad.shape == self._pred.shape):
            raise TypeError(f"{type(self).__name__}.gradient() returned {describe(grad)}; it "
                            f"must return dL/dpred, an array of the predictions' shape "
                            f"{self._pred.shape}")
        return grad.astype(self._pred.dtype, copy=False)

    # --- what subclasses write
    def check_shapes(self, pred: np.ndarray, target: np.ndarray) -> None:
        if pred.shape != target.shape:
            hint = ""
            if pred.size == target.size:
                hint = f"; reshape one to match, e.g. target.reshape{pred.shape}"
            raise ShapeError(
                f"{type(self).__name__}: pred has shape {pred.shape} but target has shape "
                f"{target.shape}; they must be equal (no broadcasting){hint}"
            )

    def check_target(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Validate target values; return the target in the form ``value``/``gradient`` use."""
        return target.astype(pred.dtype, copy=False)

    def value(self, pred: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._config_keys}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_finite(loss: Loss, what: str, arr: np.ndarray) -> None:
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = ~np.isfinite(arr)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(
            f"{type(loss).__name__}: {what} contains {int(bad.sum())} non-finite value(s) "
            f"(first at index {first}: {arr[first]}); training has probably diverged"
        )


class MSE(Loss):
    """Mean squared error over all elements: ``L = mean((pred - target)^2)``.

    ``dL/dpred = 2 (pred - target) / n`` with n the number of elements.

    ``half_grad=True`` reproduces the QA study's convention: ``forward`` still reports the full
    MSE, but ``backward`` returns ``(pred - target) / n``, the gradient of *half* the MSE. (With
    it, a learning rate behaves as if it were halved compared with the true gradient.)
    """

    _config_keys = ("half_grad",)

    def __init__(self, half_grad: bool = False):
        super().__init__()
        self.half_grad = check_bool("MSE", "half_grad", half_grad)

    def value(self, pred, target):
        diff = pred - target
        return np.mean(diff * diff)

    def gradient(self, pred, target):
        scale = (1.0 if self.half_grad else 2.0) / pred.size
        return (pred - target) * pred.dtype.type(scale)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy averaged over all elements, targets in {0, 1}.

    Probabilities (``from_logits=False``): ``L = -mean(t log p + (1 - t) log(1 - p))``, each log
    clamped at -100 as PyTorch's ``BCELoss`` does; ``dL/dp = (p - t) / (p (1 - p)) / n``, with
    ``p (1 - p)`` floored at 1e-12. ``p`` must lie in [0, 1].

    Logits (``from_logits=True``): ``L = mean(max(z, 0) - z t + log(1 + exp(-|z|)))``, exact
    for any finite z (e.g. +-1e4); ``dL/dz = (sigmoid(z) - t) / n``.
    """

    _config_keys = ("from_logits",)

    def __init__(self, from_logits: bool = False):
        super().__init__()
        self.from_logits = check_bool("BinaryCrossEntropy", "from_logits", from_logits)
        self.decision_threshold = 0.0 if self.from_logits else 0.5

    def check_target(self, pred, target):
        if not np.all((target == 0) | (target == 1)):
            raise ValueError(
                f"BinaryCrossEntropy: targets must be 0 or 1, got values "
                f"{np.unique(target)[:5].tolist()}"
            )
        if not self.from_logits and (np.any(pred < 0) or np.any(pred > 1)):
            raise ValueError(
                "BinaryCrossEntropy: with from_logits=False, pred must be probabilities in [0, 1] "
                f"(got min {pred.min()}, max {pred.max()}); pass from_logits=True for raw scores"
            )
        return target.astype(pred.dtype, copy=False)

    def value(self, pred, target):
        if self.from_logits:
            z = pred
            return np.mean(np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z))))
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(pred), -100)
            log_1mp = np.maximum(np.log1p(-pred), -100)
        return -np.mean(target * log_p + (1 - target) * log_1mp)

    def gradient(self, pred, target):
        n = pred.dtype.type(pred.size)
        if self.from_logits:
            return (sigmoid(pred) - target) / n
        return (pred - target) / np.maximum(pred * (1 - pred), 1e-12) / n


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, from logits of shape (N, C), averaged over N.

    Targets are integer class labels of shape (N,) in [0, C), or rows of class probabilities
    (one-hot) of shape (N, C). ``L = -mean_n sum_c t[n, c] log softmax(z)[n, c]``, computed with
    a log-sum-exp that is exact for logits of any size (e.g. +-1e4);
    ``dL/dz = (softmax(z) - t) / N``.
    """

    decision_threshold = None

    def check_shapes(self, pred, target):
        if pred.ndim != 2:
            raise ShapeError(
                f"SoftmaxCrossEntropy: logits must have shape (N, C), got {pred.shape}"
            )
        if target.shape not in ((pred.shape[0],), pred.shape):
            raise ShapeError(
                f"SoftmaxCrossEntropy: logits have shape {pred.shape}, so target must be integer "
                f"labels of shape ({pred.shape[0]},) or one-hot rows of shape {pred.shape}; got "
                f"{target.shape}"
            )

    def check_target(self, pred, target):
        n_classes = pred.shape[1]
        if target.ndim == 1:
            if target.dtype.kind not in "iu":
                raise ValueError(
                    f"SoftmaxCrossEntropy: class labels of shape {target.shape} must have an "
                    f"integer dtype, got {target.dtype}; use target.astype(int)"
                )
            if target.size and (target.min() < 0 or target.max() >= n_classes):
                raise ValueError(
                    f"SoftmaxCrossEntropy: labels must lie in [0, {n_classes}), got range "
                    f"[{target.min()}, {target.max()}]"
                )
            return target.astype(np.intp, copy=False)
        if np.any(target < 0) or not np.allclose(target.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(
                "SoftmaxCrossEntropy: one-hot targets must be non-negative rows summing to 1"
            )
        return target.astype(pred.dtype, copy=False)

    def value(self, pred, target):
        log_p = log_softmax(pred, axis=1)
        if target.ndim == 1:
            return -np.mean(log_p[np.arange(len(target)), target])
        return -np.mean(np.sum(target * log_p, axis=1))

    def gradient(self, pred, target):
        grad = softmax(pred, axis=1)
        if target.ndim == 1:
            grad[np.arange(len(target)), target] -= 1
        else:
            grad -= target
        return grad / pred.dtype.type(pred.shape[0])


#: PyTorch's name: softmax and cross-entropy on logits, with class-index (or one-hot) targets.
CrossEntropyLoss = SoftmaxCrossEntropy


def _check_reduction(who: str, reduction) -> str:
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"{who}: reduction={reduction!r} is not supported; minidl losses return one float: "
            f"pass 'mean' or 'sum' ('mean' is the default, as in torch)")
    return reduction


class _TorchReduction(Loss):
    """torch's ``reduction`` argument on a minidl loss that averages over all elements:
    ``"mean"`` is the loss itself, ``"sum"`` scales its value and gradient by the number of
    elements. The one copy behind :class:`MSELoss` and :class:`BCELoss`."""

    _config_keys = ("reduction",)
    reduction: str

    def value(self, pred, target):
        value = super().value(pred, target)
        return value * pred.size if self.reduction == "sum" else value

    def gradient(self, pred, target):
        grad = super().gradient(pred, target)
        return grad * pred.dtype.type(pred.size) if self.reduction == "sum" else grad


class MSELoss(_TorchReduction, MSE):
    """PyTorch's ``nn.MSELoss``: :class:`MSE` with torch's ``reduction`` argument.

    ``reduction="mean"`` (the default) is :class:`MSE` itself, the mean over all elements as
    torch computes it; ``"sum"`` is the sum of the squared errors (value and gradient times the
    number of elements). ``"none"`` is refused: a minidl loss returns one float.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction("MSELoss", reduction)


class BCELoss(_TorchReduction, BinaryCrossEntropy):
    """PyTorch's ``nn.BCELoss``: :class:`BinaryCrossEntropy` on probabilities, with torch's
    ``reduction`` argument.

    ``reduction="mean"`` (the default) is ``BinaryCrossEntropy()``: the mean over all elements,
    each log clamped at -100, as torch computes it; ``"sum"`` is the sum. ``"none"`` is refused:
    a minidl loss returns one float. For torch's ``BCEWithLogitsLoss`` use
    ``BinaryCrossEntropy(from_logits=True)``.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__(from_logits=False)
        self.reduction = _check_reduction("BCELoss", reduction)


__all__ = ["MSE", "BCELoss", "BinaryCrossEntropy", "CrossEntropyLoss", "Loss", "MSELoss",
           "SoftmaxCrossEntropy"]
