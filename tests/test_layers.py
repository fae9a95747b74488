"""The Layer contract: parameter order, gradient semantics, modes, state dicts, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import (
    Adam,
    BackwardBeforeForward,
    BatchNorm1d,
    Dense,
    Dropout,
    Flatten,
    Layer,
    Parameter,
    ReLU,
    Sequential,
    ShapeError,
    Softmax,
    StateDictError,
    Tanh,
)
from minidl.containers import build_layer, layer_config

ALL_LAYERS = [
    lambda: Dense(3, 2, rng=0),
    lambda: Dropout(0.5, rng=0),
    lambda: BatchNorm1d(3),
    lambda: Flatten(),
    lambda: Tanh(),
    lambda: ReLU(),
    lambda: minidl.LeakyReLU(0.1),
    lambda: minidl.Sigmoid(),
    lambda: Softmax(),
    lambda: minidl.Identity(),
    lambda: Sequential(Dense(3, 2, rng=0), Tanh()),
    lambda: minidl.RecursiveMLP([3, 4, 2], rng=0),
]


# ---------------------------------------------------------------- parameters
def test_dense_parameters_are_weight_then_bias():
    layer = Dense(4, 3, rng=0)
    names = [(n, p.shape) for n, p in layer.named_parameters()]
    assert names == [("weight", (4, 3)), ("bias", (3,))]
    assert [n for n, _ in Dense(4, 3, bias=False, rng=0).named_parameters()] == ["weight"]


def test_batchnorm_parameters_are_gamma_then_beta_and_buffers_are_separate():
    bn = BatchNorm1d(5)
    assert [(n, p.shape) for n, p in bn.named_parameters()] == [("weight", (5,)), ("bias", (5,))]
    assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    assert list(BatchNorm1d(5, affine=False).parameters()) == []


def test_parameters_walk_containers_in_forward_order():
    model = Sequential(Dense(2, 3, rng=0), Tanh(), Sequential(Dense(3, 4, rng=1), BatchNorm1d(4)))
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "2.0.weight", "2.0.bias", "2.1.weight", "2.1.bias",
    ]
    assert model.num_parameters() == 2 * 3 + 3 + 3 * 4 + 4 + 4 + 4


def test_sharing_a_layer_or_a_parameter_is_refused_with_both_places_named():
    a = Dense(3, 3, rng=0)
    with pytest.raises(ValueError, match=r"Dense\(in_features=3.*appears twice in the model, at "
                                         r"'0' and '2'.*use two layers"):
        Sequential(a, Tanh(), a)
    first, second = Dense(3, 3, rng=0), Dense(3, 3, rng=1)
    second.weight = first.weight  # a tied weight would keep the gradient of one use only
    model = Sequential(first, Tanh(), second)
    with pytest.raises(ValueError, match=r"shared by '0.weight' and '2.weight'.*cannot be tied"):
        list(model.parameters())
    with pytest.raises(ValueError, match="shared by"):
        Adam(model.parameters())


def test_reassigning_a_parameter_keeps_its_place_in_the_order():
    layer = Dense(3, 2, rng=0)
    layer.weight = Parameter(np.zeros((3, 2)))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert np.all(layer.weight.data == 0)


def test_parameter_keeps_grad_of_same_shape_and_dtype():
    p = Parameter(np.ones((2, 3), dtype=np.float32))
    assert p.grad.shape == (2, 3) and p.grad.dtype == np.float32
    with pytest.raises(ValueError, match="floating-point"):
        Parameter(np.ones(3, dtype=int))


# ---------------------------------------------------------------- gradient semantics
def test_backward_sets_gradients_it_does_not_accumulate():
    rng = np.random.default_rng(0)
    model = Sequential(Dense(3, 4, rng=1), Tanh(), Dense(4, 2, rng=2))
    x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    model.forward(x)
    dx1 = model.backward(g)
    grads1 = [p.grad.copy() for p in model.parameters()]
    dx2 = model.backward(g)  # a second call with the same grad_out: same gradients, not doubled
    assert np.array_equal(dx1, dx2)
    for before, p in zip(grads1, model.parameters(), strict=True):
        assert np.array_equal(before, p.grad)
    model.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_backward_writes_into_the_preallocated_grad_arrays():
    layer = Dense(3, 2, rng=0)
    grad_w, grad_b = layer.weight.grad, layer.bias.grad
    layer.forward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))
    assert layer.weight.grad is grad_w and layer.bias.grad is grad_b
    assert np.allclose(grad_b, 4.0)


def test_dense_backward_matches_the_formulas():
    rng = np.random.default_rng(3)
    layer = Dense(3, 2, rng=0)
    x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    y = layer.forward(x)
    assert np.allclose(y, x @ layer.weight.data + layer.bias.data)
    dx = layer.backward(g)
    assert np.allclose(layer.weight.grad, x.T @ g)
    assert np.allclose(layer.bias.grad, g.sum(0))
    assert np.allclose(dx, g @ layer.weight.data.T)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("make", ALL_LAYERS)
def test_backward_before_forward_is_a_clear_error(make):
    layer = make()
    with pytest.raises(BackwardBeforeForward, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((2, 2)))


def test_dense_wrong_input_width_names_layer_and_shapes():
    model = Sequential(Dense(4, 3, rng=0), Tanh(), Dense(3, 2, rng=1))
    with pytest.raises(ShapeError, match=r"Dense\(in_features=4.*expected input of shape \(N, 4\), "
                                         r"got \(5, 3\)"):
        model(np.zeros((5, 3)))
    model.forward(np.zeros((5, 4)))
    with pytest.raises(ShapeError, match=r"at '2': backward\(\) got grad_out of shape \(5, 3\)"):
        model.backward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="expected input of shape"):  # ShapeError is a ValueError
        Dense(2, 2, rng=0)(np.zeros(2))


def test_non_numeric_input_is_refused():
    with pytest.raises(ValueError, match="expected a numeric array, got dtype <U1"):
        Tanh()(np.array(["a", "b"]))


def test_layers_need_an_explicit_rng():
    with pytest.raises(ValueError, match="Dense needs rng=.*never draws from global random state"):
        Dense(2, 2)
    with pytest.raises(ValueError, match="Dropout needs rng="):
        Dropout(0.5)
    assert np.array_equal(Dense(3, 2, rng=7).weight.data, Dense(3, 2, rng=7).weight.data)
    assert not np.array_equal(Dense(3, 2, rng=7).weight.data, Dense(3, 2, rng=8).weight.data)


@pytest.mark.parametrize("kwargs, match", [
    ({"in_features": 0, "out_features": 2}, "in_features must be a positive int"),
    ({"in_features": 2, "out_features": 2.5}, "out_features must be a positive int"),
    ({"in_features": 2, "out_features": 2, "init": "nope"}, "unknown initialiser 'nope'"),
])
def test_dense_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dense(rng=0, **kwargs)


def test_layer_subclass_must_call_super_init():
    class Broken(Layer):
        def __init__(self):
            self.w = 1

    with pytest.raises(RuntimeError, match=r"must call super\(\).__init__\(\)"):
        Broken()


# ---------------------------------------------------------------- modes
def test_train_and_eval_recurse():
    model = Sequential(Dense(2, 2, rng=0), Sequential(Dropout(0.5, rng=0), BatchNorm1d(2)))
    model.eval()
    assert not any(layer.training for _, layer in model.named_layers())
    model.train()
    assert all(layer.training for _, layer in model.named_layers())


def test_dropout_is_inverted_seeded_and_identity_in_eval():
    x = np.ones((2000, 50))
    a, b = Dropout(0.3, rng=5), Dropout(0.3, rng=5)
    ya, yb = a(x), b(x)
    assert np.array_equal(ya, yb)
    assert set(np.unique(ya)) <= {0.0, 1 / 0.7}
    assert abs(np.mean(ya == 0) - 0.3) < 0.01
    assert abs(ya.mean() - 1.0) < 0.02
    grad = a.backward(np.ones_like(x))
    assert np.array_equal(grad, ya)  # same mask and scale in backward
    a.eval()
    assert np.array_equal(a(x), x)
    assert np.all(Dropout(1.0, rng=0)(x) == 0)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        Dropout(1.5, rng=0)


def test_batchnorm_follows_torch_semantics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3)) * 2 + 1
    bn = BatchNorm1d(3, momentum=0.1)
    y = bn(x)
    mean, var = x.mean(0), x.var(0)
    assert np.allclose(y, (x - mean) / np.sqrt(var + 1e-5))
    assert np.allclose(bn.running_mean, 0.1 * mean)
    assert np.allclose(bn.running_var, 0.9 + 0.1 * x.var(0, ddof=1))  # unbiased for running stats
    bn.eval()
    y_eval = bn(x)
    assert np.allclose(y_eval, (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5))
    bn.train()
    with pytest.raises(ValueError, match="more than 1 sample per batch"):
        bn(x[:1])
    bn.eval()
    assert bn(x[:1]).shape == (1, 3)  # a single sample is fine in evaluation


def test_flatten_round_trips_shapes():
    x = np.arange(24.0).reshape(2, 3, 4)
    f = Flatten()
    assert f(x).shape == (2, 12)
    assert f.backward(np.ones((2, 12))).shape == (2, 3, 4)


# ---------------------------------------------------------------- state dicts
def _model():
    return Sequential(Dense(3, 4, rng=0), BatchNorm1d(4), ReLU(), Dense(4, 2, rng=1))


def test_state_dict_round_trip_and_in_place_load():
    src, dst = _model(), Sequential(Dense(3, 4, rng=9), BatchNorm1d(4), ReLU(), Dense(4, 2, rng=9))
    src(np.random.default_rng(0).standard_normal((5, 3)))  # move the running statistics
    state = src.state_dict()
    assert sorted(state) == sorted([
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "3.weight", "3.bias",
    ])
    weight_array = dst[0].weight.data
    dst.load_state_dict(state)
    assert dst[0].weight.data is weight_array  # loaded in place: views stay valid
    for key, value in dst.state_dict().items():
        assert np.array_equal(value, state[key])
    state["0.weight"][0, 0] += 1  # state_dict returns copies
    assert not np.array_equal(src[0].weight.data, state["0.weight"])


def test_load_state_dict_is_strict_and_lists_every_problem():
    model = _model()
    state = model.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    state["3.weight"] = np.zeros((2, 2))
    before = model.state_dict()
    state["1.running_mean"] = np.array(["a"] * 4)
    with pytest.raises(StateDictError, match=r"missing keys: \['0.bias'\]; unexpected keys: "
                                             r"\['extra'\]; '3.weight': expected shape \(4, 2\), "
                                             r"got \(2, 2\); '1.running_mean': expected numbers, "
                                             r"got dtype <U1"):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing changed


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_every_layer_rebuilds_from_its_config(make):
    layer = make()
    clone = build_layer(layer_config(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    clone.load_state_dict(layer.state_dict())
    x = np.random.default_rng(1).standard_normal((4, 3))
    layer.eval()
    clone.eval()
    assert np.array_equal(clone(x), layer(x))


def test_unknown_layer_class_in_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown layer class 'Conv9D'"):
        build_layer({"class": "Conv9D", "config": {}})


# ---------------------------------------------------------------- dtypes
def test_float32_end_to_end():
    model = _model().astype(np.float32)
    opt = Adam(model.parameters(), lr=1e-2)
    loss = minidl.MSE()
    x = np.random.default_rng(0).standard_normal((8, 3))  # float64 input is cast, not upcasting
    for _ in range(3):
        y = model(x)
        assert y.dtype == np.float32
        loss(y, np.zeros((8, 2)))
        g = model.backward(loss.backward())
        assert g.dtype == np.float32
        opt.step()
    for p in model.parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
    for st in opt.state.values():
        assert all(v.dtype == np.float32 for v in st.values() if isinstance(v, np.ndarray))
    assert all(b.dtype == np.float32 for _, b in model.named_buffers())
    with pytest.raises(ValueError, match="dtype must be floating"):
        model.astype(np.int32)


def test_backward_keeps_the_layer_dtype_whatever_the_grad_dtype():
    x = np.ones((3, 4), dtype=np.float32)
    g = np.ones((3, 4))  # float64
    for layer in (Tanh(), Dropout(0.5, rng=0), minidl.Identity()):
        layer(x)
        assert layer.backward(g).dtype == np.float32
    f = Flatten()
    f(np.ones((3, 2, 2), dtype=np.float32))
    assert f.backward(g).dtype == np.float32


def test_batchnorm_argument_errors():
    with pytest.raises(ValueError, match="BatchNorm1d: momentum must be a finite number, got None"):
        BatchNorm1d(3, momentum=None)
    with pytest.raises(ValueError, match=r"BatchNorm1d: momentum must lie in \[0.0, 1.0\]"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="BatchNorm1d: eps must be a finite number, got '1e-5'"):
        BatchNorm1d(3, eps="1e-5")
    with pytest.raises(ValueError, match="BatchNorm1d: num_features must be a positive int"):
        BatchNorm1d(True)


def test_a_user_class_never_shadows_a_built_in_of_the_same_name():
    from minidl.layer import LAYER_REGISTRY, registered_name

    model = Sequential(Dense(2, 2, rng=0), Tanh())
    config = layer_config(model)

    def define_users_tanh():
        class Tanh(minidl.Activation):  # the user's own "Tanh", a ReLU in disguise
            def function(self, x):
                return np.maximum(x, 0)
        return Tanh

    users_tanh = define_users_tanh()
    try:
        assert registered_name(users_tanh).startswith(f"{__name__}.") and \
            registered_name(users_tanh).endswith(".Tanh")
        assert LAYER_REGISTRY["Tanh"] is Tanh
        assert type(build_layer(config)[1]) is Tanh
        assert type(build_layer(layer_config(users_tanh()))) is users_tanh
    finally:
        del LAYER_REGISTRY[registered_name(users_tanh)]


# ---------------------------------------------------------------------- hostile arguments
@pytest.mark.parametrize("p", [True, False, np.bool_(True), float("nan"), "0.3", None])
def test_dropout_refuses_bools_nan_and_non_numbers(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got"):
        Dropout(p, rng=0)


def test_dropout_accepts_numpy_floats():
    assert Dropout(np.float32(0.3), rng=0).p == pytest.approx(0.3)
    assert Dropout(np.float64(0.5), rng=0).p == 0.5


@pytest.mark.parametrize("slope", [float("nan"), float("inf"), True, "0.1"])
def test_leaky_relu_refuses_non_finite_or_non_numeric_slopes(slope):
    with pytest.raises(ValueError, match=r"LeakyReLU: negative_slope must be a finite number"):
        minidl.LeakyReLU(slope)


@pytest.mark.parametrize("make", [lambda: Dense(2, 3, rng=0), lambda: Tanh(), lambda: ReLU(),
                                  lambda: BatchNorm1d(3), lambda: Dropout(0.5, rng=0)])
def test_backward_refuses_a_complex_gradient(make):
    layer = make()
    out = layer.forward(np.ones((2, 2 if isinstance(layer, Dense) else 3)))
    with pytest.raises(ValueError, match=r"backward\(\) got grad_out of dtype complex128; it "
                                         r"must be real"):
        layer.backward(out * (1 + 1j))


def test_relu_gradient_at_exactly_zero_is_zero():
    """The documented subgradient: ReLU'(0) = 0 (as torch), at the kink itself."""
    relu = ReLU()
    relu.forward(np.array([[-1.0, 0.0, 1.0], [0.0, -0.0, 2.0]]))
    grad = relu.backward(np.ones((2, 3)))
    assert np.array_equal(grad, [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])


