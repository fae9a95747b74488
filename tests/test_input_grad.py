"""``backprop(grad_out, input_grad=False)``: the caller needs no dL/d(input).

The parameters' gradients must not change by a bit; Dense and Conv2D skip the input gradient
(return None); containers skip the layers before their first one with parameters; a layer of
the user's that knows nothing of the keyword still works; ``fit`` asks for no input gradient.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import minidl as md
from minidl import Layer, Parameter


def _grads(model):
    return [p.grad.copy() for p in model.parameters()]


def _models():
    yield md.Dense(5, 3, rng=0), (4, 5)
    yield md.Conv2D(2, 3, 3, padding=1, rng=0), (2, 2, 6, 6)
    yield md.Sequential(md.Flatten(), md.Dropout(0.5, rng=1), md.Dense(12, 4, rng=0), md.ReLU(),
                        md.BatchNorm1d(4), md.Dense(4, 2, rng=1)), (3, 3, 4)
    yield md.RecursiveMLP([5, 4, 3, 2], rng=0), (6, 5)
    yield md.Sequential(md.Conv2D(1, 2, 3, rng=0), md.ReLU(), md.MaxPool2D(2), md.Flatten(),
                        md.Dense(8, 2, rng=1)), (2, 1, 6, 6)


@pytest.mark.parametrize("case", list(range(5)))
def test_parameter_gradients_are_bit_identical_and_no_input_gradient_is_made(case):
    model, shape = list(_models())[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(shape)
    out = model(x)
    g = rng.standard_normal(out.shape)
    full = model.backprop(g)
    assert full.shape == x.shape
    expected = _grads(model)
    for p in model.parameters():
        p.zero_grad()
    assert model.backprop(g, input_grad=False) is None
    for got, want in zip(_grads(model), expected, strict=True):
        assert np.array_equal(got, want)
    assert all(p.has_grad for p in model.parameters())
    # and the next call without the keyword computes the input gradient again
    assert np.array_equal(model.backprop(g), full)


def test_a_container_does_not_run_the_layers_before_its_first_parameter():
    calls = []

    class Spy(Layer):
        def forward(self, x):
            return x

        def backward(self, grad_out):
            calls.append(self.needs_input_grad)
            return grad_out

    model = md.Sequential(Spy(), md.Dense(3, 2, rng=0), Spy(), md.Dense(2, 1, rng=0))
    x = np.ones((4, 3))
    model(x)
    model.backprop(np.ones((4, 1)), input_grad=False)
    assert calls == [True]  # the Spy between the Dense layers ran; the leading one did not
    calls.clear()
    model.backprop(np.ones((4, 1)))
    assert calls == [True, True]
    only_spies = md.Sequential(Spy(), Spy())
    only_spies(x)
    assert only_spies.backprop(np.ones((4, 3)), input_grad=False) is None and calls == [
        True, True]


def test_a_user_layer_that_ignores_the_question_still_trains():
    class Scale(Layer):
        def __init__(self):
            super().__init__()
            self.s = Parameter(np.array([2.0]))

        def forward(self, x):
            self._x = x
            return x * self.s.data

        def backward(self, grad_out):  # one argument, as before the keyword existed
            self.s.grad[...] = np.sum(grad_out * self._x)
            return grad_out * self.s.data

    layer = Scale()
    layer(np.ones((2, 2)))
    assert np.array_equal(layer.backprop(np.ones((2, 2)), input_grad=False), np.full((2, 2), 2.0))
    assert layer.s.grad[0] == 4.0 and layer.s.has_grad


def test_input_grad_must_be_a_bool_and_the_error_names_the_layer():
    dense = md.Dense(2, 2, rng=0)
    dense(np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"Dense\(.*input_grad must be True or False"):
        dense.backprop(np.ones((1, 2)), input_grad="no")
    assert dense.needs_input_grad  # outside a backward pass the question is not asked


def test_fit_never_computes_the_first_layers_input_gradient(monkeypatch):
    returned = []
    original = md.Dense.backward

    def spy(self, grad_out):
        out = original(self, grad_out)
        returned.append(out)
        return out

    monkeypatch.setattr(md.Dense, "backward", spy)
    model = md.Sequential(md.Dense(3, 4, rng=0), md.Tanh(), md.Dense(4, 1, rng=1))
    x = np.random.default_rng(0).standard_normal((8, 3))
    md.fit(model, md.MSE(), md.SGD(model.parameters(), lr=0.1), x, x[:, :1], epochs=1,
           batch_size=4, verbose=0)
    # per batch: the last Dense returns its input gradient, the first returns None
    assert [r is None for r in returned] == [False, True, False, True]


class _ScaleMixin:
    """A backward written in a class that is not a Layer (a mixin)."""

    def forward(self, x):
        self._x = x
        return x * self.s.data

    def backward(self, grad_out):
        self.s.grad[...] = np.sum(grad_out * self._x)
        return grad_out * self.s.data


class _MixedScale(_ScaleMixin, Layer):
    def __init__(self):
        super().__init__()
        self.s = Parameter(np.array([2.0]))


def test_layers_whose_backward_comes_from_a_mixin_or_the_instance_train_with_fit():
    x = np.random.default_rng(0).standard_normal((8, 3))
    model = md.Sequential(_MixedScale(), md.Dense(3, 1, rng=0))
    md.fit(model, md.MSE(), md.SGD(model.parameters(), lr=0.01), x, x[:, :1], epochs=1,
           batch_size=4, verbose=0)
    assert model[0].s.has_grad
    # a backward assigned on the instance is what backprop calls
    dense = md.Dense(3, 1, rng=0)
    plain = md.Sequential(dense)
    calls = []
    inner = dense.backward
    dense.backward = lambda g: calls.append(1) or inner(g)
    md.fit(plain, md.MSE(), md.SGD(plain.parameters(), lr=0.01), x, x[:, :1], epochs=1,
           batch_size=4, verbose=0)
    assert calls == [1, 1]


def test_a_subclass_backward_and_its_super_call_see_the_callers_answer():
    seen = []

    class Logged(md.Dense):
        def backward(self, grad_out):
            seen.append(self.needs_input_grad)
            return super().backward(grad_out)  # the parent skips its product too

    layer = Logged(3, 2, rng=0)
    layer(np.ones((4, 3)))
    assert layer.backprop(np.ones((4, 2)), input_grad=False) is None
    assert layer.backprop(np.ones((4, 2))).shape == (4, 3)
    assert seen == [False, True]
    assert layer.needs_input_grad  # the answer does not outlive the call


def test_the_methods_a_user_writes_are_the_ones_that_run():
    """No wrapping: ``Dense.backward`` is the function in dense.py, and an error raised in a
    user's backward inside a Sequential has one minidl frame (``Layer.backprop``) between the
    container's backward and the user's, and names the layer's path."""
    import inspect
    import traceback

    from minidl.layers import dense

    assert md.Dense.backward is vars(dense.Dense)["backward"]
    assert not hasattr(md.Dense.backward, "__wrapped__")
    assert inspect.getsourcefile(md.Dense.forward) == dense.__file__

    class Broken(Layer):
        def forward(self, x):
            return x

        def backward(self, grad_out):
            raise ValueError(f"{self.describe()}: broken on purpose")

    model = md.Sequential(md.Dense(3, 3, rng=0), md.Sequential(md.Tanh(), Broken()))
    model(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"at '1\.1': broken") as info:
        model.backprop(np.ones((2, 3)))
    names = [f.name for f in traceback.extract_tb(info.tb)]
    # test -> backprop -> Sequential.backward -> backprop -> Sequential.backward -> backprop
    # -> Broken.backward
    assert names[-3:] == ["backward", "backprop", "backward"], names
    frames = traceback.extract_tb(info.tb)
    inner = [i for i, f in enumerate(frames) if f.name == "backward"]
    between = frames[inner[-2] + 1:inner[-1]]
    assert len(between) <= 2 and all("minidl" in f.filename for f in between)


