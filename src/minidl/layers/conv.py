"""2-D convolution over NCHW inputs, as im2col and one matrix product."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..init import INITIALIZERS, as_generator, get_initializer
from ..layer import Layer, as_float_array
from ..parameter import Parameter
from ..validation import check_allocation, check_bool, check_float_dtype
from ._windows import col2im, im2col, pair

#: The most values of the window matrix a Conv2D multiplies at once: the batch's windows are
#: built block of samples after block (at least one sample), each block's part still in the
#: cache for its matrix product; the whole matrix is kept for backward's dW, and every buffer
#: is reused from call to call.
BLOCK_VALUES = 1 << 22

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
        self._x = None

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

    def _buffer(self, name: str, size: int) -> np.ndarray:
        """A flat array of at least ``size`` values of the layer's dtype: the last call's when it
        is large enough (a fresh one costs page faults every time), taken out of the layer
        while in use (dict.pop is atomic), so a second thread's call allocates its own."""
        buf = self.__dict__.pop(name, None)
        if buf is None or buf.size < size or buf.dtype != self.dtype:
            buf = np.empty(size, dtype=self.dtype)
        return buf

    def _chunk(self, n: int, k: int, p: int) -> int:
        """Samples per block: as many as keep a block's window matrix (K x block*OH*OW) within
        :data:`BLOCK_VALUES` values, at least one."""
        return max(1, min(n, BLOCK_VALUES // max(1, k * p)))

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
        c_out, k, p = self.out_channels, self.in_channels * kh * kw, oh * ow
        nb = self._chunk(n, k, p)
        check_allocation(self.describe, lambda: f"a {h}x{w} input with padding {ph}x{pw} and "
                         f"a {kh}x{kw} kernel (padded input, window matrix and output)",
                         [(n, self.in_channels, h + 2 * ph, w + 2 * pw), (k, n * p),
                          (2, c_out, n * p)], self.dtype, ShapeError)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        x = np.ascontiguousarray(x)
        wmat = self.weight.data.reshape(c_out, k)
        out = np.empty((n, c_out, oh, ow), dtype=self.dtype)
        # the whole batch's windows, kept for backward's dW, block after block (each block's
        # (K, block*OH*OW) matrix contiguous and still in the cache for its product)
        cols_buf = self._buffer("_cols", k * n * p)
        y_buf = self._buffer("_y", c_out * nb * p) if nb > 1 else None
        for n0 in range(0, n, nb):
            m = min(nb, n - n0)
            cols = im2col(x[n0:n0 + m], self.kernel_size, self.stride, (oh, ow),
                          out=cols_buf[k * n0 * p:k * (n0 + m) * p].reshape(k, m * p))
            if y_buf is None:                        # one sample: its (C_out, OH*OW) in place
                y = np.matmul(wmat, cols, out=out[n0].reshape(c_out, p))
                if self.bias is not None:
                    y += self.bias.data[:, None]
            else:
                y = np.matmul(wmat, cols, out=y_buf[:c_out * m * p].reshape(c_out, m * p))
                y4 = y.reshape(c_out, m, oh, ow).transpose(1, 0, 2, 3)
                if self.bias is not None:
                    np.add(y4, self.bias.data[:, None, None], out=out[n0:n0 + m])
                else:
                    out[n0:n0 + m] = y4
        self._cols = cols_buf
        if y_buf is not None:
            self._y = y_buf
        self._x, self._out_hw = x, (oh, ow)
        return out

    def backward(self, grad_out):
        x = self._cache("_x")
        n, c, hp, wp = x.shape
        oh, ow = self._out_hw
        g = self._check_grad_out(grad_out, (n, self.out_channels, oh, ow))
        g = np.ascontiguousarray(g, dtype=self.dtype)
        c_out, (kh, kw) = self.out_channels, self.kernel_size
        k, p = c * kh * kw, oh * ow
        nb = self._chunk(n, k, p)
        wmat = self.weight.data.reshape(c_out, k)
        if self.bias is not None:
            np.sum(g, axis=(0, 2, 3), out=self.bias.grad)
        dw = self.weight.grad.reshape(c_out, k)
        part = np.empty_like(dw)
        dx = np.empty(x.shape, dtype=self.dtype) if self.needs_input_grad else None
        cols_buf = self._cache("_cols")
        g_buf = self._buffer("_y", c_out * nb * p) if nb > 1 else None
        dcols_buf = self._buffer("_dcols", k * nb * p) if dx is not None else None
        if n == 0:
            dw[...] = 0
        for n0 in range(0, n, nb):
            m = min(nb, n - n0)
            cols = cols_buf[k * n0 * p:k * (n0 + m) * p].reshape(k, m * p)  # forward's
            if g_buf is None:
                gb = g[n0].reshape(c_out, p)
            else:
                gb = g_buf[:c_out * m * p].reshape(c_out, m * p)
                gb.reshape(c_out, m, oh, ow)[...] = g[n0:n0 + m].transpose(1, 0, 2, 3)
            if n0 == 0:                              # dW = sum over blocks, in block order
                np.matmul(gb, cols.T, out=dw)
            else:
                dw += np.matmul(gb, cols.T, out=part)
            if dx is not None and dcols_buf is not None:
                dcols = np.matmul(wmat.T, gb, out=dcols_buf[:k * m * p].reshape(k, m * p))
                col2im(dcols, (m, c, hp, wp), self.kernel_size, self.stride, (oh, ow),
                       out=dx[n0:n0 + m])
        if g_buf is not None:
            self._y = g_buf
        if dcols_buf is not None:
            self._dcols = dcols_buf
        if dx is None:
            return None
        ph, pw = self.padding
        return dx[:, :, ph:hp - ph, pw:wp - pw]


#: PyTorch's name (same arguments in the same order, and torch's (out, in, kh, kw) weight).
Conv2d = Conv2D
