"""The default optimizer path keeps ``Parameter``'s promise, tried as a hostile user would.

``Parameter.data`` and ``.grad`` are never replaced: every path updates the arrays in place, so
``W = layer.weight.data`` is still the parameter's array after ``step()``. And one rule for
every case below: the fused path (the default with numba) and the loop (``update`` in NumPy)
agree bit for bit, errors included, or the optimizer says why not. The fused kernel takes a
parameter only as it is (C-contiguous arrays of one float32/float64 dtype, writeable); any other
runs ``update``, and with ``fused=True`` a :class:`FusedFallbackWarning` names it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minidl
from minidl import SGD, Adagrad, Adam, AdamW, Dense, Parameter, RMSprop, Sequential, Tanh
from minidl.optim import fused
from minidl.optim.fused import FusedFallbackWarning

needs_numba = pytest.mark.skipif(not fused.HAVE_NUMBA, reason="needs numba")
LOOP = {"foreach": False, "fused": False}
CASES = [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (Adagrad, {"lr": 0.1, "weight_decay": 0.1}),
    (RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
]
IDS = [cls.__name__ for cls, _ in CASES]


def state_arrays(opt):
    return {(i, k): v for i, p in enumerate(opt.params) for k, v in opt.state.get(p, {}).items()
            if isinstance(v, np.ndarray)}


def assert_same(a, b):
    """Two snapshots (parameters, state dict) equal bit for bit, dtypes included."""
    (pa, sa), (pb, sb) = a, b
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        assert x.dtype == y.dtype, i
        np.testing.assert_array_equal(x, y, err_msg=f"parameter {i}")
    assert sa["step_count"] == sb["step_count"] and sa["state"].keys() == sb["state"].keys()
    for i, st in sa["state"].items():
        assert st.keys() == sb["state"][i].keys()
        for k, v in st.items():
            w = sb["state"][i][k]
            if isinstance(v, np.ndarray):
                assert v.dtype == w.dtype, (i, k)
            np.testing.assert_array_equal(v, w, err_msg=f"state {i} {k}")


def run_both(scenario, cls, kw, **default_flags):
    """``scenario(cls, kw, flags)`` -> snapshot, on the loop and on the default path."""
    return scenario(cls, kw, LOOP), scenario(cls, kw, default_flags)


def train(model, opt, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, model.in_features if hasattr(model, "in_features") else 4))
    loss = minidl.MSE()
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        loss(out, np.zeros_like(out))
        model.backward(loss.backward())
        opt.step()


# ------------------------------------------------------------------ the arrays are never replaced
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_default_step_updates_the_parameters_arrays_in_place(cls, kw):
    model = Sequential(Dense(4, 5, rng=0), Tanh(), Dense(5, 2, rng=1))
    opt = cls(model.parameters(), **kw)
    assert opt.implementation == ("fused" if fused.HAVE_NUMBA else "loop")
    layer = model[0]
    W, G = layer.weight.data, layer.weight.grad
    before = W.copy()
    train(model, opt, steps=1)
    arrays = state_arrays(opt)
    train(model, opt, steps=2)
    assert W is layer.weight.data and G is layer.weight.grad
    assert not np.array_equal(W, before)  # W itself was updated
    assert all(opt.state[opt.params[i]][k] is v for (i, k), v in arrays.items())
    for p, q in zip(model.parameters(), list(model.parameters())[1:], strict=False):
        assert not np.shares_memory(p.data, q.data)  # no buffer behind them


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_gradient_assigned_each_step_and_two_optimizers_over_one_model(cls, kw):
    """A layer that assigns ``p.grad = ...`` (a new array each step) and a second optimizer
    stepping the same parameters: each step updates the same arrays, as the loop does."""

    def scenario(cls, kw, flags):
        params = [Parameter(np.random.default_rng(0).standard_normal(s)) for s in [(3, 4), (4,)]]
        data = [p.data for p in params]
        first, second = cls(params, **kw, **flags), SGD(params, lr=0.05, momentum=0.9, **flags)
        rng = np.random.default_rng(1)
        for _ in range(4):
            for opt in (first, second):
                for p in params:
                    p.grad = rng.standard_normal(p.shape)  # a new array, as a layer may assign
                opt.step()
        assert all(p.data is d for p, d in zip(params, data, strict=True))
        return [p.data.copy() for p in params], first.state_dict()

    assert_same(*run_both(scenario, cls, kw))


# ------------------------------------------------------------------ hostile parameters
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_tied_weights_stay_tied(cls, kw):
    """``dec.weight.data = enc.weight.data.T``: a transposed view, not C-contiguous, so the fused
    kernel cannot ravel it without a copy; it runs update(), and the weights stay tied."""

    def scenario(cls, kw, flags):
        enc, dec = Dense(4, 3, bias=False, rng=0), Dense(3, 4, bias=False, rng=1)
        dec.weight.data = enc.weight.data.T
        model = Sequential(enc, Tanh(), dec)
        opt = cls(model.parameters(), **kw, **flags)
        start = enc.weight.data.copy()
        train(model, opt, steps=3)
        assert np.shares_memory(dec.weight.data, enc.weight.data)
        np.testing.assert_array_equal(dec.weight.data, enc.weight.data.T)
        assert not np.array_equal(enc.weight.data, start)
        return [p.data.copy() for p in model.parameters()], opt.state_dict()

    assert_same(*run_both(scenario, cls, kw))


@needs_numba
def test_fused_true_says_which_parameter_runs_update_and_why_once():
    enc, dec = Dense(4, 3, bias=False, rng=0), Dense(3, 4, bias=False, rng=1)
    dec.weight.data = enc.weight.data.T
    model = Sequential(enc, Tanh(), dec)
    opt = Adam(model.parameters(), lr=0.01, fused=True)
    with pytest.warns(FusedFallbackWarning, match=r"parameter 1 \(Parameter\(shape=\(3, 4\).*"
                                                   r"its data is not C-contiguous"):
        train(model, opt, steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(model, opt, steps=2)  # said once
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default path says nothing: the paths agree
        train(model, Adam(model.parameters(), lr=0.01), steps=2)


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_strided_view_keeps_updating_its_base_array(cls, kw):
    def scenario(cls, kw, flags):
        base = np.random.default_rng(0).standard_normal((6, 8))
        untouched = base[:, 1::2].copy()
        p = Parameter(np.zeros((6, 4)))
        p.data = base[:, ::2]
        q = Parameter(np.ones(3))
        opt = cls([p, q], **kw, **flags)
        rng = np.random.default_rng(1)
        for _ in range(3):
            p.grad[...] = rng.standard_normal(p.shape)
            q.grad[...] = rng.standard_normal(q.shape)
            opt.step()
        assert p.data.base is base or np.shares_memory(p.data, base)
        np.testing.assert_array_equal(base[:, ::2], p.data)
        np.testing.assert_array_equal(base[:, 1::2], untouched)
        return [base.copy(), q.data.copy()], opt.state_dict()

    assert_same(*run_both(scenario, cls, kw))


@pytest.mark.parametrize("when", ["from the start", "after two steps"])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_read_only_parameter_raises_as_the_loop_does(cls, kw, when):
    def scenario(cls, kw, flags):
        params = [Parameter(np.ones((2, 3))), Parameter(np.ones(3))]
        opt = cls(params, **kw, **flags)
        steps = 2 if when == "after two steps" else 0
        for _ in range(steps):
            for p in params:
                p.grad[...] = 0.5
            opt.step()
        params[0].data.flags.writeable = False
        frozen = params[0].data.copy()
        with pytest.raises(ValueError, match="read-only") as raised:
            opt.step()
        np.testing.assert_array_equal(params[0].data, frozen)  # never silently trained
        return [p.data.copy() for p in params] + [np.array(str(raised.value))], opt.state_dict()

    assert_same(*run_both(scenario, cls, kw))


@pytest.mark.parametrize("replacement", ["same dtype", "Fortran order", "float32", "a list"])
@pytest.mark.parametrize(("cls", "kw", "key"), [
    (Adam, {"lr": 0.01}, "exp_avg"), (SGD, {"lr": 0.1, "momentum": 0.9}, "momentum_buffer"),
    (RMSprop, {"lr": 0.01, "centered": True}, "grad_avg"), (Adagrad, {"lr": 0.1}, "sum")],
    ids=["Adam", "SGD", "RMSprop", "Adagrad"])
def test_a_state_array_assigned_by_the_user_is_the_one_that_runs(cls, kw, key, replacement):
    """``opt.state[p][key] = ...`` between steps: the next step updates that array (or, if the
    loop cannot, raises as the loop does), and ``state_dict()`` reports it."""

    def scenario(cls, kw, flags):
        p = Parameter(np.random.default_rng(0).standard_normal((3, 4)))
        opt = cls([p], **kw, **flags)
        rng = np.random.default_rng(1)
        p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
        new = {"same dtype": np.full((3, 4), 0.01), "Fortran order": np.full((3, 4), 0.01,
                                                                             order="F"),
               "float32": np.full((3, 4), 0.01, np.float32),
               "a list": [[0.01] * 4] * 3}[replacement]
        opt.state[p][key] = new
        error = ""
        for _ in range(2):
            p.grad[...] = rng.standard_normal(p.shape)
            try:
                opt.step()
            except TypeError as exc:
                error = str(exc)
        saved = opt.state_dict()
        if replacement != "a list":
            assert opt.state[p][key] is new  # updated in place, not replaced
            assert not np.all(new == np.float32(0.01))
            np.testing.assert_array_equal(saved["state"][0][key], new)
        return [p.data.copy(), np.array(error)], saved

    assert_same(*run_both(scenario, cls, kw))


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_a_float32_gradient_in_a_float64_parameter(cls, kw):
    def scenario(cls, kw, flags):
        params = [Parameter(np.random.default_rng(0).standard_normal((3, 4))),
                  Parameter(np.ones(4))]
        params[0].grad = params[0].grad.astype(np.float32)
        opt = cls(params, **kw, **flags)
        rng = np.random.default_rng(1)
        for _ in range(3):
            for p in params:
                p.grad[...] = rng.standard_normal(p.shape)
            opt.step()
        return [p.data.copy() for p in params], opt.state_dict()

    assert_same(*run_both(scenario, cls, kw))


@pytest.mark.parametrize("when", [0, 2])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_astype_after_building_the_optimizer(cls, kw, when):
    """``model.astype(np.float32)`` after the optimizer was built: before its first step the
    state is created in float32; after it, the float64 state runs the loop's mixed arithmetic,
    on both paths."""

    def scenario(cls, kw, flags):
        model = Sequential(Dense(4, 5, rng=0), Tanh(), Dense(5, 2, rng=1))
        opt = cls(model.parameters(), **kw, **flags)
        train(model, opt, steps=when)
        model.astype(np.float32)
        train(model, opt, steps=3, seed=1)
        states = {v.dtype for st in opt.state.values() for v in st.values()
                  if isinstance(v, np.ndarray)}
        assert states == ({np.dtype(np.float32)} if when == 0 else {np.dtype(np.float64)})
        return [p.data.copy() for p in model.parameters()], opt.state_dict()

    assert_same(*run_both(scenario, cls, kw))


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_float16_and_longdouble_parameters_run_update(cls, kw, dtype):
    """numba has no float16 or longdouble: those parameters run update() on the default path
    (and say so under fused=True), beside float64 ones that run the kernel."""

    def scenario(cls, kw, flags):
        rng = np.random.default_rng(0)
        params = [Parameter(rng.standard_normal((3, 4)), dtype=dtype),
                  Parameter(rng.standard_normal(4))]
        opt = cls(params, **{**kw, "lr": 0.01}, **flags)
        for _ in range(3):
            for p in params:
                p.grad[...] = rng.standard_normal(p.shape)
            opt.step()
        assert params[0].dtype == dtype
        return [p.data.copy() for p in params], opt.state_dict()

    assert_same(*run_both(scenario, cls, kw))
    if fused.HAVE_NUMBA and np.dtype(dtype) not in fused.KERNEL_DTYPES:
        with pytest.warns(FusedFallbackWarning, match=f"its dtype is {np.dtype(dtype)}"):
            scenario(cls, kw, {"fused": True})


@needs_numba
def test_a_state_array_deleted_raises_as_the_loop_does():
    """A state array the kernel needs, removed: the kernel never reads past an array it lacks;
    update() raises the loop's KeyError."""
    for flags in (LOOP, {}):
        p = Parameter(np.ones(5))
        opt = SGD([p], lr=0.1, momentum=0.9, **flags)
        p.grad[...] = 1.0
        opt.step()
        del opt.state[p]["momentum_buffer"]
        with pytest.raises(KeyError, match="momentum_buffer"):
            opt.step()
