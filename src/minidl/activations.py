"""Activations: parameter-free layers applied element by element (Softmax: along one axis).

A subclass of :class:`Activation` writes only its maths: ``function(x)`` and
``vjp(x, y, grad_out)``, the vector-Jacobian product: dL/dx = J^T dL/dy, given
y = function(x) and grad_out = dL/dy. For an element-wise function that is
``grad_out * f'(x)``; for Softmax the Jacobian is not diagonal. The base class caches x and y,
checks shapes and raises if backward comes before forward.

Changed in 0.2: the method was called ``derivative`` (it always returned the product, not the
derivative). A subclass that still defines ``derivative`` keeps working: it is used as
``vjp``, with a ``DeprecationWarning`` naming the class when the class is defined.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from .errors import ShapeError
from .layer import Layer, as_float_array
from .validation import check_number


class Activation(Layer):
    """A parameter-free layer. Subclasses implement ``function`` and ``vjp``.

    This is the base class, not Keras's ``Activation("relu")`` layer: build an activation by
    name with :func:`get_activation` (``md.get_activation("relu")``), or by its class
    (``md.ReLU()``). ``md.Activation("relu")`` raises a ``TypeError`` saying so.
    """

    def __new__(cls, *args, **kwargs):
        if cls is Activation and (args or kwargs):  # Keras's Activation("relu")
            call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
            named = ACTIVATIONS.get(args[0].lower()) if args and isinstance(args[0], str) else None
            also = f" or md.{named.__name__}()" if named is not None else ""
            raise TypeError(
                f"md.Activation is the base class of activations (subclass it with function and "
                f"vjp); for Keras's Activation({call}) call md.get_activation({call}){also}")
        return super().__new__(cls)

    # what inspect.signature (help(), the reference pages, get_config's check) shows for an
    # activation without an __init__ of its own: no arguments, as before, not (*args, **kwargs)
    __new__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)])

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("derivative")
        if legacy is not None and "vjp" not in cls.__dict__:
            warnings.warn(
                f"{cls.__module__}.{cls.__qualname__} defines derivative(x, y, grad_out); "
                f"rename it vjp(x, y, grad_out) (it returns the vector-Jacobian product "
                f"dL/dx): derivative is deprecated and will be removed",
                DeprecationWarning, stacklevel=2,
            )
            cls.vjp = legacy

    def __init__(self):
        super().__init__()
        self._x = None
        self._y = None

    def function(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement function")

    def vjp(self, x: np.ndarray, y: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """dL/dx = J^T grad_out, for y = function(x) and grad_out = dL/dy."""
        raise NotImplementedError(f"{type(self).__name__} does not implement vjp")

    def derivative(self, x: np.ndarray, y: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """Deprecated name of :meth:`vjp`."""
        warnings.warn(f"{type(self).__name__}.derivative is deprecated; call vjp",
                      DeprecationWarning, stacklevel=2)
        return self.vjp(x, y, grad_out)

    def forward(self, x):
        x = as_float_array(x, None, self)
        y = self.function(x)
        self._x, self._y = x, y
        return y

    def backward(self, grad_out):
        x = self._cache("_x")
        g = self._check_grad_out(grad_out, x.shape).astype(x.dtype, copy=False)
        return self.vjp(x, self._y, g)


class Identity(Activation):
    """y = x;  dy/dx = 1."""

    def function(self, x):
        return x

    def vjp(self, x, y, grad_out):
        return grad_out


class Tanh(Activation):
    """y = tanh(x);  dy/dx = 1 - y^2."""

    def function(self, x):
        return np.tanh(x)

    def vjp(self, x, y, grad_out):
        return grad_out * (1 - y * y)


class ReLU(Activation):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)."""

    def function(self, x):
        return np.maximum(x, 0)

    def vjp(self, x, y, grad_out):
        return grad_out * (x > 0)


class LeakyReLU(Activation):
    """y = x where x > 0, else negative_slope * x;  dy/dx = 1 or negative_slope."""

    _config_keys = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        check_number("LeakyReLU", "negative_slope", negative_slope)
        self.negative_slope = float(negative_slope)

    def function(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope))

    def vjp(self, x, y, grad_out):
        return grad_out * np.where(x > 0, 1, self.negative_slope).astype(grad_out.dtype)


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)), computed without overflow;  dy/dx = y (1 - y)."""

    def function(self, x):
        return sigmoid(x)

    def vjp(self, x, y, grad_out):
        return grad_out * y * (1 - y)


class Softmax(Activation):
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``axis`` (numerically stable).
    ``dim`` is torch's name for ``axis`` (``Softmax(dim=-1)``); pass one of them.

    Backward: dx = y * (g - sum(g * y, axis)).
    """

    _config_keys = ("axis",)

    def __init__(self, axis: int = -1, *, dim: int | None = None):
        super().__init__()
        if dim is not None:
            if axis != -1:
                raise TypeError("Softmax: pass axis= or dim= (torch's name), not both")
            axis = dim
        self.axis = int(axis)

    def get_config(self):
        return {"axis": self.axis}  # dim is only another spelling of axis

    def function(self, x):
        if not -x.ndim <= self.axis < x.ndim:
            raise ShapeError(f"{self.describe()}: input of shape {x.shape} has no axis "
                             f"{self.axis}")
        if x.shape[self.axis] == 0:
            raise ShapeError(f"{self.describe()}: input of shape {x.shape} has no values along "
                             f"axis {self.axis} to normalise over")
        return softmax(x, self.axis)

    def vjp(self, x, y, grad_out):
        return y * (grad_out - np.sum(grad_out * y, axis=self.axis, keepdims=True))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, exact for large |x| (no overflow warning)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


#: The names :func:`get_activation` knows: Keras's (``"linear"`` is the identity) and
#: scikit-learn's (``"logistic"`` is the sigmoid).
ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity,
    "leaky_relu": LeakyReLU,
    "linear": Identity,
    "logistic": Sigmoid,
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "softmax": Softmax,
    "tanh": Tanh,
}


def get_activation(name: str, **kwargs) -> Activation:
    """A new activation layer by name, as Keras's ``Activation("relu")`` builds one: ``name`` is
    one of :data:`ACTIVATIONS` (case-insensitive), ``kwargs`` go to its class, e.g.
    ``get_activation("leaky_relu", negative_slope=0.2)``."""
    cls = ACTIVATIONS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))} "
                         f"(or build one by its class, e.g. md.ReLU())")
    return cls(**kwargs)


__all__ = ["ACTIVATIONS", "Activation", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Softmax",
           "Tanh", "get_activation"]
