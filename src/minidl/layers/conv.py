"""2-D convolution over NCHW inputs, as im2col and one matrix product."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..init import INITIALIZERS, as_generator, get_initializer
from ..layer import Layer, as_float_array
from ..parameter import Parameter
from ..validation import check_allocation, check_bool, check_float_dtype
from ._windows import col2im, im2col, pair


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in PyTorch and Keras) of (N, C_in, H, W) inputs.

    Forward, with K = C_in * kh * kw and the input zero-padded by ``padding`` on each side::

        cols[:, (n, i, j)] = x_pad[n, :, i*sh : i*sh+kh, j*sw : j*sw+kw].ravel()  # (K, N*OH*OW)
        y[n, :, i, j]      = W.reshape(C_out, K) @ cols[:, (n, i, j)] + b         # one GEMM

    with ``OH = (H + 2*ph - kh) // sh + 1`` (likewise OW); ``cols`` is built channel-major
    (:func:`~minidl.layers._windows.im2col`), one copy of whole image rows per kernel offset.
    Backward, for g = dL/dy as a (C_out, N*OH*OW) matrix: ``dW = g cols^T``, ``db = sum g``,
    ``dcols = W^T g`` and dx adds each column of ``dcols`` back onto the input window it came
    from (col2im), then drops the padding. Skipped with ``backprop(g, input_grad=False)``.

    Parameters, in this order: ``weight`` of shape (out_channels, in_channels, kh, kw) (PyTorch's
    layout), then ``bias`` (out_channels,) when ``bias=True``. ``init`` names an initialiser of
    :mod:`minidl.init` or is a callable ``init(shape, rng, dtype)``; it is called with the shape
    (in_channels, out_channels, kh, kw), so that fan_in = C_in*kh*kw and fan_out = C_out*kh*kw
    as in Keras; the bias starts at zero. ``rng`` (a Generator or an int seed) is required.
    ``kernel_size``, ``stride`` and ``padding`` are ints or (height, width) pairs.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, init="glorot_uniform", rng=None, dtype=np.float64):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Conv2D: {name} must be a positive int, got {value!r}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = pair("Conv2D", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2D", "stride", stride, 1)
        self.padding = pair("Conv2D", "padding", padding, 0)
        self.use_bias = check_bool("Conv2D", "bias", bias)
        self.init = init
        self.dtype = check_float_dtype("Conv2D", dtype)
        generator = as_generator(rng, "Conv2D")
        kh, kw = self.kernel_size
        check_allocation("Conv2D", f"a {kh}x{kw} kernel from {self.in_channels} to "
                         f"{self.out_channels} channels (weight and gradient)",
                         [(self.in_channels, self.out_channels, kh, kw)] * 2, self.dtype)
        drawn = get_initializer(init)((self.in_channels, self.out_channels, kh, kw), generator,
                                      self.dtype)
        self.weight = Parameter(np.ascontiguousarray(drawn.transpose(1, 0, 2, 3)), dtype=self.dtype)
        self.bias = (Parameter(np.zeros(self.out_channels), dtype=self.dtype) if self.use_bias
                     else None)
        self._cols = None

    def get_config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "bias": self.use_bias,
            "init": self.init if isinstance(self.init, str) else None,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("init") not in INITIALIZERS:
            config["init"] = "zeros"  # a custom initialiser: the weights are loaded afterwards
        return super().from_config(config)

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """(OH, OW) for an input of ``height`` x ``width``, or a ShapeError if it is too small."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if height + 2 * ph < kh or width + 2 * pw < kw:
            raise ShapeError(
                f"{self.describe()}: input of {height}x{width} (padding {ph}x{pw}) is smaller "
                f"than the {kh}x{kw} kernel"
            )
        return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1

    def forward(self, x):
        x = as_float_array(x, self.dtype, self)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"{self.describe()}: expected input of shape (N, {self.in_channels}, H, W), "
                f"got {x.shape}"
            )
        n = x.shape[0]
        oh, ow = self.output_shape(*x.shape[2:])
        ph, pw = self.padding
        (kh, kw), (h, w) = self.kernel_size, x.shape[2:]
        check_allocation(self.describe, lambda: f"a {h}x{w} input with padding {ph}x{pw} and "
                         f"a {kh}x{kw} kernel (padded input, window matrix and output)",
                         [(n, self.in_channels, h + 2 * ph, w + 2 * pw),
                          (self.in_channels * kh * kw, n * oh * ow),
                          (self.out_channels, n * oh * ow)], self.dtype, ShapeError)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        # (K, N*OH*OW), into the last forward's matrix when the shape is the same (a fresh one
        # of this size costs page faults every time); taken out of the layer while it is
        # filled (dict.pop is atomic), so a second thread's forward allocates its own
        cols = im2col(x, self.kernel_size, self.stride, (oh, ow),
                      out=self.__dict__.pop("_cols", None))
        out = self.weight.data.reshape(self.out_channels, -1) @ cols      # (C_out, N*OH*OW)
        if self.bias is not None:
            out += self.bias.data[:, None]
        self._cols, self._padded_shape, self._out_hw = cols, x.shape, (oh, ow)
        return np.ascontiguousarray(out.reshape(self.out_channels, n, oh, ow).transpose(1, 0, 2, 3))

    def backward(self, grad_out):
        cols = self._cache("_cols")
        n, c, hp, wp = self._padded_shape
        oh, ow = self._out_hw
        g = self._check_grad_out(grad_out, (n, self.out_channels, oh, ow))
        g = np.ascontiguousarray(g.astype(self.dtype, copy=False).transpose(1, 0, 2, 3))
        g = g.reshape(self.out_channels, -1)                              # (C_out, N*OH*OW)
        w = self.weight.data.reshape(self.out_channels, -1)
        self.weight.grad[...] = (g @ cols.T).reshape(self.weight.shape)
        if self.bias is not None:
            np.sum(g, axis=1, out=self.bias.grad)
        if not self.needs_input_grad:
            return None
        dx = col2im(w.T @ g, (n, c, hp, wp), self.kernel_size, self.stride, (oh, ow))
        ph, pw = self.padding
        return dx[:, :, ph:hp - ph, pw:wp - pw]


#: PyTorch's name (same arguments in the same order, and torch's (out, in, kh, kw) weight).
Conv2d = Conv2D