def test_batchnorm_non_finite_batch_updates_the_finite_features_with_the_unbiased_variance():
    """Issue 19 (untested promise): in a batch where one feature is not finite, that feature
    keeps its running statistics and the others are updated as in a finite batch, with the
    *unbiased* variance (var * N / (N - 1))."""
    layer = BatchNorm1d(3, momentum=0.25)
    x = np.array([[1.0, 2.0, np.inf], [4.0, -1.0, 0.0], [0.5, 0.0, 1.0], [2.5, 3.0, 2.0]])
    with np.errstate(invalid="ignore"):
        layer(x)
    n, m = len(x), 0.25
    for j in (0, 1):
        col = x[:, j]
        assert layer.running_mean[j] == pytest.approx((1 - m) * 0.0 + m * col.mean(), rel=1e-15)
        assert layer.running_var[j] == pytest.approx((1 - m) * 1.0 + m * col.var() * n / (n - 1),
                                                     rel=1e-15)
        assert layer.running_var[j] != pytest.approx((1 - m) + m * col.var(), rel=1e-6)
    assert layer.running_mean[2] == 0.0 and layer.running_var[2] == 1.0  # kept


def test_an_empty_batch_flattens_and_an_empty_softmax_axis_is_named():
    """Found by the replay of issue 19: Flatten's reshape(-1) failed on an empty batch, and
    softmax over an axis of size 0 (or an axis the input lacks) raised inside NumPy."""
    from minidl import Flatten, Softmax

    assert Flatten()(np.zeros((0, 3, 4, 4))).shape == (0, 48)
    with pytest.raises(ShapeError, match=r"Softmax\(axis=-1\): input of shape \(2, 0\) has no "
                                         r"values along axis -1"):
        Softmax()(np.zeros((2, 0)))
    with pytest.raises(ShapeError, match=r"Softmax\(axis=3\): input of shape \(2, 3\) has no "
                                         r"axis 3"):
        Softmax(axis=3)(np.zeros((2, 3)))


