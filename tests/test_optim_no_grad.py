"""A parameter without a gradient this step is skipped entirely, as torch skips ``grad is None``.

minidl's ``Parameter.grad`` is an array allocated once, so "no gradient" is derived: after
``zero_grad()`` a parameter has no gradient until a layer's ``backward`` writes it (even with
zeros) or a nonzero value is written into it by hand. Such a parameter gets no weight decay, no
momentum, no state and no step count, on every path (the loop, ``foreach=True`` and fused), and
the fused path stays bit-equal to the loop when only some parameters have a gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import SGD, Adagrad, Adam, AdamW, Dense, Layer, Parameter, RMSprop, Sequential, Tanh
from minidl.optim import fused

needs_numba = pytest.mark.skipif(not fused.HAVE_NUMBA, reason="needs numba")
FLAGS = {"loop": {"foreach": False, "fused": False}, "foreach": {"foreach": True},
         "fused": {"fused": True}}
IMPLS = ["loop", "foreach", pytest.param("fused", marks=needs_numba)]
CASES = [
    (SGD, {"lr": 0.1, "weight_decay": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (Adagrad, {"lr": 0.1, "weight_decay": 0.1}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
]
IDS = [f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, kw in CASES]


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s)) for s in [(3, 2), (2,), (), (4,)]]


def snapshot(params, opt):
    return [p.data.copy() for p in params], opt.state_dict()


def assert_same(a, b):
    (pa, sa), (pb, sb) = a, b
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        np.testing.assert_array_equal(x, y, err_msg=f"parameter {i}")
    assert sa["step_count"] == sb["step_count"]
    assert sa["state"].keys() == sb["state"].keys()
    for i, st in sa["state"].items():
        assert st.keys() == sb["state"][i].keys()
        for k, v in st.items():
            np.testing.assert_array_equal(v, sb["state"][i][k], err_msg=f"state {i} {k}")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_step_after_zero_grad_without_backward_changes_nothing(cls, kw, impl):
    params = make_params()
    opt = cls(params, **kw, **FLAGS[impl])
    rng = np.random.default_rng(1)
    for _ in range(2):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
    opt.zero_grad()
    before = snapshot(params, opt)
    opt.step()
    opt.step()
    assert_same(before, snapshot(params, opt))
    assert opt.step_count == 2


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_zero_grad_then_step_on_a_fresh_model_changes_nothing(cls, kw, impl):
    model = Sequential(Dense(3, 4, rng=0), Tanh(), Dense(4, 1, rng=1))
    opt = cls(model.parameters(), **kw, **FLAGS[impl])
    before = model.state_dict()
    opt.zero_grad()
    opt.step()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert opt.state_dict()["state"] == {} and opt.step_count == 0


class TwoHeads(Layer):
    """A model whose second head is not in the forward path."""

    def __init__(self):
        super().__init__()
        self.used = Dense(3, 2, rng=0)
        self.unused = Dense(3, 2, rng=1)

    def forward(self, x):
        return self.used(x)

    def backward(self, grad_out):
        return self.used.backward(grad_out)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_layer_outside_the_forward_path_is_skipped(cls, kw, impl):
    model = TwoHeads()
    opt = cls(model.parameters(), **kw, **FLAGS[impl])
    unused = {k: v for k, v in model.state_dict().items() if k.startswith("unused")}
    used = model.used.weight.data.copy()
    x = np.random.default_rng(2).standard_normal((5, 3))
    loss = minidl.MSE()
    for _ in range(3):
        opt.zero_grad()
        loss(model(x), np.zeros((5, 2)))
        model.backward(loss.backward())
        opt.step()
    for key, value in unused.items():
        np.testing.assert_array_equal(model.state_dict()[key], value, err_msg=key)
    assert not np.array_equal(model.used.weight.data, used)
    steps = {i: st["step"] for i, st in opt.state_dict()["state"].items()}
    assert steps == {0: 3, 1: 3}  # the unused head (parameters 2 and 3) has no state


@pytest.mark.parametrize("impl", ["loop", "foreach"])
def test_fit_skips_a_layer_outside_the_forward_path(impl):
    model = TwoHeads()
    unused = model.unused.weight.data.copy()
    X = np.random.default_rng(3).standard_normal((12, 3))
    y = np.zeros((12, 2))
    opt = SGD(model.parameters(), lr=0.1, weight_decay=0.5, **FLAGS[impl])
    minidl.fit(model, minidl.MSE(), opt, X, y, epochs=2, batch_size=4, verbose=0)
    np.testing.assert_array_equal(model.unused.weight.data, unused)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_backward_that_writes_zeros_is_a_gradient(impl):
    """A zero gradient from a backward (a dead unit, a zero loss gradient) is a gradient, as in
    torch: weight decay applies."""
    model = Dense(3, 2, rng=0)
    opt = SGD(model.parameters(), lr=0.1, weight_decay=0.5, **FLAGS[impl])
    before = model.weight.data.copy()
    opt.zero_grad()
    model(np.ones((4, 3)))
    model.backprop(np.zeros((4, 2)))  # the entry point marks what backward set
    opt.step()
    np.testing.assert_array_equal(model.weight.data, before - 0.1 * (0.5 * before))


@pytest.mark.parametrize("impl", IMPLS)
def test_a_gradient_written_by_hand(impl):
    """After zero_grad, a nonzero value written by hand is a gradient; on a parameter that
    zero_grad never touched, any value is (the arrays start as zeros that count)."""
    a, b, c = Parameter(np.ones(2)), Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = SGD([a, b, c], lr=0.1, weight_decay=0.5, **FLAGS[impl])
    a.zero_grad()
    b.zero_grad()
    a.grad[0] = 1.0
    opt.step()
    np.testing.assert_array_equal(a.data, [1 - 0.1 * (1 + 0.5), 1 - 0.1 * 0.5])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    np.testing.assert_array_equal(c.data, [1 - 0.1 * 0.5] * 2)
    assert (a.has_grad, b.has_grad, c.has_grad) == (True, False, True)


@pytest.mark.parametrize("impl", [pytest.param("fused", marks=needs_numba)])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_fused_path_matches_the_loop_when_some_parameters_have_no_gradient(cls, kw, impl):
    """Each step a different subset has a gradient (sometimes none, sometimes all): the fused
    path skips the same parameters as the loop, bit for bit, state dicts included."""
    runs = []
    for path in ("loop", impl):
        params = make_params()
        opt = cls(params, **kw, **FLAGS[path])
        rng = np.random.default_rng(4)
        out = []
        for _ in range(12):
            opt.zero_grad()
            for p in params:
                if rng.random() < 0.6:
                    p.grad[...] = rng.standard_normal(p.shape)
            opt.step()
            out.append(snapshot(params, opt))
        runs.append(out)
    for t, (a, b) in enumerate(zip(*runs, strict=True)):
        try:
            assert_same(a, b)
        except AssertionError as exc:
            raise AssertionError(f"step {t + 1}: {exc}") from None
    assert len({st["step"] for st in runs[0][-1][1]["state"].values()}) > 1


@pytest.mark.parametrize("impl", IMPLS)
def test_state_dict_with_different_step_counters_loads(impl):
    params = make_params()
    opt = Adam(params, lr=0.01, **FLAGS[impl])
    for t in range(3):
        opt.zero_grad()
        for p in params[: 4 - t]:
            p.grad[...] = 1.0
        opt.step()
    saved = opt.state_dict()
    assert saved["step_count"] == 3
    assert sorted(st["step"] for st in saved["state"].values()) == [1, 2, 3, 3]
    other = Adam([Parameter(p.data) for p in params], lr=0.01, **FLAGS[impl])
    other.load_state_dict(saved)
    assert other.step_count == 3


# ------------------------------------------------------------------ issue 19: eps = 0
@pytest.mark.parametrize(("build", "owner"), [
    (lambda p, eps: minidl.Adam(p, eps=eps), "Adam"),
    (lambda p, eps: minidl.AdamW(p, eps=eps), "AdamW"),
    (lambda p, eps: minidl.RMSprop(p, eps=eps), "RMSprop"),
    (lambda p, eps: minidl.RMSprop(p, eps=eps, centered=True), "RMSprop"),
    (lambda p, eps: minidl.Adagrad(p, eps=eps), "Adagrad"),
])
def test_eps_zero_is_refused_where_the_denominator_can_be_zero(build, owner):
    # issue 19: Adam(eps=0).step() on a fresh model gave NaN weights, and an exact-zero
    # gradient [0.9, nan, 1.1]
    with pytest.raises(ValueError, match=rf"{owner}: eps must be > 0, got 0\.0: the update "
                                         rf"divides by 0 \+ eps where"):
        build([minidl.Parameter(np.ones(3))], 0.0)


def test_adagrad_eps_zero_with_a_positive_accumulator_is_well_defined():
    p = minidl.Parameter(np.array([0.9, 1.0, 1.1]))
    opt = minidl.Adagrad([p], lr=0.1, eps=0.0, initial_accumulator_value=0.1)
    p.grad[...] = [1.0, 0.0, -1.0]
    opt.step()
    assert np.all(np.isfinite(p.data)) and p.data[1] == 1.0


def test_a_gradient_set_to_none_is_named_with_the_minidl_way():
    """torch's habit ``p.grad = None`` after ``zero_grad()``: a clear error, not an
    AttributeError from inside the optimizer."""
    p = Parameter(np.ones(2))
    opt = SGD([p], lr=0.1)
    p.zero_grad()
    p.grad = None
    with pytest.raises(TypeError, match=r"grad is NoneType, not an array.*p\.zero_grad\(\)"):
        opt.step()


@pytest.mark.parametrize("grad", [np.full(2, "a"), np.ones(2, complex), np.array([None, None])])
def test_a_gradient_that_does_not_hold_real_numbers_is_named(grad):
    """Found by the replay of issue 19: a string, complex or object gradient failed inside
    NumPy's arithmetic; both paths name the parameter."""
    import warnings

    for flags in ({"fused": False}, {}):
        p = Parameter(np.ones(2))
        p.grad = grad
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(TypeError, match=r"SGD\.step: parameter 0 \(group 0, "
                                                r"Parameter.*p\.grad must hold real numbers"):
                SGD([p], lr=0.1, **flags).step()
