"""Conv2D and the pooling layers: forward against direct loops, shapes, dtypes, errors, configs.

The backward passes are under the hypothesis gradcheck of tests/test_gradcheck_properties.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import (
    Adam,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Sequential,
    ShapeError,
    SoftmaxCrossEntropy,
)
from minidl.containers import build_layer, layer_config


def conv_loop(x, w, b, stride, padding):
    """The textbook definition, one output element at a time."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for s in range(n):
        for k in range(o):
            for i in range(oh):
                for j in range(ow):
                    y[s, k, i, j] = np.sum(xp[s, :, i * sh:i * sh + kh, j * sw:j * sw + kw] * w[k])
                    y[s, k, i, j] += 0.0 if b is None else b[k]
    return y


def pool_loop(x, kernel, stride, reduce):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for s in range(n):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    y[s, k, i, j] = reduce(x[s, k, i * sh:i * sh + kh, j * sw:j * sw + kw])
    return y


@pytest.mark.parametrize("kernel, stride, padding, bias", [
    (3, 1, 0, True), (3, 2, 1, True), ((2, 3), (1, 2), (0, 1), False), (1, 1, 0, True),
    (5, 3, 2, True),
])
def test_conv2d_forward_matches_the_loop(kernel, stride, padding, bias):
    rng = np.random.default_rng(0)
    layer = Conv2D(3, 4, kernel, stride=stride, padding=padding, bias=bias, rng=1)
    if bias:
        layer.bias.data[...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 9, 8))
    expected = conv_loop(x, layer.weight.data, layer.bias.data if bias else None,
                         layer.stride, layer.padding)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls, reduce", [(MaxPool2D, np.max), (AvgPool2D, np.mean)])
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), ((2, 3), (2, 1)), (3, 2)])
def test_pooling_forward_matches_the_loop(cls, reduce, kernel, stride):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8))
    layer = cls(kernel, stride=stride)
    np.testing.assert_allclose(layer(x), pool_loop(x, layer.kernel_size, layer.stride, reduce),
                               rtol=1e-12, atol=1e-12)


