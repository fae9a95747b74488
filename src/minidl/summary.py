"""``model.summary()``: a Keras-like table of a model's layers, output shapes and sizes.

One row per layer that computes something itself: every layer without sub-layers (``Dense``,
``Tanh``, ...) and every layer that holds parameters of its own next to its sub-layers.
Containers that only hold other layers (``Sequential``, each level of ``RecursiveMLP``) have no
row; their layers appear under their dotted paths (``"0"``, ``"rest.dense"``), as in the state
dict. ``Param #`` counts a layer's own parameters and buffers (BatchNorm's running statistics),
so the rows add up to the totals.

Output shapes need one forward pass, which a minidl layer cannot know without running it. The
input shape (without the batch axis, as in Keras) is ``input_shape=`` if given, else the shape
of the last input the model was called on; with neither, shapes print as ``?``. The pass runs
on zeros of that shape, on a copy of the model in evaluation mode: the model itself, its
caches and its random state are untouched. The batch axis prints as ``N``.
"""

from __future__ import annotations

import copy
import sys

import numpy as np

from .layer import Layer, model_dtype
from .validation import check_int


def summary(model: Layer, input_shape=None, file=None) -> None:
    """Print the table described in the module docstring to ``file`` (default stdout)."""
    print(summary_table(model, input_shape), file=sys.stdout if file is None else file)


def summary_table(model: Layer, input_shape=None) -> str:
    """The table :func:`summary` prints."""
    if input_shape is None:
        input_shape = model.__dict__.get("_input_shape")
    else:
        input_shape = tuple(check_int("summary", f"input_shape[{i}]", d, low=1)
                            for i, d in enumerate(np.atleast_1d(input_shape).tolist()))
    shapes = {} if input_shape is None else _output_shapes(model, input_shape)
    rows = []
    for path, layer in model.named_layers():
        own = sum(p.size for p in layer._params.values())
        own += sum(np.size(getattr(layer, name)) for name in layer._buffers)
        if layer._layers and not own:
            continue  # a container: its layers have their own rows
        name = f"{path} ({type(layer).__name__})" if path else type(layer).__name__
        shape = shapes.get(path)
        rows.append((name, "?" if shape is None else _format_shape(shape), f"{own:,}"))
    trainable = model.num_parameters()
    buffers = sum(np.size(buf) for _, buf in model.named_buffers())
    header = ("Layer (path)", "Output shape", "Param #")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    rule = "-" * (sum(widths) + 4)

    def line(cells):
        return (f"{cells[0].ljust(widths[0])}  {cells[1].ljust(widths[1])}  "
                f"{cells[2].rjust(widths[2])}")
    lines = [f'Model: "{type(model).__name__}"', rule, line(header), rule.replace("-", "=")]
    lines += [line(r) for r in rows]
    lines += [rule, f"Total params: {trainable + buffers:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {buffers:,}" + (" (buffers)" if buffers else "")]
    if input_shape is None:
        lines.append("Output shapes unknown: pass input_shape= or call the model once.")
    return "\n".join(lines)


def _output_shapes(model: Layer, input_shape: tuple) -> dict[str, tuple]:
    """The output shape of every layer, by path, from a forward pass over zeros on a copy."""
    twin = copy.deepcopy(model)
    twin.eval()
    shapes: dict[str, tuple] = {}
    for path, layer in twin.named_layers():
        def recording(x, layer=layer, path=path):
            out = type(layer).forward(layer, x)
            shapes[path] = np.shape(out)
            return out
        object.__setattr__(layer, "forward", recording)
    try:
        twin(np.zeros((2, *input_shape), dtype=model_dtype(model)))
    except Exception as exc:
        raise ValueError(f"summary: cannot run {type(model).__name__} on an input of shape "
                         f"(N, {', '.join(map(str, input_shape))}): {exc}") from exc
    return shapes


def _format_shape(shape: tuple) -> str:
    return "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"


__all__ = ["summary", "summary_table"]
