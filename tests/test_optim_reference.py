"""minidl's optimizers against an independent plain-Python reference, step by step.

The reference functions below are written from the algorithms as ``torch.optim`` documents them
(the pseudo-code in each class docstring), for one scalar at a time, with Python floats and the
``math`` module only: no NumPy in the reference maths, so they share no code and no rounding
habits with minidl. Every update rule is elementwise, so a parameter of any shape is its scalars.

Each trajectory runs ``STEPS`` steps over parameters of different shapes with a fixed sequence of
gradients (set into ``p.grad`` before each ``step()``), once at a constant learning rate and once
with the learning rate changed between steps through ``opt.lr``, and is compared with the
reference after every step in float64 (rtol 1e-12).

The rest proves the mechanics: closed-form first steps, bit-for-bit state_dict round trips, zero
gradients, float32, state keyed by parameter, and every error message a user can hit.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import minidl
from minidl import SGD, AdaGrad, Adam, AdamW, Parameter, RMSProp
from minidl.errors import StateDictError

SHAPES = [(2, 3), (4,), ()]
STEPS = 15
RTOL = 1e-12
ATOL = 1e-14


# ---------------------------------------------------------------------------------------------
# The reference: one scalar parameter theta, its gradients and the learning rate at each step.
# Each returns theta after every step.
# ---------------------------------------------------------------------------------------------
def ref_sgd(theta, grads, lrs, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    out, b = [], 0.0
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
        out.append(theta)
    return out


def ref_adam(theta, grads, lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
             amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    out, m, v, v_max = [], 0.0, 0.0, 0.0
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        if decoupled:
            theta = theta - lr * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        if amsgrad:
            v_max = max(v_max, v)
            v_hat = v_max / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def ref_adamw(theta, grads, lrs, weight_decay=1e-2, **kw):
    return ref_adam(theta, grads, lrs, weight_decay=weight_decay, decoupled=True, **kw)


def ref_adagrad(theta, grads, lrs, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10):
    out, state_sum = [], initial_accumulator_value
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        clr = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g * g
        theta = theta - clr * g / (math.sqrt(state_sum) + eps)
        out.append(theta)
    return out


def ref_rmsprop(theta, grads, lrs, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False):
    out, v, g_ave, b = [], 0.0, 0.0, 0.0
    for g, lr in zip(grads, lrs, strict=True):
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_ave = g_ave * alpha + (1 - alpha) * g
            v_tilde = v_tilde - g_ave * g_ave
        if momentum > 0:
            b = momentum * b + g / (math.sqrt(v_tilde) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (math.sqrt(v_tilde) + eps)
        out.append(theta)
    return out


# ---------------------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------------------
def make_problem(seed: int, steps: int = STEPS, shapes=SHAPES):
    """Initial values and gradients as lists of Python floats: ``init[i]`` is parameter i
    flattened, ``grads[t][i]`` its gradient at step t+1. About one gradient in ten is exactly 0;
    magnitudes span 1e-2..10, so amsgrad's running max and AdaGrad's sum both matter."""
    rnd = random.Random(seed)
    sizes = [math.prod(s) for s in shapes]
    init = [[rnd.uniform(-1, 1) for _ in range(n)] for n in sizes]
    grads = [
        [[0.0 if rnd.random() < 0.1 else rnd.gauss(0, 1) * 10 ** rnd.uniform(-2, 1)
          for _ in range(n)] for n in sizes]
        for _ in range(steps)
    ]
    return init, grads


def schedule(lr: float, kind: str, steps: int = STEPS) -> list[float]:
    if kind == "constant":
        return [lr] * steps
    # changed between steps through opt.lr: down by 10, then up by 30 (and once to 0)
    return [lr] * 5 + [lr / 10] * 4 + [0.0] + [lr * 3] * (steps - 10)


def run_minidl(cls, hparams, init, grads, lrs, shapes=SHAPES, dtype=np.float64):
    """Drive a minidl optimizer; return the parameters (flat lists) after every step."""
    params = [Parameter(np.array(x, dtype=dtype).reshape(s))
              for x, s in zip(init, shapes, strict=True)]
    opt = cls(params, **hparams)
    trajectory = []
    for g_step, lr in zip(grads, lrs, strict=True):
        opt.lr = lr
        for p, g in zip(params, g_step, strict=True):
            p.grad[...] = np.array(g).reshape(p.shape)
        opt.step()
        trajectory.append([p.data.ravel().tolist() for p in params])
    return trajectory


def run_reference(ref, hparams, init, grads, lrs):
    """Run the scalar reference on every element; same layout as :func:`run_minidl`."""
    kw = {k: v for k, v in hparams.items() if k != "lr"}
    trajectory = [[[0.0] * len(x) for x in init] for _ in grads]
    for i, x in enumerate(init):
        for j, theta in enumerate(x):
            path = ref(theta, [g[i][j] for g in grads], lrs, **kw)
            for t, value in enumerate(path):
                trajectory[t][i][j] = value
    return trajectory


def assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL):
    """Compare after every step; fail at the first differing step with its values."""
    for t, (a_step, e_step) in enumerate(zip(actual, expected, strict=True), start=1):
        a = np.concatenate([np.ravel(x) for x in a_step])
        e = np.concatenate([np.ravel(x) for x in e_step])
        if not np.allclose(a, e, rtol=rtol, atol=atol):
            bad = np.flatnonzero(~np.isclose(a, e, rtol=rtol, atol=atol))
            raise AssertionError(
                f"first difference at step {t}: elements {bad.tolist()}; "
                f"got {a[bad].tolist()}, expected {e[bad].tolist()}"
            )
    assert len(actual) == len(expected)


CASES = [
    # SGD
    (SGD, ref_sgd, {"lr": 0.1}),
    (SGD, ref_sgd, {"lr": 0.1, "momentum": 0.9}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    (SGD, ref_sgd, {"lr": 0.1, "weight_decay": 0.1}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.2}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.01}),
    (SGD, ref_sgd, {"lr": 5.0, "momentum": 0.5, "weight_decay": 0.1}),
    # Adam
    (Adam, ref_adam, {"lr": 0.01}),
    (Adam, ref_adam, {"lr": 0.01, "betas": (0.8, 0.9)}),
    (Adam, ref_adam, {"lr": 0.01, "weight_decay": 0.1}),
    (Adam, ref_adam, {"lr": 0.01, "amsgrad": True}),
    (Adam, ref_adam, {"lr": 0.02, "betas": (0.5, 0.6), "eps": 1e-3, "weight_decay": 0.05,
                      "amsgrad": True}),
    (Adam, ref_adam, {"lr": 10.0, "betas": (0.0, 0.5), "amsgrad": True}),
    # AdamW
    (AdamW, ref_adamw, {"lr": 0.01}),
    (AdamW, ref_adamw, {"lr": 0.01, "weight_decay": 0.0}),
    (AdamW, ref_adamw, {"lr": 0.01, "betas": (0.7, 0.8), "weight_decay": 0.5, "amsgrad": True}),
    (AdamW, ref_adamw, {"lr": 3.0, "weight_decay": 0.1, "eps": 1e-4}),
    # AdaGrad
    (AdaGrad, ref_adagrad, {"lr": 0.1}),
    (AdaGrad, ref_adagrad, {"lr": 0.1, "lr_decay": 0.1}),
    (AdaGrad, ref_adagrad, {"lr": 0.1, "initial_accumulator_value": 0.5}),
    (AdaGrad, ref_adagrad, {"lr": 0.1, "weight_decay": 0.1, "eps": 1e-3}),
    (AdaGrad, ref_adagrad, {"lr": 0.05, "lr_decay": 0.5, "weight_decay": 0.3,
                            "initial_accumulator_value": 0.1, "eps": 1e-6}),
    (AdaGrad, ref_adagrad, {"lr": 10.0, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    # RMSProp
    (RMSProp, ref_rmsprop, {"lr": 0.01}),
    (RMSProp, ref_rmsprop, {"lr": 0.01, "alpha": 0.9}),
    (RMSProp, ref_rmsprop, {"lr": 0.01, "momentum": 0.9}),
    (RMSProp, ref_rmsprop, {"lr": 0.01, "centered": True}),
    (RMSProp, ref_rmsprop, {"lr": 0.01, "weight_decay": 0.1}),
    (RMSProp, ref_rmsprop, {"lr": 0.01, "alpha": 0.5, "eps": 1e-4, "weight_decay": 0.1,
                            "momentum": 0.5, "centered": True}),
    (RMSProp, ref_rmsprop, {"lr": 5.0, "alpha": 0.9, "momentum": 0.3, "centered": True}),
]


def case_id(cls, hparams):
    return cls.__name__ + "(" + ",".join(f"{k}={v}" for k, v in hparams.items()) + ")"


@pytest.mark.parametrize("kind", ["constant", "changed"])
@pytest.mark.parametrize(
    ("cls", "ref", "hparams"),
    [pytest.param(c, r, h, id=case_id(c, h)) for c, r, h in CASES],
)
def test_trajectory_matches_reference(cls, ref, hparams, kind):
    init, grads = make_problem(seed=len(repr(hparams)))
    lrs = schedule(hparams["lr"], kind)
    actual = run_minidl(cls, hparams, init, grads, lrs)
    expected = run_reference(ref, hparams, init, grads, lrs)
    assert_trajectories_close(actual, expected)
    # the parameters moved, so the comparison was not vacuous
    assert actual[-1] != [list(map(float, x)) for x in init]


def test_reference_detects_a_wrong_rule():
    """The comparison can fail: Adam without bias correction is a different trajectory."""
    init, grads = make_problem(seed=1)
    lrs = schedule(0.01, "constant")
    actual = run_minidl(Adam, {"lr": 0.01}, init, grads, lrs)

    def adam_no_bias_correction(theta, gs, lrs):
        m = v = 0.0
        out = []
        for g, lr in zip(gs, lrs, strict=True):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            theta = theta - lr * m / (math.sqrt(v) + 1e-8)
            out.append(theta)
        return out

    wrong = run_reference(adam_no_bias_correction, {"lr": 0.01}, init, grads, lrs)
    with pytest.raises(AssertionError, match="first difference at step 1"):
        assert_trajectories_close(actual, wrong)


# ---------------------------------------------------------------------------------------------
# Closed-form first steps
# ---------------------------------------------------------------------------------------------
G = np.array([[0.5, -2.0, 3e-3], [-7.0, 1e-6, 0.25]])
P0 = np.array([[0.1, -0.2, 0.3], [0.4, -0.5, 0.6]])


def first_step(cls, p0=None, **hparams):
    """The parameter after one step from ``p0`` (default 0, so the result is the update itself,
    free of the cancellation in ``p1 - p0``)."""
    p = Parameter(np.zeros_like(G) if p0 is None else p0)
    opt = cls([p], **hparams)
    p.grad[...] = G
    opt.step()
    return p.data


@pytest.mark.parametrize("lr", [0.1, 3.0])
def test_sgd_first_step(lr):
    assert np.array_equal(first_step(SGD, lr=lr), -lr * G)
    assert np.array_equal(first_step(SGD, P0, lr=lr), P0 - lr * G)
    # the momentum buffer starts as the gradient itself (no dampening on step 1)
    assert np.array_equal(first_step(SGD, lr=lr, momentum=0.9, dampening=0.5), -lr * G)
    np.testing.assert_allclose(first_step(SGD, lr=lr, momentum=0.9, nesterov=True),
                               -lr * 1.9 * G, rtol=1e-14)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_adam_first_step_is_lr_times_sign(cls, amsgrad, eps):
    lr = 0.01
    delta = first_step(cls, lr=lr, eps=eps, amsgrad=amsgrad, weight_decay=0.0)
    # m_hat = g and v_hat = g^2 exactly in real arithmetic
    np.testing.assert_allclose(delta, -lr * G / (np.abs(G) + eps), rtol=1e-14)
    # so the step is lr * sign(g) up to the eps effect lr * eps / (|g| + eps) (plus rounding)
    rounding = 4 * np.finfo(np.float64).eps * lr
    assert np.all(np.abs(delta + lr * np.sign(G)) <= lr * eps / (np.abs(G) + eps) + rounding)


def test_adamw_first_step_shrinks_then_steps():
    lr, wd, eps = 0.1, 0.5, 1e-8
    p1 = first_step(AdamW, P0, lr=lr, weight_decay=wd, eps=eps)
    np.testing.assert_allclose(p1, P0 * (1 - lr * wd) - lr * G / (np.abs(G) + eps), rtol=1e-14)


def test_adagrad_first_step():
    lr, eps = 0.1, 1e-10
    np.testing.assert_allclose(first_step(AdaGrad, lr=lr, eps=eps),
                               -lr * G / (np.abs(G) + eps), rtol=1e-14)
    s0 = 0.3
    np.testing.assert_allclose(first_step(AdaGrad, lr=lr, initial_accumulator_value=s0),
                               -lr * G / (np.sqrt(s0 + G**2) + 1e-10), rtol=1e-14)


@pytest.mark.parametrize("alpha", [0.99, 0.9, 0.5])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_first_step(alpha, momentum):
    lr, eps = 0.01, 1e-8
    np.testing.assert_allclose(first_step(RMSProp, lr=lr, alpha=alpha, momentum=momentum),
                               -lr * G / (math.sqrt(1 - alpha) * np.abs(G) + eps), rtol=1e-14)
    # centered: v - a^2 = (1 - alpha) g^2 - (1 - alpha)^2 g^2 = alpha (1 - alpha) g^2
    np.testing.assert_allclose(
        first_step(RMSProp, lr=lr, alpha=alpha, momentum=momentum, centered=True),
        -lr * G / (math.sqrt(alpha * (1 - alpha)) * np.abs(G) + eps), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Mechanics
# ---------------------------------------------------------------------------------------------
# One configuration per optimizer that creates every kind of state it has.
FULL = [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (AdamW, {"lr": 0.01, "amsgrad": True}),
    (AdaGrad, {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.2}),
    (RMSProp, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
]
FULL_IDS = [c.__name__ for c, _ in FULL]


def fresh_params(values, dtype=np.float64):
    return [Parameter(np.array(v, dtype=dtype)) for v in values]


def feed(opt, params, grads):
    """One step per gradient list in ``grads``."""
    for g_step in grads:
        for p, g in zip(params, g_step, strict=True):
            p.grad[...] = np.array(g).reshape(p.shape)
        opt.step()


def shaped(flat_lists, shapes=SHAPES):
    return [np.array(x).reshape(s) for x, s in zip(flat_lists, shapes, strict=True)]


@pytest.mark.parametrize(("cls", "hparams"), FULL, ids=FULL_IDS)
def test_state_dict_round_trip_is_bit_for_bit(cls, hparams):
    init, grads = make_problem(seed=7)
    k = 6
    # uninterrupted: the same optimizer goes on after its state_dict was taken, which also
    # proves the saved state is a copy, not a view of the live arrays
    params = fresh_params(shaped(init))
    opt = cls(params, **hparams)
    feed(opt, params, grads[:k])
    saved = opt.state_dict()
    saved_values = [p.data.copy() for p in params]
    feed(opt, params, grads[k:])

    resumed = fresh_params(saved_values)
    opt2 = cls(resumed, **hparams)
    opt2.load_state_dict(saved)
    assert opt2.step_count == k
    feed(opt2, resumed, grads[k:])
    for a, b in zip(params, resumed, strict=True):
        assert np.array_equal(a.data, b.data)
    for a, b in zip(params, resumed, strict=True):
        for key in opt.state[a]:
            assert np.array_equal(opt.state[a][key], opt2.state[b][key]), key


def test_load_state_dict_restores_hyperparameters():
    params = fresh_params([[1.0, 2.0]])
    opt = Adam(params, lr=0.05, betas=(0.5, 0.6))
    feed(opt, params, [[[0.1, 0.2]]])
    opt2 = Adam(fresh_params([[1.0, 2.0]]))
    opt2.load_state_dict(opt.state_dict())
    assert opt2.lr == 0.05
    assert opt2.hparams["betas"] == (0.5, 0.6)


@pytest.mark.parametrize(("cls", "hparams"), FULL, ids=FULL_IDS)
def test_zero_gradient_without_weight_decay_changes_nothing(cls, hparams):
    hparams = {**hparams, "weight_decay": 0.0}
    init, _ = make_problem(seed=3)
    params = fresh_params(shaped(init))
    before = [p.data.copy() for p in params]
    opt = cls(params, **hparams)
    for _ in range(5):
        for p in params:
            p.zero_grad()
        opt.step()
    for p, b in zip(params, before, strict=True):
        assert np.array_equal(p.data, b)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize(("cls", "hparams"), FULL, ids=FULL_IDS)
def test_step_leaves_gradients_untouched(cls, hparams, weight_decay):
    init, grads = make_problem(seed=19, steps=3)
    params = fresh_params(shaped(init))
    opt = cls(params, **{**hparams, "weight_decay": weight_decay})
    for g_step in grads:
        for p, g in zip(params, g_step, strict=True):
            p.grad[...] = np.array(g).reshape(p.shape)
        expected = [p.grad.copy() for p in params]
        opt.step()
        for p, e in zip(params, expected, strict=True):
            assert np.array_equal(p.grad, e)


@pytest.mark.parametrize(("cls", "hparams"), FULL, ids=FULL_IDS)
def test_float32_parameters_and_state_stay_float32(cls, hparams):
    init, grads = make_problem(seed=5, steps=4)
    params = fresh_params(shaped(init), dtype=np.float32)
    opt = cls(params, **hparams)
    feed(opt, params, grads)
    for p in params:
        assert p.data.dtype == np.float32
        assert p.grad.dtype == np.float32
        arrays = [v for v in opt.state[p].values() if isinstance(v, np.ndarray)]
        assert arrays, "every FULL configuration keeps at least one state array"
        for arr in arrays:
            assert arr.dtype == np.float32
    # and the float32 run follows the float64 one to float32 precision
    expected = run_minidl(cls, hparams, init, grads, [hparams["lr"]] * len(grads))[-1]
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.data.ravel(), e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("cls", "hparams"), FULL, ids=FULL_IDS)
def test_state_is_keyed_by_parameter(cls, hparams):
    """Two parameters of equal shape (both could be called 'weight') get separate state: the
    optimizer over both moves each exactly as an optimizer over that one alone would."""
    init, grads = make_problem(seed=11, shapes=[(3,), (3,)])
    a, b = fresh_params(init)
    opt = cls([a, b], **hparams)
    feed(opt, [a, b], [[g[0], g[1]] for g in grads])
    assert opt.state[a] is not opt.state[b]
    for key, value in opt.state[a].items():
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(value, opt.state[b][key])
    for i, p in enumerate([a, b]):
        (alone,) = fresh_params([init[i]])
        opt_alone = cls([alone], **hparams)
        feed(opt_alone, [alone], [[g[i]] for g in grads])
        assert np.array_equal(p.data, alone.data)


@pytest.mark.parametrize(("cls", "hparams"), FULL, ids=FULL_IDS)
def test_parameter_passed_twice_is_updated_once(cls, hparams):
    init, grads = make_problem(seed=13, shapes=[(3,), (2,)])
    p, q = fresh_params(init)
    opt = cls([p, q, p], **hparams)
    assert opt.params == [p, q]
    feed(opt, [p, q], [[g[0], g[1]] for g in grads])
    assert opt.state[p]["step"] == len(grads)
    (alone,) = fresh_params([init[0]])
    opt_alone = cls([alone], **hparams)
    feed(opt_alone, [alone], [[g[0]] for g in grads])
    assert np.array_equal(p.data, alone.data)


def test_optimizer_accepts_a_layer_and_keeps_forward_order():
    model = minidl.RecursiveMLP([3, 4, 2], rng=0)
    opt = SGD(model, lr=0.1)
    assert opt.params == list(model.parameters())


def test_lr_change_takes_effect_on_the_next_step():
    p = Parameter([1.0, -1.0])
    opt = SGD([p], lr=0.5)
    p.grad[...] = [1.0, 2.0]
    opt.step()
    assert p.data.tolist() == [0.5, -2.0]
    opt.lr = 0.25
    assert opt.hparams["lr"] == 0.25
    opt.step()
    assert p.data.tolist() == [0.25, -2.5]
    opt.lr = 0
    opt.step()
    assert p.data.tolist() == [0.25, -2.5]


def test_lr_change_takes_effect_for_adam_state():
    """Adam's moments keep accumulating while lr is 0; the next step uses the new lr."""
    init, grads = make_problem(seed=17, shapes=[(4,)], steps=6)
    lrs = [0.1, 0.0, 0.0, 0.5, 0.5, 0.01]
    actual = run_minidl(Adam, {"lr": 0.1}, init, grads, lrs, shapes=[(4,)])
    expected = run_reference(ref_adam, {"lr": 0.1}, init, grads, lrs)
    assert_trajectories_close(actual, expected)
    assert actual[2] == actual[0]