def test_global_avg_pool_is_the_mean_of_each_map():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = GlobalAvgPool2D()
    expected = np.array([[x[n, c].mean() for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.backward(np.ones((2, 3))), np.full(x.shape, 1 / 20))


def test_max_pool_sends_the_gradient_to_the_first_maximum_and_skips_leftover_rows():
    x = np.zeros((1, 1, 3, 4))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 5.0  # a tie in the first window
    layer = MaxPool2D(2)
    assert layer(x).shape == (1, 1, 1, 2)
    dx = layer.backward(np.array([[[[1.0, 2.0]]]]))
    expected = np.zeros((1, 1, 3, 4))
    expected[0, 0, 0, 1] = 1.0  # first maximum in row-major order, as PyTorch
    expected[0, 0, 0, 2] = 2.0  # all-zero window: its first element
    np.testing.assert_array_equal(dx, expected)  # the last row fits no window: zero gradient


def test_conv2d_parameters_layout_and_initialisation():
    layer = Conv2D(8, 16, 3, rng=0)
    assert [(n, p.shape) for n, p in layer.named_parameters()] == [
        ("weight", (16, 8, 3, 3)), ("bias", (16,))]
    bound = np.sqrt(6 / (8 * 9 + 16 * 9))  # Keras' fans: C_in*kh*kw and C_out*kh*kw
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.all(layer.bias.data == 0)
    assert [p.shape for p in Conv2D(1, 2, 3, bias=False, rng=0).parameters()] == [(2, 1, 3, 3)]
    np.testing.assert_array_equal(Conv2D(2, 3, 3, rng=7).weight.data,
                                  Conv2D(2, 3, 3, rng=7).weight.data)


@pytest.mark.parametrize("make", [
    lambda: Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1, bias=False, init="he_normal", rng=0),
    lambda: MaxPool2D(2),
    lambda: AvgPool2D((2, 3), stride=1),
    lambda: GlobalAvgPool2D(),
])
def test_conv_and_pooling_rebuild_from_their_config(make):
    layer = make()
    clone = build_layer(layer_config(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    clone.load_state_dict(layer.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 5))
    np.testing.assert_array_equal(clone(x), layer(x))


def test_a_small_cnn_stays_float32_end_to_end_and_learns():
    rng = np.random.default_rng(0)
    model = Sequential(Conv2D(1, 4, 3, padding=1, rng=0), ReLU(), MaxPool2D(2),
                       Conv2D(4, 4, 3, rng=1), ReLU(), GlobalAvgPool2D(), Flatten(),
                       Dense(4, 2, rng=2)).astype(np.float32)
    x = rng.standard_normal((16, 1, 8, 8))            # float64 input: cast, never upcast
    x[:8, :, :4] += 2.0                               # class 0: a bright top half
    y = np.array([0] * 8 + [1] * 8)
    loss, opt = SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(30):
        out = model(x)
        assert out.dtype == np.float32
        value = loss(out, y)
        first = value if first is None else first
        assert model.backward(loss.backward()).dtype == np.float32
        opt.step()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert value < 0.5 * first


def test_wrong_inputs_name_the_layer():
    model = Sequential(Conv2D(3, 4, 3, rng=0), MaxPool2D(2))
    with pytest.raises(ShapeError, match=r"Conv2D\(in_channels=3.* at '0': expected input of "
                                         r"shape \(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        model(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ShapeError, match=r"shape \(N, 3, H, W\), got \(3, 8, 8\)"):
        model(np.zeros((3, 8, 8)))
    with pytest.raises(ShapeError, match=r"at '0': input of 2x5 \(padding 0x0\) is smaller than "
                                         r"the 3x3 kernel"):
        model(np.zeros((1, 3, 2, 5)))
    with pytest.raises(ShapeError, match=r"MaxPool2D\(.*\) at '1': input of 1x1 is smaller than "
                                         r"the 2x2 window"):
        model(np.zeros((1, 3, 3, 3)))
    for layer in (AvgPool2D(2), GlobalAvgPool2D()):
        with pytest.raises(ShapeError, match=rf"{type(layer).__name__}.*expected input of shape "
                                             r"\(N, C, H, W\), got \(4, 4\)"):
            layer(np.zeros((4, 4)))
    model(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ShapeError, match=r"at '1': backward\(\) got grad_out of shape"):
        model.backward(np.zeros((1, 4, 2, 2)))


@pytest.mark.parametrize("make, match", [
    (lambda: Conv2D(0, 2, 3, rng=0), "Conv2D: in_channels must be a positive int, got 0"),
    (lambda: Conv2D(1, 2, 0, rng=0), r"Conv2D: kernel_size must be an int >= 1 or a pair"),
    (lambda: Conv2D(1, 2, 3, stride=(1, 0), rng=0), r"Conv2D: stride must be an int >= 1"),
    (lambda: Conv2D(1, 2, 3, padding=-1, rng=0), r"Conv2D: padding must be an int >= 0"),
    (lambda: Conv2D(1, 2, 3), "Conv2D needs rng="),
    (lambda: MaxPool2D((2, 2, 2)), r"MaxPool2D: kernel_size must be an int >= 1 or a pair"),
    (lambda: AvgPool2D(2, stride=1.5), r"AvgPool2D: stride must be an int >= 1"),
])
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_the_layers_are_exported():
    for name in ("Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"):
        assert getattr(minidl, name) is getattr(minidl.layers, name)
        assert name in minidl.__all__ and name in minidl.layers.__all__


def test_the_reused_window_matrix_never_leaks_an_earlier_forward():
    """Conv2D fills the previous forward's window matrix when the shape repeats: backward must
    see the latest input, a copy must own its matrix, and a dtype change must not reuse it."""
    import copy

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 2, 7, 7)), rng.standard_normal((2, 2, 7, 7))
    g = rng.standard_normal((2, 4, 5, 5))
    layer, fresh = minidl.Conv2D(2, 4, 3, rng=0), minidl.Conv2D(2, 4, 3, rng=0)
    layer(a)
    twin = copy.deepcopy(layer)
    layer(b)
    fresh(b)
    np.testing.assert_array_equal(layer.backward(g), fresh.backward(g))
    np.testing.assert_array_equal(layer.weight.grad, fresh.weight.grad)
    twin.backward(g)  # the copy still holds a's windows
    reference = minidl.Conv2D(2, 4, 3, rng=0)
    reference(a)
    reference.backward(g)
    np.testing.assert_array_equal(twin.weight.grad, reference.weight.grad)
    layer.astype(np.float32)
    out = layer(a.astype(np.float32))
    assert out.dtype == np.float32 and layer._cols.dtype == np.float32


# ------------------------------------------------------------------ issue 19
def test_global_avg_pool_refuses_an_empty_map_as_window_pooling_does():
    # issue 19: GlobalAvgPool2D()(np.zeros((2, 3, 0, 5))) returned NaN
    for shape in [(2, 3, 0, 5), (2, 3, 4, 0)]:
        with pytest.raises(minidl.ShapeError, match=r"GlobalAvgPool2D\(\): input of \dx\d has "
                                                    r"no values to average"):
            GlobalAvgPool2D()(np.zeros(shape))
        with pytest.raises(minidl.ShapeError, match=r"is smaller than the 2x2 window"):
            MaxPool2D(2)(np.zeros(shape))


def test_sizes_that_cannot_fit_in_memory_are_refused_before_allocating(monkeypatch):
    # issue 19: Conv2D(padding=100000) tried to allocate 298 GiB, kernel_size=100000 74 GiB
    from minidl import validation

    monkeypatch.setattr(validation, "memory_bytes", lambda: 2**30)  # a 1 GiB machine
    with pytest.raises(ValueError, match=r"Conv2D: a 100000x100000 kernel from 1 to 1 channels "
                                         r"\(weight and gradient\) needs 20,000,000,000 values "
                                         r"\(149\.0 GiB of float64\), more than this machine's "
                                         r"memory \(1\.0 GiB\)"):
        Conv2D(1, 1, 100000, rng=0)
    layer = Conv2D(1, 1, 3, padding=100000, rng=0)
    with pytest.raises(minidl.ShapeError, match=r"Conv2D\(.*\): a 5x5 input with padding "
                                                r"100000x100000 and a 3x3 kernel .* needs "):
        layer(np.zeros((1, 1, 5, 5)))
    with pytest.raises(minidl.ShapeError, match=r"MaxPool2D\(.*\): 300x300 windows over a "
                                                r"1000x1000 input needs"):
        MaxPool2D(300, stride=1)(np.zeros((1, 1, 1000, 1000), np.float32))
    with pytest.raises(ValueError, match=r"Dense: a 100000x100000 weight \(and its gradient\)"):
        minidl.Dense(100000, 100000, rng=0)
    # what fits is not refused
    assert Conv2D(1, 1, 3, padding=4, rng=0)(np.zeros((1, 1, 5, 5))).shape == (1, 1, 11, 11)


@pytest.mark.parametrize(("build", "owner", "name"), [
    (lambda v: Conv2D(1, 1, 3, bias=v, rng=0), "Conv2D", "bias"),
    (lambda v: minidl.BatchNorm1d(3, affine=v), "BatchNorm1d", "affine"),
])
@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_layer_flags_must_be_bools(build, owner, name, value):
    # issue 19: Conv2D(bias="no") had a bias (Dense refuses it)
    with pytest.raises(ValueError, match=rf"{owner}: {name} must be True or False, got "):
        build(value)


def _conv_run(layer, x, g, input_grad=True):
    y = layer(x)
    dx = layer.backprop(g, input_grad)
    grads = [p.grad.copy() for p in layer.parameters()]
    return y, dx, grads


@pytest.mark.parametrize("shape, channels, kernel, stride, padding, dtype, block", [
    ((1, 3, 7, 9), 4, 3, 1, 0, np.float32, 1 << 20),      # batch 1
    ((5, 2, 8, 6), 3, (2, 3), (2, 1), (1, 2), np.float64, 1 << 20),
    ((7, 3, 9, 11), 5, 3, 2, 1, np.float32, 40),          # one sample per block
    ((6, 2, 6, 6), 3, 3, 1, 0, np.float32, 150),         # blocks of 2, 2, 2
    ((5, 2, 6, 6), 3, 3, 1, 0, np.float64, 250),         # blocks of 3 and 2
    ((4, 1, 5, 5), 2, 5, 1, 0, np.float32, 1 << 20),      # a 1x1 output
])
def test_conv2d_numba_and_numpy_paths_give_the_same_bits(monkeypatch, shape, channels, kernel,
                                                         stride, padding, dtype, block):
    pytest.importorskip("numba")
    from minidl.layers import _windows, conv

    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    layer = Conv2D(shape[1], channels, kernel, stride, padding, rng=0).astype(dtype)
    g = rng.standard_normal(layer(x).shape).astype(dtype)
    monkeypatch.setattr(conv, "BLOCK_VALUES", block)
    runs = {}
    for numba_on in (True, False):
        monkeypatch.setattr(_windows, "NUMBA", numba_on)
        runs[numba_on] = _conv_run(layer, x, g)
    (y1, dx1, g1), (y0, dx0, g0) = runs[True], runs[False]
    assert y1.dtype == dx1.dtype == dtype
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_array_equal(a, b)
    # and the blocks agree with the whole batch in one block, to rounding
    monkeypatch.setattr(conv, "BLOCK_VALUES", 1 << 30)
    y2, dx2, g2 = _conv_run(layer, x, g)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y2, y0, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx2, dx0, rtol=tol, atol=tol)
    for a, b in zip(g2, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 10)


