"""Containers: ``Sequential`` (layers in a row) and ``RecursiveMLP`` (a recursive MLP)."""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from .activations import Tanh
from .init import as_generator
from .layer import _RUNNING, LAYER_REGISTRY, Layer, registered_name
from .layers.dense import Dense
from .validation import check_bool, check_float_dtype, check_int


class Sequential(Layer):
    """Layers applied one after the other; backward runs them in reverse.

    Sub-layers are named ``"0"``, ``"1"``, ... in the state dict (``"0.weight"``).
    """

    @overload
    def __init__(self, *layers: Layer) -> None: ...
    @overload
    def __init__(self, layers: list[Layer] | tuple[Layer, ...], /) -> None: ...

    def __init__(self, *layers: Any) -> None:  # the overloads above; append checks each layer
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])  # Sequential([a, b]), as Keras writes it
        for layer in layers:
            self.append(layer)
        for _ in self.named_layers():  # refuses a layer given twice, naming both places
            pass

    def append(self, layer: Layer) -> Sequential:
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential: item {len(self)} is {type(layer).__name__}, not a Layer"
                + (" (pass an instance, e.g. Tanh(), not the class)"
                   if isinstance(layer, type) else "")
            )
        setattr(self, str(len(self)), layer)
        return self

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: int) -> Any:
        """The layer at ``index`` (negative counts from the end). Typed ``Any``, as a layer of
        any class may sit there: ``model[0].weight`` type-checks, as torch's does."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, (bool, np.bool_)):
            raise TypeError(
                f"Sequential indices must be integers, got {type(index).__name__} (a layer "
                f"belongs to one model, so slices that would share layers are not offered)"
            )
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"Sequential has {size} layers, no index {index}")
        return getattr(self, str(index % size))

    def __iter__(self):
        return iter(list(self.children()))

    def forward(self, x):
        if _RUNNING.get() is None:  # called directly: through the entry point, for error paths
            return self(x)
        for layer in self.children():
            x = layer(x)
        return x

    def backward(self, grad_out):
        if _RUNNING.get() is None:  # called directly: through the entry point, for error paths
            return self.backprop(grad_out)
        layers = list(self.children())
        first = 0
        if not self.needs_input_grad:  # as autograd: the layers before the first one with
            first = next((i for i, layer in enumerate(layers) if layer.has_parameters()),
                         len(layers))  # parameters need no gradient, so they do not run
        for i in range(len(layers) - 1, first - 1, -1):
            grad_out = layers[i].backprop(grad_out, i > first or self.needs_input_grad)
        return grad_out if first == 0 else None

    def get_config(self):
        return {"layers": [layer_config(layer) for layer in self.children()]}

    @classmethod
    def from_config(cls, config):
        return cls(*(build_layer(c) for c in config["layers"]))

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}".replace("\n", "\n  ")
                          for i, layer in enumerate(self.children()))
        return f"Sequential(\n{inner}\n)"


class RecursiveMLP(Layer):
    """A multi-layer perceptron defined recursively: one Dense layer, its activation, then the
    RecursiveMLP of the remaining sizes.

    ``RecursiveMLP([n0, n1, ..., nk])`` is ``Dense(n0, n1) -> activation -> RecursiveMLP([n1,
    ..., nk])``; with two sizes the rest is empty. Forward hands the activation to the rest;
    backward takes the rest's input gradient and carries it back through this level::

        forward(x)  = rest.forward(act(dense(x)))
        backward(g) = dense.backward(act.backward(rest.backward(g)))

    ``activation`` (a class such as ``Tanh``, or an instance that is copied) follows every hidden
    layer; ``output_activation`` follows the last one: ``"same"`` (default) reuses
    ``activation``, ``None`` leaves the output linear. It gives the same numbers as the
    equivalent ``Sequential`` built from the same ``rng``: weights are drawn level by level.

    The QA study's models::

        RecursiveMLP([2049, 64, 1], activation=Tanh, bias=False, init="lecun_normal", rng=seed)
        RecursiveMLP([2049, 1], activation=Tanh, bias=False, init="lecun_normal", rng=seed)
    """

    def __init__(self, layer_sizes, activation=Tanh, bias: bool = True,
                 init="glorot_uniform", output_activation="same", rng=None, dtype=np.float64):
        super().__init__()
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
            raise ValueError(f"RecursiveMLP: layer_sizes must be a list of positive ints (input, "
                             f"hidden..., output), got {layer_sizes!r}")
        sizes = [check_int("RecursiveMLP", f"layer_sizes[{i}]", s, low=1)
                 for i, s in enumerate(layer_sizes)]
        bias = check_bool("RecursiveMLP", "bias", bias)
        check_float_dtype("RecursiveMLP", dtype)
        if len(sizes) < 2:
            raise ValueError(
                f"RecursiveMLP: layer_sizes needs at least an input and an output size, got "
                f"{list(layer_sizes)}"
            )
        generator = as_generator(rng, "RecursiveMLP")
        activation = _activation_spec(activation)
        output_activation = (activation if _is_same(output_activation)
                             else _activation_spec(output_activation))
        last = len(sizes) == 2
        self.dense = Dense(sizes[0], sizes[1], bias=bias, init=init, rng=generator, dtype=dtype)
        act = output_activation if last else activation
        self.act = None if act is None else build_layer(act)
        self.rest = None
        if not last:
            self.rest = RecursiveMLP(sizes[1:], activation=activation, bias=bias, init=init,
                                     output_activation=output_activation, rng=generator,
                                     dtype=dtype)

    def forward(self, x):
        if _RUNNING.get() is None:  # called directly: through the entry point, for error paths
            return self(x)
        h = self.dense(x)
        if self.act is not None:
            h = self.act(h)
        return h if self.rest is None else self.rest(h)

    def backward(self, grad_out):
        if _RUNNING.get() is None:  # called directly: through the entry point, for error paths
            return self.backprop(grad_out)
        g = grad_out if self.rest is None else self.rest.backprop(grad_out)
        if self.act is not None:
            g = self.act.backprop(g)
        return self.dense.backprop(g, self.needs_input_grad)

    @property
    def depth(self) -> int:
        """Number of Dense layers."""
        return 1 if self.rest is None else 1 + self.rest.depth

    @property
    def layer_sizes(self) -> list[int]:
        rest = [self.dense.out_features] if self.rest is None else self.rest.layer_sizes
        return [self.dense.in_features, *rest]

    def get_config(self):
        """Read from the levels themselves (each level holds a Dense, its activation and the
        rest), so nothing is stored twice. With one level the hidden activation is never used
        and is reported as the output one."""
        dense = self.dense.get_config()
        act = None if self.act is None else layer_config(self.act)
        output = act if self.rest is None else self.rest.get_config()["output_activation"]
        return {
            "layer_sizes": self.layer_sizes,
            "activation": act,
            "bias": dense["bias"],
            "init": dense["init"],
            "output_activation": output,
            "dtype": dense["dtype"],
        }

    def __repr__(self):
        config = self.get_config()

        def name(spec):
            return None if spec is None else spec["class"]
        return (f"RecursiveMLP({config['layer_sizes']}, activation={name(config['activation'])}, "
                f"output_activation={name(config['output_activation'])}, "
                f"bias={config['bias']})")


def _is_same(spec) -> bool:
    return isinstance(spec, str) and spec == "same"


def _activation_spec(spec) -> dict | None:
    """An activation given as a class, an instance or a saved config, as a config dict."""
    if spec is None or isinstance(spec, dict):
        return spec
    if isinstance(spec, type) and issubclass(spec, Layer):
        spec = spec()
    if not isinstance(spec, Layer):
        raise TypeError(
            f"RecursiveMLP: an activation must be a Layer class (e.g. Tanh), an instance "
            f"(e.g. LeakyReLU(0.2)) or None, got {spec!r}"
        )
    if any(True for _ in spec.parameters()):
        raise ValueError(f"RecursiveMLP: the activation {spec!r} must not have parameters")
    return layer_config(spec)


def layer_config(layer: Layer) -> dict:
    """``{"class": name, "config": {...}}``: what :func:`build_layer` needs to rebuild it."""
    return {"class": registered_name(type(layer)), "config": layer.get_config()}


def build_layer(spec: dict) -> Layer:
    """Rebuild a layer (or a whole model) from :func:`layer_config`'s output."""
    name = spec.get("class") if isinstance(spec, dict) else None
    cls = LAYER_REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown layer class {name!r}: built-in layers have bare names ('Dense'), others "
            f"'module.QualName'; import the module that defines it first"
        )
    return cls.from_config(spec["config"])


__all__ = ["RecursiveMLP", "Sequential", "build_layer", "layer_config"]
