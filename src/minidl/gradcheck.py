"""Numerical gradient checking for layers, containers and losses.

``gradcheck(obj, inputs)`` compares every gradient that ``backward`` produces (the input
gradient and each parameter gradient) with central finite differences, in float64, on a copy of
``obj`` (the original is left untouched). A layer is checked through the scalar
``<u, forward(x)>`` for a fixed random ``u``, so ``backward(u)`` must return ``J^T u``; a loss is
checked directly through its value.

``mode="full"`` perturbs every element (2 forward passes per element). ``mode="random"``
compares, for a few random directions ``v`` per tensor, the finite difference
``(f(T + eps v) - f(T - eps v)) / 2 eps`` with ``<grad_T, v>``: cheap for large layers, and
still catches any wrong backward with probability one.

A layer is also run with ``backprop(u, input_grad=False)`` (what ``fit`` calls): its parameter
gradients must then be the same, bit for bit, as with ``backprop(u)``.

Random layers (Dropout) are checked with their random state reset before every forward pass, so
each pass draws the same mask. Tolerances follow ``torch.autograd.gradcheck``: an entry fails
when ``|analytic - numeric| > atol + rtol * |numeric|``.
"""

from __future__ import annotations

import copy

import numpy as np

from .errors import GradcheckError
from .layer import Layer
from .losses import Loss
from .validation import check_int, check_number


def gradcheck(obj, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              mode: str = "full", n_directions: int = 3, seed: int = 0) -> bool:
    """Check ``obj``'s backward against finite differences; raise :class:`GradcheckError` if not.

    ``inputs`` is the input array for a :class:`~minidl.Layer` (or container), and the pair
    ``(pred, target)`` for a :class:`~minidl.Loss`. Returns True when every gradient agrees.
    """
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'random', got {mode!r}")
    check_number("gradcheck", "eps", eps)
    if not eps > 0:  # a zero step divides by zero; a negative one only flips the difference
        raise ValueError(f"gradcheck: eps must be > 0, got {eps!r}")
    check_number("gradcheck", "atol", atol, low=0.0)
    check_number("gradcheck", "rtol", rtol, low=0.0)
    check_int("gradcheck", "n_directions", n_directions, low=1)
    check_int("gradcheck", "seed", seed, low=0)
    rng = np.random.default_rng(seed)
    if isinstance(obj, Loss):
        tensors, f, what = _loss_problem(obj, inputs)
    elif isinstance(obj, Layer):
        tensors, f, what = _layer_problem(obj, inputs, rng)
    else:
        raise TypeError(f"gradcheck: expected a Layer or a Loss, got {type(obj).__name__}")
    for name, array, analytic in tensors:
        if analytic.shape != array.shape:
            raise GradcheckError(
                f"gradcheck failed for {what}: the gradient of {name} has shape "
                f"{analytic.shape}, but {name} has shape {array.shape}"
            )
        if mode == "full":
            numeric = _numeric_full(f, array, eps)
            _compare(what, name, analytic, numeric, atol, rtol)
        else:
            for k in range(n_directions):
                v = rng.standard_normal(array.shape)
                slope = _directional(f, array, v, eps)
                _compare(what, f"{name} (random direction {k})",
                         np.array([np.sum(analytic * v)]), np.array([slope]), atol, rtol)
    return True


def _layer_problem(layer: Layer, x, rng):
    model = copy.deepcopy(layer).astype(np.float64)
    x = _real_input(x)
    rng_state = model.rng_state()

    def run():
        model.set_rng_state(rng_state)
        return model(x)

    y = run()
    u = rng.standard_normal(np.shape(y))
    grad_x = model.backprop(u)
    tensors = [("the input", x, np.asarray(grad_x))]
    tensors += [(f"parameter '{name}'", p.data, p.grad.copy())
                for name, p in model.named_parameters()]
    _check_without_input_grad(model, u, tensors[1:], repr(layer))
    return tensors, lambda: float(np.sum(run() * u)), repr(layer)


def _check_without_input_grad(model: Layer, u, params: list, what: str) -> None:
    """``backprop(u, input_grad=False)`` (what ``fit`` calls) must set the very same parameter
    gradients, bit for bit (it may return None or the input gradient)."""
    model.backprop(u, input_grad=False)
    for (name, _, grad), p in zip(params, model.parameters(), strict=True):
        if not np.array_equal(p.grad, grad, equal_nan=True):
            raise GradcheckError(
                f"gradcheck failed for {what}: backprop(grad_out, input_grad=False) set a "
                f"different gradient for {name} than backprop(grad_out) (max difference "
                f"{float(np.max(np.abs(p.grad - grad))):.3g}); skipping the input gradient "
                f"must not change the parameters' gradients")


def _loss_problem(loss: Loss, inputs):
    try:
        pred, target = inputs
    except (TypeError, ValueError):
        raise ValueError("gradcheck: for a Loss, inputs must be the pair (pred, target)") from None
    loss = copy.deepcopy(loss)
    pred = _real_input(pred)
    target = np.asarray(target)
    if target.dtype.kind == "f":
        target = target.astype(np.float64)
    loss.forward(pred, target)
    grad = np.asarray(loss.backward())
    return [("pred", pred, grad)], lambda: loss.forward(pred, target), repr(loss)


def _real_input(x) -> np.ndarray:
    """``x`` as a new float64 array; refused if it is not real numbers or holds nothing to
    check (an empty input would pass without a single comparison)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"gradcheck: the input must be real numbers, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"gradcheck: the input is empty (shape {x.shape}), so nothing would be "
                         f"checked")
    return np.array(x, dtype=np.float64)


def _numeric_full(f, array: np.ndarray, eps: float) -> np.ndarray:
    numeric = np.zeros(array.shape)
    flat = array.reshape(-1)  # a view: writing to it perturbs the array the closure reads
    out = numeric.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        f_plus = f()
        flat[i] = orig - eps
        f_minus = f()
        flat[i] = orig
        out[i] = (f_plus - f_minus) / (2 * eps)
    return numeric


def _directional(f, array: np.ndarray, v: np.ndarray, eps: float) -> float:
    saved = array.copy()
    array += eps * v
    f_plus = f()
    array[...] = saved - eps * v
    f_minus = f()
    array[...] = saved
    return (f_plus - f_minus) / (2 * eps)


def _compare(what: str, name: str, analytic: np.ndarray, numeric: np.ndarray,
             atol: float, rtol: float) -> None:
    diff = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    bad = ~(diff <= bound)  # NaN counts as a failure
    if not bad.any():
        return
    worst = np.unravel_index(int(np.argmax(np.where(bad, diff / bound, -1.0))), diff.shape)
    a, n = float(analytic[worst]), float(numeric[worst])
    rel = abs(a - n) / max(abs(n), 1e-300)
    index = tuple(int(i) for i in worst)
    raise GradcheckError(
        f"gradcheck failed for {what}: {name} at index {index}: analytic {a:.8g}, numeric "
        f"{n:.8g}, relative error {rel:.3g} (atol={atol}, rtol={rtol}); "
        f"{int(bad.sum())} of {bad.size} entries out of tolerance"
    )
