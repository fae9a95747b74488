"""``Layer``: the base class of everything with a forward and a backward pass.

The contract
------------
You write two plain methods; minidl calls them and never rewrites them:

- ``forward(x)`` computes the output and caches what ``backward`` needs.
- ``backward(grad_out)`` takes dL/d(output) for the most recent forward pass, **sets** the
  ``.grad`` of this layer's parameters to dL/d(parameter) for that pass, and returns dL/d(input).

Callers run them through two entry points, as torch runs ``module(x)`` rather than
``module.forward(x)``:

- ``layer(x)`` runs ``forward(x)``;
- ``layer.backprop(grad_out, input_grad=True)`` runs ``backward(grad_out)``, then marks the
  layer's own parameters as having a gradient (:attr:`Parameter.has_grad`: an exactly-zero
  gradient set by a backward pass still counts for the optimizer).

The outermost of these calls records its layer as the model being run, so an error raised
inside names the path of the layer at fault in that model (:meth:`describe`). Containers call
their sub-layers the same way (``layer(x)``, ``layer.backprop(g)``), so the bookkeeping is one
frame between a container and your method. Calling ``forward`` or ``backward`` directly
computes the same numbers without that bookkeeping (minidl's containers, called so, go through
their own entry point first, so their error paths stay whole).

``input_grad=False`` says the caller has no use for dL/d(input), as autograd knows when the
input does not require a gradient: the parameters' gradients must be the same, and a layer may
skip the input gradient and return None. Inside ``backward``, :attr:`Layer.needs_input_grad`
tells it (Dense and Conv2D skip it, a third of the first layer's matrix products, and
containers skip the layers before their first one with parameters); ``fit`` passes it. A layer
that ignores the question is correct, only slower, and a ``super().backward(grad_out)`` inside
yours sees the same answer.

Gradients are *set, not accumulated*: calling ``backward`` twice with the same ``grad_out``
leaves the same gradients as calling it once (micrograd's issue #53 is the trap this avoids).
To accumulate over several batches, add the gradients up yourself between calls, or average the
loss over a bigger batch. The gradients are written into the preallocated ``Parameter.grad``
arrays, in place.

Structure
---------
Assigning a :class:`~minidl.Parameter`, a ``Layer`` or a ``numpy.random.Generator`` to an
attribute registers it, in assignment order, so ``parameters()`` walks a model in forward order
(a layer's own parameters in the order it assigned them, then its sub-layers in the order they
were assigned). Arrays that are state but not trained (BatchNorm's running statistics) are
registered with :meth:`register_buffer`. ``state_dict()`` holds parameters and buffers under
dotted paths such as ``"0.weight"`` or ``"rest.dense.bias"``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .errors import BackwardBeforeForward, ShapeError, StateDictError
from .init import INITIALIZERS
from .parameter import Parameter
from .validation import check_bool

#: Every Layer subclass by :func:`registered_name`, so a model can be rebuilt from its config.
LAYER_REGISTRY: dict[str, type[Layer]] = {}


def registered_name(cls: type) -> str:
    """The name a layer class has in configs: the bare class name for minidl's own layers
    (``"Dense"``), ``module.qualname`` for everyone else's (``"mypkg.layers.Scale"``), so a
    user class never shadows a built-in one of the same name."""
    if cls.__module__ == "minidl" or cls.__module__.startswith("minidl."):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


class Layer:
    """Base class of layers, activations and containers. See the module docstring."""

    #: Names of constructor arguments a subclass reports in :meth:`get_config`.
    _config_keys: ClassVar[tuple[str, ...]] = ()

    # Set in __init__ (through object.__setattr__, before registration exists); declared here
    # for type checkers.
    _params: dict[str, Parameter]
    _buffers: dict[str, None]
    _layers: dict[str, Layer]
    _rngs: dict[str, np.random.Generator]
    training: bool

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYER_REGISTRY[registered_name(cls)] = cls
        _refuse_declared_input_grad(cls)

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_layers", {})
        object.__setattr__(self, "_rngs", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                f"attributes (while setting {name!r})"
            )
        kind = (self._params if isinstance(value, Parameter) else
                self._layers if isinstance(value, Layer) else
                self._rngs if isinstance(value, np.random.Generator) else None)
        for registry in (self._params, self._layers, self._rngs):
            if registry is not kind:
                registry.pop(name, None)  # same kind: re-assigning keeps the position
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Layer):
            if value is self:
                raise ValueError(f"a layer cannot contain itself (attribute {name!r})")
            self._layers[name] = value
        elif isinstance(value, np.random.Generator):
            self._rngs[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Register a non-trainable array (saved in the state dict, converted by ``astype``)."""
        object.__setattr__(self, name, array)
        self._buffers[name] = None  # the value lives in the attribute; this keeps the order

    @property
    def path(self) -> str:
        """Dotted path of this layer inside the model running a forward or backward pass now
        ("" for that model itself, or outside a pass). Found by walking that model, so it is
        never out of date, even for a layer that has been put into another model since."""
        root = _RUNNING.get()
        if root is None or root is self:
            return ""
        for path, layer in root._walk():
            if layer is self:
                return path
        return ""

    @property
    def needs_input_grad(self) -> bool:
        """Whether the running ``backward`` must return dL/d(input): False when it was called
        with ``input_grad=False`` (torch's ``ctx.needs_input_grad``). A layer may then skip that
        product and return None; ignoring it is correct, only slower."""
        return _NO_INPUT_GRAD.get() is not self

    def has_parameters(self) -> bool:
        """Whether this layer or a sub-layer holds a parameter."""
        return any(layer._params for _, layer in self._walk())

    def describe(self) -> str:
        """``repr`` of the layer plus where it sits in the model being run, for error messages."""
        where = self.path
        return f"{self!r} at '{where}'" if where else repr(self)

    # ------------------------------------------------------------------ walking the tree
    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """This layer and every sub-layer, depth first in forward order, with dotted paths.

        A layer may appear only once in a model: layers cache their last forward pass and set
        (not accumulate) their gradients, so a layer used twice would silently get the
        gradient of its last use only. Reusing one raises a ``ValueError`` naming both places.
        """
        seen: dict[int, str] = {}
        for path, layer in self._walk(prefix):
            _refuse_shared(seen, layer, path, lambda first, again, layer=layer: (
                f"{layer!r} appears twice in the model, at '{first}' and '{again}'; a layer "
                f"caches one forward pass and sets its gradients, so it cannot be shared: use "
                f"two layers"))
            yield path, layer

    def _walk(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """Every layer with its dotted path, depth first in forward order, without checks."""
        stack = [(prefix, self)]
        while stack:
            path, layer = stack.pop()
            yield path, layer
            children = [(f"{path}.{name}" if path else name, child)
                        for name, child in layer._layers.items()]
            stack.extend(reversed(children))

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """PyTorch's name for :meth:`named_layers`: this layer under ``prefix`` (``""``), then
        every sub-layer with its dotted path, in the same order."""
        return self.named_layers(prefix)

    def modules(self) -> Iterator[Layer]:
        """PyTorch's name: this layer and every sub-layer, in :meth:`named_layers`' order."""
        for _, layer in self.named_layers():
            yield layer

    def children(self) -> Iterator[Layer]:
        """The direct sub-layers, in the order they were assigned."""
        yield from self._layers.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted path, in forward order.

        As for layers, a parameter may belong to one place only (each layer *sets* its
        parameters' gradients, so a tied weight would keep the gradient of one use): sharing
        one raises a ``ValueError`` naming both paths.
        """
        seen: dict[int, str] = {}
        for layer_path, layer in self.named_layers(prefix):
            for name, param in layer._params.items():
                path = f"{layer_path}.{name}" if layer_path else name
                _refuse_shared(seen, param, path, lambda first, again, param=param: (
                    f"parameter {param!r} is shared by '{first}' and '{again}'; layers set (not "
                    f"accumulate) gradients, so weights cannot be tied: give each layer its own "
                    f"Parameter"))
                yield path, param

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter, in forward order (e.g. Dense: weight, then bias)."""
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for layer_path, layer in self.named_layers(prefix):
            for name in layer._buffers:
                yield (f"{layer_path}.{name}" if layer_path else name), getattr(layer, name)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def summary(self, input_shape=None, file=None) -> None:
        """Print a Keras-like table of the layers (with their dotted paths), their output
        shapes and parameter counts, and the totals. Output shapes come from one forward pass
        on a copy of the model, over zeros of ``input_shape`` (without the batch axis, e.g.
        ``(784,)``) or, if not given, of the shape of the last input the model was called on;
        with neither they print as ``?``. See :mod:`minidl.summary`."""
        from .summary import summary  # summary.py imports this module

        summary(self, input_shape, file)

    # ------------------------------------------------------------------ modes and gradients
    def zero_grad(self) -> None:
        for param in self.parameters():
            param.zero_grad()

    def train(self, mode: bool = True) -> Layer:
        """Put this layer and all sub-layers in training mode (``mode=False``: evaluation)."""
        for _, layer in self.named_layers():
            object.__setattr__(layer, "training", bool(mode))
        return self

    def eval(self) -> Layer:
        """Put this layer and all sub-layers in evaluation mode."""
        return self.train(False)

    def astype(self, dtype) -> Layer:
        """Convert every parameter, gradient and floating buffer to ``dtype``, in one call.

        This allocates new arrays: convert the model *before* creating its optimizer.
        """
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"{type(self).__name__}.astype: dtype must be floating, got {dtype}")
        for param in self.parameters():
            param.astype(dtype)
        for _, layer in self.named_layers():
            for name in layer._buffers:
                buf = getattr(layer, name)
                if np.issubdtype(buf.dtype, np.floating):
                    object.__setattr__(layer, name, buf.astype(dtype))
            if "dtype" in layer.__dict__:
                object.__setattr__(layer, "dtype", dtype)
        return self

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of copies of every parameter and buffer, keyed by dotted path."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        for name, buf in self.named_buffers():
            state[name] = np.array(buf, copy=True)
        return state

    def state_dict_problems(self, state: dict[str, np.ndarray],
                            strict: bool = True) -> list[str]:
        """What would stop ``load_state_dict(state, strict=strict)``: missing or unexpected
        keys (when ``strict``), wrong shapes, non-numeric values. An empty list means it would
        succeed. Changes nothing."""
        targets = self._state_targets()
        problems = []
        missing, unexpected = _key_differences(targets, state)
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        for key, current in targets.items():
            if key in state:
                value = np.asarray(state[key])
                if value.shape != current.shape:
                    problems.append(
                        f"'{key}': expected shape {current.shape}, got {value.shape}"
                    )
                elif value.dtype.kind not in "biuf":
                    problems.append(f"'{key}': expected numbers, got dtype {value.dtype}")
        return problems

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> LoadResult:
        """Copy arrays from ``state`` into this model, in place, and return the
        ``(missing_keys, unexpected_keys)`` pair, as ``torch.nn.Module.load_state_dict`` does.

        ``strict=True`` (the default): every key must be present and none may be unknown.
        ``strict=False`` loads the keys both sides have and reports the others. Either way
        every value loaded must be numeric with the right shape; otherwise a
        :class:`~minidl.errors.StateDictError` lists all the problems
        (:meth:`state_dict_problems`) and nothing is changed. Values are cast to the dtype of
        the array they are copied into.
        """
        problems = self.state_dict_problems(state, strict=strict)
        if problems:
            raise StateDictError(
                f"cannot load state dict into {type(self).__name__}: " + "; ".join(problems)
            )
        targets = self._state_targets()
        for key, current in targets.items():
            if key in state:
                np.copyto(current, np.asarray(state[key]), casting="unsafe")
        return LoadResult(*_key_differences(targets, state))

    def _state_targets(self) -> dict[str, np.ndarray]:
        targets = {key: param.data for key, param in self.named_parameters()}
        targets.update(self.named_buffers())
        return targets

    # ------------------------------------------------------------------ randomness
    def rng_state(self) -> dict[str, dict[str, Any]]:
        """The bit-generator state of every Generator held by this model, by dotted path."""
        states: dict[str, dict[str, Any]] = {}
        for layer_path, layer in self.named_layers():
            for name, rng in layer._rngs.items():
                key = f"{layer_path}.{name}" if layer_path else name
                states[key] = dict(rng.bit_generator.state)  # a dict (the stub says Mapping)
        return states

    def set_rng_state(self, states: dict[str, dict]) -> None:
        """Restore what :meth:`rng_state` returned (strict about the set of keys)."""
        own = {}
        for layer_path, layer in self.named_layers():
            for name, rng in layer._rngs.items():
                own[f"{layer_path}.{name}" if layer_path else name] = rng
        if set(own) != set(states):
            raise StateDictError(
                f"random state keys differ: model has {sorted(own)}, got {sorted(states)}"
            )
        for key, rng in own.items():
            rng.bit_generator.state = states[key]

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """JSON-compatible constructor arguments, enough to rebuild the layer (not its weights)."""
        unknown = [
            name for name in _init_args(type(self))
            if name not in self._config_keys and name != "rng"
        ]
        if unknown:
            raise NotImplementedError(
                f"{type(self).__name__} does not define get_config() (or _config_keys) for the "
                f"constructor arguments {unknown}; define it to make the layer rebuildable"
            )
        return {key: _jsonable(getattr(self, key)) for key in self._config_keys}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`get_config`. A layer that takes ``rng`` gets seed 0, and
        one whose ``init`` was a callable (None in the config) starts from zeros: its weights
        and random state are meant to be loaded afterwards."""
        config = dict(config)
        args = _init_args(cls)
        if "rng" in args and "rng" not in config:
            config["rng"] = 0
        if "init" in args and config.get("init", "zeros") not in INITIALIZERS:
            config["init"] = "zeros"  # a custom initialiser: the weights are loaded afterwards
        return cls(**config)

    # ------------------------------------------------------------------ protocol
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run :meth:`forward` (torch's ``module(x)``). The outermost call records this layer
        as the model being run, for the paths in error messages, and the shape of its input
        (without the batch axis), which :meth:`summary` falls back on."""
        if _RUNNING.get() is not None:
            return self.forward(x)
        object.__setattr__(self, "_input_shape", tuple(np.shape(x)[1:]))
        token = _RUNNING.set(self)
        try:
            return self.forward(x)
        finally:
            _RUNNING.reset(token)

    def backprop(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Run :meth:`backward` on ``grad_out`` (dL/d(output) of the last forward pass) and
        return dL/d(input), or None when ``input_grad=False`` and the layer skipped it (see the
        module docstring). Afterwards this layer's own parameters count as having a gradient
        (:attr:`Parameter.has_grad`), whatever its values. As in :meth:`__call__`, the
        outermost call records the model being run, for error paths."""
        if type(input_grad) is not bool:
            input_grad = check_bool(self.describe(), "input_grad", input_grad)
        token = _RUNNING.set(self) if _RUNNING.get() is None else None
        asked = _NO_INPUT_GRAD.set(None if input_grad else self)  # per thread, nests
        try:
            grad_in = self.backward(grad_out)
        finally:
            _NO_INPUT_GRAD.reset(asked)
            if token is not None:
                _RUNNING.reset(token)
        for param in self._params.values():  # backward set these gradients: they count, even 0
            param.mark_grad()
        return grad_in

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except NotImplementedError:
            return f"{type(self).__name__}()"
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ helpers for subclasses
    def _cache(self, name: str):
        """Return a value saved by forward, or raise a clear error if forward has not run."""
        value = self.__dict__.get(name)
        if value is None:
            raise BackwardBeforeForward(
                f"{self.describe()}: backward() called before forward(); run a forward pass first"
            )
        return value

    def _check_grad_out(self, grad_out, expected_shape: tuple[int, ...]) -> np.ndarray:
        grad_out = np.asarray(grad_out)
        if grad_out.dtype.kind not in "biuf":  # a complex gradient would lose its imaginary part
            raise ValueError(f"{self.describe()}: backward() got grad_out of dtype "
                             f"{grad_out.dtype}; it must be real")
        if grad_out.shape != tuple(expected_shape):
            raise ShapeError(
                f"{self.describe()}: backward() got grad_out of shape {grad_out.shape}, but the "
                f"last forward() returned shape {tuple(expected_shape)}"
            )
        return grad_out


def _refuse_shared(seen: dict[int, str], item, path: str, message) -> None:
    """Record that ``item`` sits at ``path``; if it was met before, raise a ``ValueError``
    with ``message(first_path, path)``. Layers cache one forward pass and *set* the gradients
    of their parameters, so a layer or parameter used twice would keep one use's gradient."""
    if id(item) in seen:
        raise ValueError(message(seen[id(item)], path))
    seen[id(item)] = path


#: The model whose forward or backward pass is running (the outermost call), for error paths.
_RUNNING: ContextVar[Layer | None] = ContextVar("minidl_running_model", default=None)
#: The layer whose running ``backprop`` was called with ``input_grad=False``.
_NO_INPUT_GRAD: ContextVar[Layer | None] = ContextVar("minidl_no_input_grad", default=None)


def _refuse_declared_input_grad(cls: type) -> None:
    """Before 0.2 a ``backward`` could declare an ``input_grad`` parameter and was handed the
    caller's answer; ``backprop`` now calls ``backward(grad_out)`` alone and the answer is
    :attr:`Layer.needs_input_grad`. Said once, when the class is defined (never on the call
    path): an error if the parameter has no default (every call would fail), a warning if it
    has one (it would always keep its default)."""
    backward = cls.__dict__.get("backward")
    if not callable(backward):  # inherited (checked where it was defined), or not a method
        return
    try:
        declared = inspect.signature(backward).parameters.get("input_grad")
    except (TypeError, ValueError):  # a callable without a signature to read
        return
    if declared is None:
        return
    advice = (f"{cls.__qualname__}.backward declares an 'input_grad' parameter, which minidl "
              f"no longer passes: backprop() calls backward(grad_out) and the caller's answer "
              f"is self.needs_input_grad")
    if declared.default is inspect.Parameter.empty:
        raise TypeError(advice + "; remove the parameter")
    warnings.warn(advice + f" (here it always keeps its default, {declared.default!r})",
                  DeprecationWarning, stacklevel=3)


class LoadResult(NamedTuple):
    """What :meth:`Layer.load_state_dict` did not match: keys the model has that the state
    lacks, and keys the state has that the model lacks."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _key_differences(targets: dict, state: dict) -> tuple[list[str], list[str]]:
    return [k for k in targets if k not in state], [k for k in state if k not in targets]


def _init_args(cls: type) -> list[str]:
    params = inspect.signature(cls).parameters  # the constructor's, without self
    return [
        name for name, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, Layer):
        return value.__name__
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def model_dtype(model: Layer) -> np.dtype:
    """The dtype of the model's parameters (float64 for a model without any)."""
    for param in model.parameters():
        return param.dtype
    return np.dtype(np.float64)


def as_float_array(x, dtype, who: Layer) -> np.ndarray:
    """``x`` as an array of ``dtype``; a clear error names ``who`` if it is not numeric."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{who.describe()}: expected a numeric array, got dtype {arr.dtype}"
        )
    if dtype is None:
        dtype = arr.dtype if arr.dtype.kind == "f" else np.float64
    return arr.astype(dtype, copy=False)
