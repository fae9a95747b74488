"""Every exported differentiable class passes gradcheck over random shapes, values and seeds.

``CASES`` maps each class to a builder ``(data) -> (object, inputs)`` that draws a random
instance with hypothesis. ``test_every_exported_class_has_a_gradcheck_case`` fails as soon as a
new Layer, Activation or Loss is exported without a case here.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl import (
    MSE,
    Activation,
    AvgPool2D,
    BatchNorm1d,
    BinaryCrossEntropy,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GradcheckError,
    Identity,
    Layer,
    LeakyReLU,
    Loss,
    MaxPool2D,
    RecursiveMLP,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    gradcheck,
)

from .strategies import (
    away_from_zero,
    batch_sizes,
    distinct,
    normal,
    seeds,
    spread_columns,
    widths,
)


def _dense(data, rng):
    n, d_in, d_out = data.draw(batch_sizes), data.draw(widths), data.draw(widths)
    bias = data.draw(st.booleans())
    init = data.draw(st.sampled_from(sorted(minidl.init.INITIALIZERS)))
    return Dense(d_in, d_out, bias=bias, init=init, rng=rng), normal(rng, (n, d_in))


def _dropout(data, rng):
    n, d = data.draw(batch_sizes), data.draw(widths)
    layer = Dropout(data.draw(st.floats(0.0, 0.9)), rng=rng)
    layer.train(data.draw(st.booleans()))
    return layer, normal(rng, (n, d))


def _batchnorm(data, rng):
    d = data.draw(widths)
    layer = BatchNorm1d(d, affine=data.draw(st.booleans()), momentum=data.draw(st.floats(0, 1)))
    if layer.affine:
        layer.weight.data[...] = rng.uniform(0.5, 2.0, d)
        layer.bias.data[...] = rng.standard_normal(d)
    if data.draw(st.booleans()):  # training mode: batch statistics, needs n >= 2
        return layer, spread_columns(rng, data.draw(st.integers(2, 8)), d)
    layer.running_mean[...] = rng.standard_normal(d)
    layer.running_var[...] = rng.uniform(0.5, 2.0, d)
    layer.eval()
    return layer, normal(rng, (data.draw(batch_sizes), d))


def _flatten(data, rng):
    shape = (data.draw(batch_sizes), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    return Flatten(), normal(rng, shape)


def _conv2d(data, rng):
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    padding = (data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1)))
    c_in, c_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    h, w = kh + data.draw(st.integers(0, 3)), kw + data.draw(st.integers(0, 3))
    layer = Conv2D(c_in, c_out, (kh, kw), stride=stride, padding=padding,
                   bias=data.draw(st.booleans()), rng=rng)
    return layer, normal(rng, (data.draw(st.integers(1, 3)), c_in, h, w))


def _pool(cls):
    def build(data, rng):
        kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
        stride = data.draw(st.sampled_from([None, 1, 2]))
        shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)),
                 kernel[0] + data.draw(st.integers(0, 3)), kernel[1] + data.draw(st.integers(0, 3)))
        return cls(kernel, stride=stride), distinct(rng, shape)
    return build


def _global_avg_pool(data, rng):
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)),
             data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    return GlobalAvgPool2D(), normal(rng, shape)


def _smooth(cls):
    def build(data, rng):
        return cls(), normal(rng, (data.draw(batch_sizes), data.draw(widths)), scale=2.0)
    return build


def _relu(data, rng):
    return ReLU(), away_from_zero(rng, (data.draw(batch_sizes), data.draw(widths)))


def _leaky_relu(data, rng):
    layer = LeakyReLU(data.draw(st.floats(0.0, 0.5)))
    return layer, away_from_zero(rng, (data.draw(batch_sizes), data.draw(widths)))


def _sequential(data, rng):
    d_in, h, d_out = data.draw(widths), data.draw(widths), data.draw(widths)
    n = data.draw(st.integers(2, 8))
    layers = [Dense(d_in, h, rng=rng)]
    if data.draw(st.booleans()):
        layers.append(BatchNorm1d(h))
    layers.append(data.draw(st.sampled_from([Tanh, Sigmoid, Identity]))())
    if data.draw(st.booleans()):
        layers.append(Dropout(0.3, rng=rng))
    layers.append(Dense(h, d_out, rng=rng))
    model = Sequential(*layers)
    if data.draw(st.booleans()):
        model.eval()
    return model, spread_columns(rng, n, d_in)


def _recursive_mlp(data, rng):
    sizes = data.draw(st.lists(widths, min_size=2, max_size=5))
    model = RecursiveMLP(
        sizes,
        activation=data.draw(st.sampled_from([Tanh, Sigmoid, Identity])),
        bias=data.draw(st.booleans()),
        output_activation=data.draw(st.sampled_from(["same", None, Sigmoid])),
        rng=rng,
    )
    return model, normal(rng, (data.draw(batch_sizes), sizes[0]))


def _mse(data, rng):
    shape = (data.draw(batch_sizes), data.draw(widths))
    return MSE(), (normal(rng, shape), normal(rng, shape))


def _bce(data, rng):
    shape = (data.draw(batch_sizes), data.draw(widths))
    target = rng.integers(0, 2, shape)
    if data.draw(st.booleans()):
        return BinaryCrossEntropy(from_logits=True), (normal(rng, shape, 3.0), target)
    return BinaryCrossEntropy(), (rng.uniform(0.05, 0.95, shape), target)


def _mse_loss(data, rng):
    shape = (data.draw(batch_sizes), data.draw(widths))
    reduction = data.draw(st.sampled_from(["mean", "sum"]))
    return minidl.MSELoss(reduction=reduction), (normal(rng, shape), normal(rng, shape))


def _bce_loss(data, rng):
    shape = (data.draw(batch_sizes), data.draw(widths))
    reduction = data.draw(st.sampled_from(["mean", "sum"]))
    return (minidl.BCELoss(reduction=reduction),
            (rng.uniform(0.05, 0.95, shape), rng.integers(0, 2, shape)))


def _softmax_ce(data, rng):
    n, c = data.draw(batch_sizes), data.draw(st.integers(2, 16))
    labels = rng.integers(0, c, n)
    target = labels if data.draw(st.booleans()) else np.eye(c)[labels]
    return SoftmaxCrossEntropy(), (normal(rng, (n, c), 3.0), target)


CASES = {
    Dense: _dense,
    Dropout: _dropout,
    BatchNorm1d: _batchnorm,
    Flatten: _flatten,
    Conv2D: _conv2d,
    MaxPool2D: _pool(MaxPool2D),
    AvgPool2D: _pool(AvgPool2D),
    GlobalAvgPool2D: _global_avg_pool,
    Tanh: _smooth(Tanh),
    Sigmoid: _smooth(Sigmoid),
    Identity: _smooth(Identity),
    Softmax: _smooth(Softmax),
    ReLU: _relu,
    LeakyReLU: _leaky_relu,
    Sequential: _sequential,
    RecursiveMLP: _recursive_mlp,
    MSE: _mse,
    BinaryCrossEntropy: _bce,
    minidl.MSELoss: _mse_loss,
    minidl.BCELoss: _bce_loss,
    SoftmaxCrossEntropy: _softmax_ce,
}


def exported_differentiable_classes():
    names = set(minidl.__all__)
    for module in (minidl.layers, minidl.activations, minidl.losses, minidl.containers):
        names |= set(getattr(module, "__all__", ()))
    found = set()
    for name in names:
        obj = getattr(minidl, name, None)
        if inspect.isclass(obj) and issubclass(obj, (Layer, Loss)):
            found.add(obj)
    return found - {Layer, Activation, Loss}


def test_every_exported_class_has_a_gradcheck_case():
    missing = {cls.__name__ for cls in exported_differentiable_classes()} - {
        cls.__name__ for cls in CASES
    }
    assert not missing, f"exported classes without a gradcheck case: {sorted(missing)}"


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
@given(data=st.data(), seed=seeds)
def test_gradcheck_full(cls, data, seed):
    obj, inputs = CASES[cls](data, np.random.default_rng(seed))
    assert gradcheck(obj, inputs)


@pytest.mark.parametrize("cls", [Dense, Sequential, RecursiveMLP, BatchNorm1d, SoftmaxCrossEntropy,
                                 Conv2D],
                         ids=lambda c: c.__name__)
@given(data=st.data(), seed=seeds)
def test_gradcheck_random_directions(cls, data, seed):
    obj, inputs = CASES[cls](data, np.random.default_rng(seed))
    assert gradcheck(obj, inputs, mode="random", n_directions=2)


def test_gradcheck_leaves_the_checked_object_untouched():
    layer = Sequential(Dense(3, 4, rng=0), BatchNorm1d(4), Dropout(0.5, rng=1))
    before = layer.state_dict()
    rng_before = layer.rng_state()
    gradcheck(layer, spread_columns(np.random.default_rng(2), 5, 3))
    after = layer.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert layer.rng_state() == rng_before


# ---------------------------------------------------------------- planted bugs are caught
class _WrongTanh(Tanh):
    def vjp(self, x, y, grad_out):
        return grad_out * (1 - y)  # should be 1 - y**2


class _WrongBiasDense(Dense):
    def backward(self, grad_out):
        dx = super().backward(grad_out)
        self.bias.grad *= 2  # planted: bias gradient doubled
        return dx


@pytest.mark.parametrize("mode", ["full", "random"])
def test_gradcheck_catches_a_wrong_input_gradient(mode):
    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(GradcheckError, match=r"the input.*analytic .* numeric .* relative error"):
        gradcheck(_WrongTanh(), x, mode=mode)


def test_gradcheck_names_the_wrong_parameter_and_index():
    x = np.random.default_rng(0).standard_normal((4, 3))
    model = Sequential(Dense(3, 2, rng=0), _WrongBiasDense(2, 2, rng=1))
    with pytest.raises(GradcheckError, match=r"parameter '1\.bias' at index \(\d,\)"):
        gradcheck(model, x)


def test_gradcheck_catches_a_layer_whose_skipped_input_gradient_changes_its_weights():
    class SkipsTooMuch(Dense):
        def backward(self, grad_out):
            out = super().backward(grad_out)
            if not self.needs_input_grad:
                self.weight.grad[0, 0] += 1.0  # a planted bug on fit's path only
            return out

    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(GradcheckError, match=r"input_grad=False.*parameter 'weight'"):
        gradcheck(SkipsTooMuch(3, 2, rng=0), x)


def test_gradcheck_detects_the_half_mse_convention():
    """MSE(half_grad=True) reports the MSE but returns half its gradient, on purpose."""
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((5, 1)), rng.standard_normal((5, 1))
    with pytest.raises(GradcheckError, match="pred"):
        gradcheck(MSE(half_grad=True), (pred, target))


def test_gradcheck_rejects_other_objects():
    with pytest.raises(TypeError, match="Layer or a Loss"):
        gradcheck(object(), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="mode"):
        gradcheck(Tanh(), np.zeros((1, 1)), mode="fast")


@pytest.mark.parametrize("mode", ["full", "random"])
def test_gradcheck_fails_on_a_nan_gradient(mode):
    """gradcheck is the oracle of most tests: a NaN in the analytic gradient must fail it (a
    comparison written as ``not (err > tol)`` would let NaN through)."""
    class NanGrad(minidl.Tanh):
        def vjp(self, x, y, grad_out):
            g = super().vjp(x, y, grad_out)
            g.flat[1] = np.nan
            return g

    with pytest.raises(minidl.GradcheckError):
        minidl.gradcheck(NanGrad(), np.random.default_rng(0).standard_normal((3, 4)), mode=mode)


def test_gradcheck_input_grad_false_check_is_bit_equality():
    """Issue 19 (untested promise): the input_grad=False path must set the very same
    parameter gradients, bit for bit: a difference of one ulp, far inside any tolerance,
    fails."""
    class OneUlpOff(Dense):
        def backward(self, grad_out):
            out = super().backward(grad_out)
            if not self.needs_input_grad:
                w = self.weight.grad
                w[0, 0] = np.nextafter(w[0, 0], np.inf)  # the smallest possible change
            return out

    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(GradcheckError, match=r"input_grad=False\) set a different gradient for "
                                             r"parameter 'weight' than backprop\(grad_out\) "
                                             r"\(max difference [0-9.e-]+\)"):
        gradcheck(OneUlpOff(3, 2, rng=0), x, atol=1.0, rtol=1.0)
