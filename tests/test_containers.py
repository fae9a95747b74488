"""Sequential and RecursiveMLP: structure, equivalence, and the QA study's two models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import minidl as md
from minidl import (
    MSE,
    Dense,
    Identity,
    LeakyReLU,
    RecursiveMLP,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from minidl.containers import build_layer, layer_config
from minidl.errors import ShapeError


@pytest.mark.parametrize("sizes", [[5, 1], [5, 4, 1], [6, 8, 7, 3], [3, 2, 2, 2, 2, 2, 4]])
@pytest.mark.parametrize("bias", [True, False])
def test_recursive_mlp_gives_the_same_numbers_as_sequential(sizes, bias):
    rng = np.random.default_rng(0)
    rec = RecursiveMLP(sizes, activation=Tanh, bias=bias, init="lecun_normal", rng=42)
    gen = np.random.default_rng(42)
    layers = []
    for d_in, d_out in itertools.pairwise(sizes):
        layers += [Dense(d_in, d_out, bias=bias, init="lecun_normal", rng=gen), Tanh()]
    seq = Sequential(*layers)
    x, g = rng.standard_normal((7, sizes[0])), rng.standard_normal((7, sizes[-1]))
    assert np.array_equal(rec(x), seq(x))
    assert np.array_equal(rec.backward(g), seq.backward(g))
    for p, q in zip(rec.parameters(), seq.parameters(), strict=True):
        assert np.array_equal(p.data, q.data) and np.array_equal(p.grad, q.grad)
    assert rec.depth == len(sizes) - 1


def test_recursive_mlp_is_recursive_and_ordered():
    model = RecursiveMLP([4, 3, 2, 1], rng=0)
    assert [n for n, _ in model.named_parameters()] == [
        "dense.weight", "dense.bias", "rest.dense.weight", "rest.dense.bias",
        "rest.rest.dense.weight", "rest.rest.dense.bias",
    ]
    assert isinstance(model.rest, RecursiveMLP) and isinstance(model.rest.rest, RecursiveMLP)
    assert model.rest.rest.rest is None


def test_the_studys_two_layer_mlp_and_one_layer_model():
    rng = np.random.default_rng(1)
    two_layer = RecursiveMLP([2049, 64, 1], activation=Tanh, bias=False, init="lecun_normal",
                             rng=42)
    one_layer = RecursiveMLP([2049, 1], activation=Tanh, bias=False, init="lecun_normal", rng=42)
    assert [p.shape for p in two_layer.parameters()] == [(2049, 64), (64, 1)]
    assert [p.shape for p in one_layer.parameters()] == [(2049, 1)]
    w1 = two_layer.dense.weight.data
    assert abs(w1.std() - np.sqrt(1 / 2049)) < 0.02 * np.sqrt(1 / 2049)
    x = np.hstack([rng.standard_normal((10, 2048)), np.ones((10, 1))])
    w2 = two_layer.rest.dense.weight.data
    assert np.allclose(two_layer(x), np.tanh(np.tanh(x @ w1) @ w2))
    assert np.allclose(one_layer(x), np.tanh(x @ one_layer.dense.weight.data))


def test_output_activation_options():
    x = np.random.default_rng(0).standard_normal((3, 4)) * 10
    linear = RecursiveMLP([4, 5, 2], activation=ReLU, output_activation=None, rng=0)
    assert linear.rest.act is None and np.abs(linear(x)).max() > 1
    squashed = RecursiveMLP([4, 5, 2], activation=ReLU, output_activation=Sigmoid, rng=0)
    assert isinstance(squashed.rest.act, Sigmoid)
    assert np.array_equal(linear.dense.weight.data, squashed.dense.weight.data)


def test_activation_instances_are_copied_per_level_and_saved_in_the_config():
    model = RecursiveMLP([3, 4, 4, 1], activation=LeakyReLU(0.2), rng=0)
    assert model.act is not model.rest.act
    assert model.rest.act.negative_slope == 0.2
    clone = build_layer(layer_config(model))
    clone.load_state_dict(model.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert np.array_equal(clone(x), model(x))


def test_recursive_mlp_errors():
    with pytest.raises(ValueError, match="at least an input and an output size"):
        RecursiveMLP([3], rng=0)
    with pytest.raises(TypeError, match="activation must be a Layer class"):
        RecursiveMLP([3, 1], activation="tanh", rng=0)
    with pytest.raises(ValueError, match="RecursiveMLP needs rng="):
        RecursiveMLP([3, 1])
    for sizes, bad in (([9.9, 16, 1], "layer_sizes\\[0\\] must be a positive int, got 9.9"),
                       ([9, "16", 1], "layer_sizes\\[1\\] must be a positive int, got '16'"),
                       ([9, 16, True], "layer_sizes\\[2\\] must be a positive int, got True"),
                       ([9, 0], "layer_sizes\\[1\\] must be a positive int, got 0")):
        with pytest.raises(ValueError, match=bad):
            RecursiveMLP(sizes, rng=0)


def test_sequential_indexing_and_errors():
    model = Sequential(Dense(2, 3, rng=0), Identity())
    model.append(Tanh())
    assert len(model) == 3 and isinstance(model[-1], Tanh) and isinstance(model[0], Dense)
    assert [type(layer) for layer in model] == [Dense, Identity, Tanh]
    with pytest.raises(IndexError, match="Sequential has 3 layers, no index 3"):
        model[3]
    with pytest.raises(TypeError, match="Sequential indices must be integers, got slice"):
        model[0:1]
    with pytest.raises(TypeError, match=r"item 3 is type, not a Layer \(pass an instance"):
        model.append(Tanh)


def test_a_short_manual_training_loop_lowers_the_loss():
    """The pieces compose: forward, loss, backward, step (the library's fit does this for you)."""
    from minidl import SGD

    rng = np.random.default_rng(0)
    x = np.hstack([rng.standard_normal((64, 4)), np.ones((64, 1))])
    y = np.sign(x[:, :1] - x[:, 1:2])
    model = RecursiveMLP([5, 8, 1], activation=Tanh, bias=False, init="lecun_normal", rng=0)
    loss, opt = MSE(half_grad=True), SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(50):
        losses.append(loss(model(x), y))
        model.backward(loss.backward())
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- derived state
def test_error_path_is_where_the_layer_is_now_not_where_it_was_first_put():
    d = Dense(3, 2, rng=0)
    s1 = Sequential(Tanh(), d)
    Sequential(d)  # d is put into a second model; s1 still holds it at '1'
    with pytest.raises(ShapeError, match=r"Dense\(in_features=3.* at '1': expected input of "
                                         r"shape \(N, 3\), got \(2, 4\)"):
        s1(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"dtype='float64'\): expected input"):
        d(np.zeros((2, 4)))  # run on its own, it is the model: no path


def test_error_path_inside_a_recursive_mlp_run_by_forward():
    model = RecursiveMLP([4, 3, 2], rng=0)
    model.forward(np.zeros((5, 4)))
    with pytest.raises(ShapeError, match=r"at 'rest\.act': backward\(\) got grad_out of shape "
                                         r"\(5, 3\)"):
        model.backward(np.zeros((5, 3)))


def test_sequential_accepts_a_list_and_len_follows_append():
    layers = [Dense(3, 2, rng=0), Tanh()]
    model = Sequential(layers)
    assert list(model) == layers and len(model) == 2
    model.append(Dense(2, 1, rng=1))
    assert len(model) == 3 and model[-1].out_features == 1


def test_recursive_mlp_config_is_read_from_its_levels():
    model = RecursiveMLP([4, 3, 2], activation=md.ReLU, output_activation=None, bias=False,
                         init="he_normal", rng=0)
    config = model.get_config()
    assert config == {"layer_sizes": [4, 3, 2], "activation": layer_config(md.ReLU()),
                      "bias": False, "init": "he_normal", "output_activation": None,
                      "dtype": "float64"}
    assert model.rest.get_config()["layer_sizes"] == [3, 2]
    model.astype(np.float32)  # nothing stored per level can go stale
    assert model.get_config()["dtype"] == "float32"
    assert not model.dense.use_bias and Dense(2, 2, rng=0).use_bias