def test_concurrent_forward_passes_of_one_conv_layer_give_each_caller_its_own_output():
    """The window matrix is reused between forward passes; two threads predicting with one
    model must still each get their own (correct) output."""
    layer = md.Conv2D(3, 8, 3, padding=1, rng=0)
    inputs = [np.random.default_rng(i).standard_normal((16, 3, 12, 12)) for i in range(2)]
    expected = [layer(x).copy() for x in inputs]
    wrong = []

    def predict(k):
        for _ in range(60):
            if not np.array_equal(layer(inputs[k]), expected[k]):
                wrong.append(k)

    threads = [threading.Thread(target=predict, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_the_answer_belongs_to_its_thread_and_to_its_call():
    """Two threads backpropagating one layer with different answers each get theirs, and a
    backward that calls backprop again (re-entered) gets the inner answer, then its own."""
    import time

    class Slow(Layer):
        def forward(self, x):
            return x

        def backward(self, grad_out):
            time.sleep(0.02)
            wanted = self.needs_input_grad
            time.sleep(0.05)
            return grad_out if wanted else None

    layer = Slow()
    layer(np.ones((2, 2)))
    results = {}

    def call(name, input_grad, delay):
        time.sleep(delay)
        results[name] = layer.backprop(np.ones((2, 2)), input_grad)

    threads = [threading.Thread(target=call, args=("wants", True, 0.0)),
               threading.Thread(target=call, args=("skips", False, 0.01))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["wants"].shape == (2, 2) and results["skips"] is None

    seen = []

    class Again(Layer):
        def forward(self, x):
            return x

        def backward(self, grad_out):
            seen.append(self.needs_input_grad)
            if len(seen) == 1:
                self.backprop(grad_out, input_grad=True)
                seen.append(self.needs_input_grad)
            return grad_out

    again = Again()
    again(np.ones((1, 1)))
    again.backprop(np.ones((1, 1)), input_grad=False)
    assert seen == [False, True, False] and again.needs_input_grad


def test_minidl_containers_called_directly_keep_whole_error_paths():
    model = md.Sequential(md.Dense(4, 3, rng=0), md.Sequential(md.Tanh(), md.Dense(2, 1, rng=0)))
    with pytest.raises(ValueError, match=r"at '1\.1': expected input of shape \(N, 2\)"):
        model.forward(np.zeros((5, 4)))


def test_a_backward_declaring_input_grad_is_told_at_class_definition():
    with pytest.raises(TypeError, match=r"Needs\.backward declares an 'input_grad' parameter.*"
                                        r"self\.needs_input_grad; remove the parameter"):
        class Needs(Layer):
            def backward(self, grad_out, input_grad):
                return grad_out

    with pytest.warns(DeprecationWarning, match=r"Keeps\.backward declares an 'input_grad'.*"
                                                r"always keeps its default, True"):
        class Keeps(Layer):
            def backward(self, grad_out, input_grad=True):
                return grad_out