# ---------------------------------------------------------------------------------------------
# Every error a user can hit
# ---------------------------------------------------------------------------------------------
ALL = [SGD, Adam, AdamW, AdaGrad, RMSProp]
ALL_IDS = [c.__name__ for c in ALL]


def one_param():
    return [Parameter(np.zeros(3))]


@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
def test_empty_parameter_list(cls):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: got an empty parameter list; pass "
                                         r"model\.parameters\(\)$"):
        cls([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        cls(iter([]), lr=0.1)


@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
def test_not_a_parameter(cls):
    with pytest.raises(TypeError,
                       match=rf"^{cls.__name__}: parameter 1 is ndarray, not a Parameter$"):
        cls([Parameter(np.zeros(2)), np.zeros(2)], lr=0.1)


@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
@pytest.mark.parametrize(
    ("lr", "message"),
    [
        (-0.1, r"lr must be >= 0\.0, got -0\.1"),
        ("0.1", r"lr must be a finite number, got '0\.1'"),
        (None, r"lr must be a finite number, got None"),
        (True, r"lr must be a finite number, got True"),
        (float("nan"), r"lr must be a finite number, got nan"),
        (float("inf"), r"lr must be a finite number, got inf"),
    ],
)
def test_bad_lr(cls, lr, message):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {message}$"):
        cls(one_param(), lr=lr)


@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
def test_bad_lr_set_between_steps(cls):
    opt = cls(one_param(), lr=0.1)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: lr must be >= 0\.0, got -1$"):
        opt.lr = -1
    with pytest.raises(ValueError, match=r"lr must be a finite number, got '1e-3'"):
        opt.lr = "1e-3"
    assert opt.lr == 0.1


@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
def test_negative_weight_decay(cls):
    with pytest.raises(ValueError,
                       match=rf"^{cls.__name__}: weight_decay must be >= 0\.0, got -0\.01$"):
        cls(one_param(), lr=0.1, weight_decay=-0.01)


@pytest.mark.parametrize("cls", [Adam, AdamW, AdaGrad, RMSProp],
                         ids=["Adam", "AdamW", "AdaGrad", "RMSProp"])
def test_negative_eps(cls):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: eps must be >= 0\.0, got -1e-08$"):
        cls(one_param(), eps=-1e-8)


@pytest.mark.parametrize("cls", [Adam, AdamW], ids=["Adam", "AdamW"])
@pytest.mark.parametrize(
    ("betas", "message"),
    [
        ((1.0, 0.999), r"betas\[0\] must lie in \[0\.0, 1\.0\), got 1\.0"),
        ((0.9, 1.0), r"betas\[1\] must lie in \[0\.0, 1\.0\), got 1\.0"),
        ((0.9, 1.5), r"betas\[1\] must lie in \[0\.0, 1\.0\), got 1\.5"),
        ((-0.1, 0.999), r"betas\[0\] must be >= 0\.0, got -0\.1"),
        ((0.9,), r"betas must be a pair \(beta1, beta2\), got \(0\.9,\)"),
        (0.9, r"betas must be a pair \(beta1, beta2\), got 0\.9"),
        (("0.9", 0.999), r"betas\[0\] must be a finite number, got '0\.9'"),
    ],
)
def test_bad_betas(cls, betas, message):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {message}$"):
        cls(one_param(), betas=betas)


@pytest.mark.parametrize("kw", [{"nesterov": True}, {"nesterov": True, "momentum": 0.0},
                                {"nesterov": True, "momentum": 0.9, "dampening": 0.1}])
def test_sgd_nesterov_needs_momentum_and_no_dampening(kw):
    with pytest.raises(ValueError,
                       match=r"^SGD: nesterov momentum needs momentum > 0 and dampening = 0$"):
        SGD(one_param(), lr=0.1, **kw)


@pytest.mark.parametrize(
    ("cls", "kw", "message"),
    [
        (SGD, {"lr": 0.1, "momentum": -0.5}, r"SGD: momentum must be >= 0\.0, got -0\.5"),
        (RMSProp, {"momentum": -0.5}, r"RMSprop: momentum must be >= 0\.0, got -0\.5"),
        (RMSProp, {"alpha": 1.5}, r"RMSprop: alpha must lie in \[0\.0, 1\.0\], got 1\.5"),
        (RMSProp, {"alpha": -0.1}, r"RMSprop: alpha must be >= 0\.0, got -0\.1"),
        (AdaGrad, {"lr_decay": -1.0}, r"Adagrad: lr_decay must be >= 0\.0, got -1\.0"),
        (AdaGrad, {"initial_accumulator_value": -1.0},
         r"Adagrad: initial_accumulator_value must be >= 0\.0, got -1\.0"),
    ],
)
def test_other_bad_hyperparameters(cls, kw, message):
    with pytest.raises(ValueError, match=rf"^{message}$"):
        cls(one_param(), **kw)


def stepped(cls, params, **hparams):
    opt = cls(params, **hparams)
    for p in params:
        p.grad[...] = 1.0
    opt.step()
    return opt


def test_load_state_dict_wrong_shape():
    saved = stepped(Adam, [Parameter(np.zeros(3)), Parameter(np.zeros((2, 2)))]).state_dict()
    opt = Adam([Parameter(np.zeros(3)), Parameter(np.zeros((2, 3)))])
    with pytest.raises(StateDictError,
                       match=r"^Adam\.load_state_dict: parameter 1: 'exp_avg' has shape \(2, 2\), "
                             r"expected \(2, 3\)"):
        opt.load_state_dict(saved)
    assert opt.state == {} and opt.step_count == 0, "a failed load changes nothing"


def test_load_state_dict_wrong_class():
    saved = stepped(Adam, one_param()).state_dict()
    opt = AdamW(one_param())
    with pytest.raises(StateDictError, match=r"^AdamW: cannot load a state dict saved by Adam$"):
        opt.load_state_dict(saved)
    assert opt.state == {}


def test_load_state_dict_wrong_state_keys_and_count():
    saved = stepped(SGD, one_param(), lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(StateDictError,
                       match=r"parameter 0: state keys \['momentum_buffer', 'step'\], "
                             r"expected \['step'\]"):
        SGD(one_param(), lr=0.1).load_state_dict(saved)
    saved = stepped(SGD, one_param() + one_param(), lr=0.1).state_dict()
    with pytest.raises(StateDictError, match=r"state for parameter 1, but there are 1"):
        SGD(one_param(), lr=0.1).load_state_dict(saved)


def test_load_state_dict_unknown_hyperparameter():
    saved = stepped(SGD, one_param(), lr=0.1).state_dict()
    saved["hparams"]["warmup"] = 3
    with pytest.raises(StateDictError, match=r"unknown hyperparameters \['warmup'\]"):
        SGD(one_param(), lr=0.1).load_state_dict(saved)


def test_base_class_without_update():
    class NoUpdate(minidl.Optimizer):
        pass

    p = Parameter(np.zeros(2))
    with pytest.raises(NotImplementedError, match=r"^NoUpdate does not implement update\(\)$"):
        NoUpdate([p], lr=0.1).step()
