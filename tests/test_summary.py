"""model.summary(): layers with their paths, output shapes, parameter counts and totals."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as md
from minidl.parameter import Parameter


def table(model, capsys, **kwargs) -> list[str]:
    model.summary(**kwargs)
    return capsys.readouterr().out.splitlines()


def row(lines, name):
    [hit] = [line.split() for line in lines if line.startswith(name + " ") or line == name]
    return hit


def test_sequential_rows_shapes_and_totals(capsys):
    model = md.Sequential([md.Dense(784, 128, rng=0), md.ReLU(), md.Dropout(0.3, rng=1),
                           md.BatchNorm1d(128), md.Dense(128, 10, rng=2)])
    lines = table(model, capsys, input_shape=(784,))
    assert lines[0] == 'Model: "Sequential"'
    assert row(lines, "0 (Dense)") == ["0", "(Dense)", "(N,", "128)", "100,480"]
    assert row(lines, "2 (Dropout)")[-3:] == ["(N,", "128)", "0"]
    assert row(lines, "3 (BatchNorm1d)")[-1] == "512"  # gamma, beta and the running statistics
    assert row(lines, "4 (Dense)")[-3:] == ["(N,", "10)", "1,290"]
    assert "Total params: 102,282" in lines
    assert "Trainable params: 102,026" in lines
    assert "Non-trainable params: 256 (buffers)" in lines
    assert model.num_parameters() == 102_026


def test_recursive_mlp_uses_the_last_input_shape_and_dotted_paths(capsys):
    model = md.RecursiveMLP([9, 16, 1], rng=0)
    model(np.zeros((5, 9)))
    lines = table(model, capsys)
    assert row(lines, "dense (Dense)")[-3:] == ["(N,", "16)", "160"]
    assert row(lines, "act (Tanh)")[-3:] == ["(N,", "16)", "0"]
    assert row(lines, "rest.dense (Dense)")[-3:] == ["(N,", "1)", "17"]
    assert not any(line.startswith("rest ") for line in lines)  # containers have no row
    assert "Total params: 177" in lines


def test_without_a_shape_the_shapes_are_unknown_and_the_table_says_why(capsys):
    lines = table(md.Sequential(md.Dense(3, 2, rng=0), md.Tanh()), capsys)
    assert row(lines, "0 (Dense)")[-2:] == ["?", "8"]
    assert lines[-1] == "Output shapes unknown: pass input_shape= or call the model once."


def test_any_layer_tree_and_a_layer_with_own_parameters_beside_sub_layers(capsys):
    class Residual(md.Layer):
        def __init__(self):
            super().__init__()
            self.scale = Parameter(np.ones(4))
            self.inner = md.Dense(4, 4, rng=0)

        def forward(self, x):
            return x + self.scale.data * self.inner.forward(x)

    lines = table(md.Sequential(Residual(), md.Flatten()), capsys, input_shape=4)
    assert row(lines, "0 (Residual)")[-3:] == ["(N,", "4)", "4"]
    assert row(lines, "0.inner (Dense)")[-3:] == ["(N,", "4)", "20"]
    assert "Total params: 24" in lines


def test_summary_leaves_the_model_caches_and_random_state_alone(capsys):
    model = md.Sequential(md.Dense(3, 4, rng=0), md.Dropout(0.5, rng=1))
    x = np.ones((2, 3))
    model(x)
    cached, rng = model[0]._x, model.rng_state()
    model.summary(input_shape=(3,))
    capsys.readouterr()
    assert model[0]._x is cached and model.rng_state() == rng and model.training


def test_bad_input_shapes_are_named():
    with pytest.raises(ValueError, match=r"summary: input_shape\[0\] must be"):
        md.Dense(3, 2, rng=0).summary(input_shape=(0,))
    with pytest.raises(ValueError, match=r"summary: cannot run Sequential on an input of "
                                         r"shape \(N, 5\).*expected input of shape \(N, 3\)"):
        md.Sequential(md.Dense(3, 2, rng=0)).summary(input_shape=(5,))