def test_conv2d_without_the_input_gradient_gives_the_same_parameter_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 7, 7)).astype(np.float32)
    layer = Conv2D(2, 4, 3, padding=1, rng=0).astype(np.float32)
    g = rng.standard_normal((3, 4, 7, 7)).astype(np.float32)
    _, dx, grads = _conv_run(layer, x, g)
    _, none, grads_skipped = _conv_run(layer, x, g, input_grad=False)
    assert dx.shape == x.shape and none is None
    for a, b in zip(grads, grads_skipped, strict=True):
        np.testing.assert_array_equal(a, b)


def test_conv2d_is_bit_for_bit_repeatable_and_a_batch_of_zero_samples_has_zero_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3, 10, 10)).astype(np.float32)
    g = rng.standard_normal((9, 8, 8, 8)).astype(np.float32)
    first = _conv_run(Conv2D(3, 8, 3, rng=1).astype(np.float32), x, g)
    second = _conv_run(Conv2D(3, 8, 3, rng=1).astype(np.float32), x, g)
    for a, b in zip([first[0], first[1], *first[2]], [second[0], second[1], *second[2]],
                    strict=True):
        np.testing.assert_array_equal(a, b)
    layer = Conv2D(3, 8, 3, rng=1).astype(np.float32)
    _conv_run(layer, x, g)
    _, dx, grads = _conv_run(layer, x[:0], g[:0])
    assert dx.shape == (0, 3, 10, 10) and all(not gr.any() for gr in grads)


@pytest.mark.parametrize("shape, kernel, stride, dtype", [
    ((2, 3, 8, 8), 2, None, np.float32),
    ((1, 2, 7, 9), 3, 2, np.float64),        # overlapping windows, leftover rows
    ((3, 2, 6, 5), (2, 3), (1, 2), np.float32),
    ((2, 1, 5, 5), 2, 1, np.float32),
])
def test_max_pool_numba_and_numpy_paths_give_the_same_bits(monkeypatch, shape, kernel, stride,
                                                           dtype):
    pytest.importorskip("numba")
    from minidl.layers import _windows

    rng = np.random.default_rng(6)
    x = rng.integers(-3, 3, shape).astype(dtype)       # many ties: the first maximum wins
    x[0, 0, 0, 1] = np.nan                              # and NaN as np.argmax
    runs = {}
    for numba_on in (True, False):
        monkeypatch.setattr(_windows, "NUMBA", numba_on)
        pool = MaxPool2D(kernel, stride)
        y = pool(x)
        g = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
        g[0, 0, 0, 0] = -0.0
        runs[numba_on] = (y, pool.backprop(g))
    for a, b in zip(runs[True], runs[False], strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.signbit(a), np.signbit(b))