def test_torch_names_conv2d_maxpool2d_modules_and_named_modules():
    assert minidl.Conv2d is minidl.Conv2D and minidl.MaxPool2d is minidl.MaxPool2D
    assert minidl.AvgPool2d is minidl.AvgPool2D
    from minidl.layers import AvgPool2d, Conv2d, MaxPool2d

    assert (Conv2d, MaxPool2d, AvgPool2d) == (minidl.Conv2D, minidl.MaxPool2D, minidl.AvgPool2D)
    inner = Sequential(Dense(3, 3, rng=0), Tanh())
    model = Sequential(Dense(2, 3, rng=1), ReLU(), inner)
    # torch's order: the model itself first, under "", then depth first in forward order
    assert list(model.named_modules()) == list(model.named_layers())
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "2", "2.0", "2.1"]
    assert list(model.modules()) == [layer for _, layer in model.named_layers()]
    assert list(inner.named_modules(prefix="enc"))[1][0] == "enc.0"


@pytest.mark.parametrize("make_opt", [
    lambda params: minidl.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda params: Adam(params, lr=0.01, weight_decay=0.1, fused=False),
    lambda params: Adam(params, lr=0.01, weight_decay=0.1),  # fused when numba is there
])
def test_a_frozen_layer_does_not_move_in_fit_and_the_rest_trains(make_opt):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    model = Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 3, rng=1))
    assert all(p.requires_grad for p in model.parameters())
    for p in model[0].parameters():
        p.requires_grad = False
    frozen = [p.data.copy() for p in model[0].parameters()]
    trained = [p.data.copy() for p in model[2].parameters()]
    opt = make_opt(model.parameters())
    minidl.fit(model, minidl.CrossEntropyLoss(), opt, x, y, epochs=3, batch_size=16,
               verbose=0)
    first, last = list(model[0].parameters()), list(model[2].parameters())
    assert all(np.array_equal(p.data, f) for p, f in zip(first, frozen, strict=True))
    assert not any(np.array_equal(p.data, t) for p, t in zip(last, trained, strict=True))
    assert all(p not in opt.state for p in model[0].parameters())  # no state, no decay
    # unfrozen, it trains again
    model[0].weight.requires_grad = True
    minidl.fit(model, minidl.CrossEntropyLoss(), opt, x, y, epochs=1, batch_size=16,
               verbose=0)
    assert not np.array_equal(model[0].weight.data, frozen[0])
    assert np.array_equal(model[0].bias.data, frozen[1])


def test_a_frozen_parameter_still_gets_its_gradient_from_backward():
    """requires_grad=False only keeps optimizers off: backward, backprop and gradcheck still
    compute the parameter's gradient (as torch's autograd would not, but minidl has none to
    save), so checking a frozen layer checks the same maths."""
    dense = Dense(3, 2, rng=0)
    x = np.random.default_rng(1).standard_normal((5, 3))
    dense.weight.requires_grad = False
    dense(x)
    dense.backprop(np.ones((5, 2)))
    assert np.allclose(dense.weight.grad, x.T @ np.ones((5, 2)))
    assert not dense.weight.has_grad and dense.bias.has_grad
    minidl.gradcheck(dense, x)
    assert not dense.weight.requires_grad  # gradcheck leaves it as it was
    with pytest.raises(ValueError, match=r"requires_grad must be True or False, got 'no'"):
        dense.weight.requires_grad = "no"
    assert repr(dense.weight) == "Parameter(shape=(3, 2), dtype=float64, requires_grad=False)"
