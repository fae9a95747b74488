"""The public names other code relies on import from where the docs say they do."""

from __future__ import annotations

import numpy as np
import pytest


def test_the_documented_imports_work_and_agree():
    import minidl
    from minidl import Activation, Layer, Loss, Optimizer, Parameter
    from minidl.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
    from minidl.containers import RecursiveMLP, Sequential
    from minidl.gradcheck import gradcheck
    from minidl.layers import BatchNorm1d, Dense, Dropout, Flatten
    from minidl.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
    from minidl.optim import SGD, AdaGrad, Adam, AdamW, RMSProp

    for obj in (Parameter, Layer, Activation, Loss, Optimizer, Dense, Dropout, BatchNorm1d,
                Flatten, Tanh, ReLU, LeakyReLU, Sigmoid, Softmax, Identity, MSE,
                BinaryCrossEntropy, SoftmaxCrossEntropy, Sequential, RecursiveMLP, SGD, Adam,
                AdamW, AdaGrad, RMSProp, gradcheck):
        assert getattr(minidl, obj.__name__) is obj
        assert obj.__name__ in minidl.__all__
    for name in ("fit", "evaluate", "predict", "History", "save", "load"):
        assert name in minidl.__all__ and hasattr(minidl, name)
    # torch's and Keras's names (issue 20)
    for name in ("MSELoss", "BCELoss", "Conv2d", "MaxPool2d", "AvgPool2d", "get_activation"):
        assert name in minidl.__all__ and hasattr(minidl, name)


@pytest.mark.parametrize("name, std", [
    ("lecun_normal", lambda fi, fo: np.sqrt(1 / fi)),
    ("glorot_normal", lambda fi, fo: np.sqrt(2 / (fi + fo))),
    ("glorot_uniform", lambda fi, fo: np.sqrt(6 / (fi + fo)) / np.sqrt(3)),
    ("he_normal", lambda fi, fo: np.sqrt(2 / fi)),
    ("he_uniform", lambda fi, fo: np.sqrt(6 / fi) / np.sqrt(3)),
])
def test_initialisers_have_the_documented_spread(name, std):
    from minidl.init import get_initializer

    fan_in, fan_out = 400, 300
    w = get_initializer(name)((fan_in, fan_out), np.random.default_rng(0), np.float32)
    assert w.dtype == np.float32 and w.shape == (fan_in, fan_out)
    assert abs(w.mean()) < 0.01 * std(fan_in, fan_out) * 10
    assert w.std() == pytest.approx(std(fan_in, fan_out), rel=0.02)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= std(fan_in, fan_out) * np.sqrt(3)


def test_normal_initialiser_uses_the_given_std():
    from minidl.init import normal

    w = normal(0.01)((500, 200), np.random.default_rng(0))
    assert w.std() == pytest.approx(0.01, rel=0.02)
    with pytest.raises(ValueError, match="std must be >= 0"):
        normal(-1.0)
