"""Activation subclasses write function and vjp; the old name derivative still works, warning."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import minidl as md
from minidl.layer import LAYER_REGISTRY, registered_name


@pytest.mark.parametrize("cls", [md.Identity, md.Tanh, md.ReLU, md.LeakyReLU, md.Sigmoid,
                                 md.Softmax])
def test_every_built_in_activation_writes_vjp_and_backward_uses_it(cls):
    assert "vjp" in cls.__dict__ and "derivative" not in cls.__dict__
    act = cls()
    x = np.random.default_rng(0).standard_normal((4, 3))
    g = np.random.default_rng(1).standard_normal((4, 3))
    y = act(x)
    assert np.array_equal(act.backward(g), act.vjp(x, y, g))
    md.gradcheck(act, x)


def test_calling_the_old_name_on_a_built_in_warns_and_gives_the_vjp():
    act = md.Tanh()
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    y, g = act(x), np.ones((2, 3))
    with pytest.warns(DeprecationWarning, match=r"Tanh\.derivative is deprecated; call vjp"):
        old = act.derivative(x, y, g)
    assert np.array_equal(old, act.vjp(x, y, g))


def define_legacy(base):
    class Cube(base):  # written before the rename: y = x^3, dL/dx = 3 x^2 g
        def function(self, x):
            return x ** 3

        def derivative(self, x, y, grad_out):
            return 3 * x * x * grad_out
    return Cube


@pytest.mark.parametrize("base", [md.Activation, md.Tanh])
def test_a_user_class_defining_derivative_still_works_with_a_warning_naming_it(base):
    with pytest.warns(DeprecationWarning, match=r"test_activations\..*Cube defines "
                                                r"derivative\(x, y, grad_out\); rename it vjp"):
        cube = define_legacy(base)
    try:
        x = np.array([[1.0, -2.0, 0.5]])
        cube_layer = cube()
        cube_layer(x)
        assert np.array_equal(cube_layer.backward(np.ones((1, 3))), 3 * x * x)
        md.gradcheck(cube(), x)  # its own derivative, not the base class's vjp
    finally:
        del LAYER_REGISTRY[registered_name(cube)]


def test_a_class_defining_vjp_does_not_warn(recwarn):
    class Square(md.Activation):
        def function(self, x):
            return x * x

        def vjp(self, x, y, grad_out):
            return 2 * x * grad_out
    try:
        assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
        md.gradcheck(Square(), np.array([[0.3, -1.2]]))
    finally:
        del LAYER_REGISTRY[registered_name(Square)]


def test_softmax_takes_torchs_dim_beside_axis():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    assert np.array_equal(md.Softmax(dim=1)(x), md.Softmax(axis=1)(x))
    assert md.Softmax(dim=0).get_config() == {"axis": 0}
    assert repr(md.Softmax(dim=-1)) == "Softmax(axis=-1)"
    with pytest.raises(TypeError, match=r"Softmax: pass axis= or dim= \(torch's name\), not both"):
        md.Softmax(axis=1, dim=1)


@pytest.mark.parametrize("name, cls", [("relu", md.ReLU), ("tanh", md.Tanh),
                                       ("sigmoid", md.Sigmoid), ("logistic", md.Sigmoid),
                                       ("softmax", md.Softmax), ("linear", md.Identity),
                                       ("identity", md.Identity), ("leaky_relu", md.LeakyReLU),
                                       ("ReLU", md.ReLU)])
def test_get_activation_builds_the_named_activation(name, cls):
    act = md.get_activation(name)
    assert type(act) is cls
    assert md.activations.get_activation is md.get_activation
    assert md.get_activation("leaky_relu", negative_slope=0.2).negative_slope == 0.2


def test_get_activation_names_the_known_names_for_an_unknown_one():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; known: identity, "
                                         r"leaky_relu, linear, logistic, relu, sigmoid, softmax, "
                                         r"tanh"):
        md.get_activation("gelu")


def test_activation_with_a_name_says_it_is_the_base_class_and_what_to_call():
    """Keras's Activation("relu") is a layer built by name; md.Activation is the base class
    that custom activations subclass, so the name goes to md.get_activation."""
    with pytest.raises(TypeError, match=r"md\.Activation is the base class of activations "
                                        r"\(subclass it with function and vjp\); for Keras's "
                                        r"Activation\('relu'\) call md\.get_activation\('relu'\) "
                                        r"or md\.ReLU\(\)"):
        md.Activation("relu")
    with pytest.raises(TypeError, match=r"md\.get_activation\('leaky_relu', "
                                        r"negative_slope=0\.2\)"):
        md.Activation("leaky_relu", negative_slope=0.2)
    # subclasses, copies and pickles are untouched by the check
    import copy
    import pickle

    act = md.LeakyReLU(0.3)
    assert copy.deepcopy(act).negative_slope == 0.3
    assert pickle.loads(pickle.dumps(act)).negative_slope == 0.3
    assert md.LeakyReLU.from_config(act.get_config()).negative_slope == 0.3
    with pytest.raises(TypeError):
        md.ReLU("relu")
    assert str(inspect.signature(md.ReLU)) == "()"  # help() and the reference pages
