"""Property-based gradient tests for your own layers and losses, on hypothesis.

One line in your pytest suite checks every gradient of a :class:`~minidl.Layer` or
:class:`~minidl.Loss` class against finite differences (:func:`minidl.gradcheck`): the input
gradient and each parameter gradient, in training and in evaluation mode, over random shapes,
values and seeds::

    from minidl.testing import IN, OUT, RNG, gradcheck_property

    test_my_dense = gradcheck_property(MyDense, IN, OUT, rng=RNG)
    test_my_relu = gradcheck_property(MyReLU, inputs="off_kinks")
    test_my_loss = gradcheck_property(MyLoss, target="normal")

Constructor arguments are given as they would be to the class; any of them may be a hypothesis
strategy (drawn afresh for each example) or a marker: :data:`IN` (the input width drawn for the
example), :data:`OUT` (an output width) or :data:`RNG` (a ``numpy.random.Generator`` seeded from
the example's seed). The same strategies serve hand-written properties: :data:`batch_sizes`,
:data:`widths`, :data:`seeds`, :func:`shapes`, :func:`batches`, and the value makers
:func:`normal`, :func:`off_kinks`, :func:`away_from_zero`, :func:`spread_columns`,
:func:`probabilities`.

Values are drawn by a NumPy Generator seeded by a hypothesis-drawn seed, so that examples are
well-conditioned floats (hypothesis' own floats would spend their budget on denormals and
infinities, which finite differences cannot use); shapes and seeds shrink as hypothesis does.

hypothesis is an optional dependency (``pip install -e ".[testing]"`` from a clone of
minidl); ``import minidl`` never imports it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "minidl.testing needs hypothesis: pip install -e '.[testing]' from your clone of minidl"
    ) from exc

from .errors import GradcheckError
from .gradcheck import gradcheck
from .layer import Layer
from .losses import Loss
from .validation import check_int, check_number

# ---------------------------------------------------------------------- strategies
#: Batch sizes 1..8: small, so that a full finite-difference check stays quick.
batch_sizes = st.integers(min_value=1, max_value=8)
#: Feature widths 1..16.
widths = st.integers(min_value=1, max_value=16)
#: Seeds for ``numpy.random.default_rng``.
seeds = st.integers(min_value=0, max_value=2**32 - 1)


#: The most dimensions :func:`shapes` draws (NumPy 1's limit).
MAX_DIMS = 32
#: The most values a shape of :func:`shapes` may hold.
MAX_VALUES = 10**8


def shapes(min_dims: int = 2, max_dims: int = 2, min_side: int = 1,
           max_side: int = 8) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes ``(batch, ...)`` of ``min_dims``..``max_dims`` dimensions, each side in
    [min_side, max_side]. Bounded so that every shape is an array a test can make: at most
    :data:`MAX_DIMS` dimensions and :data:`MAX_VALUES` values."""
    for name, value in (("min_dims", min_dims), ("max_dims", max_dims), ("min_side", min_side),
                        ("max_side", max_side)):
        check_int("shapes", name, value, low=0)
    if not 1 <= min_dims <= max_dims <= MAX_DIMS:
        raise ValueError(f"shapes: need 1 <= min_dims <= max_dims <= {MAX_DIMS}, got "
                         f"{min_dims}, {max_dims}")
    if min_side > max_side:
        raise ValueError(f"shapes: need min_side <= max_side, got {min_side}, {max_side}")
    if max_side ** max_dims > MAX_VALUES:
        raise ValueError(f"shapes: arrays of up to max_side ** max_dims = {max_side} ** "
                         f"{max_dims} values; keep it at most {MAX_VALUES:,} (an example must "
                         f"fit in memory, and finite differences run once per value)")
    side = st.integers(min_side, max_side)
    return st.integers(min_dims, max_dims).flatmap(
        lambda n: st.tuples(*([side] * n)))


def batches(shape=None, values: str | Callable = "normal") -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` (a tuple, a strategy of tuples, or None for ``(batch,
    width)``), filled by ``values``: a name (``"normal"``, ``"off_kinks"``, ``"spread"``,
    ``"probabilities"``) or a function ``values(rng, shape)``."""
    make = _values(values, "batches")
    if shape is None:
        shape = st.tuples(batch_sizes, widths)
    elif not isinstance(shape, st.SearchStrategy):
        shape = st.just(_shape("batches", shape))
    return st.builds(lambda s, seed: make(np.random.default_rng(seed), s), shape, seeds)


# ---------------------------------------------------------------------- values
def _shape(who: str, shape) -> tuple[int, ...]:
    """``shape`` as a tuple of ints >= 0 (an int is a 1-d shape), or a clear ValueError."""
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise ValueError(f"{who}: shape must be a tuple of ints >= 0, got {shape!r}") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
               for d in dims):
        raise ValueError(f"{who}: shape must be a tuple of ints >= 0, got {shape!r}")
    return tuple(int(d) for d in dims)


def normal(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    """Standard normal values times ``scale``."""
    shape = _shape("normal", shape)
    check_number("normal", "scale", scale)
    return rng.standard_normal(shape) * scale


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.05) -> np.ndarray:
    """Values at least ``margin`` from 0: for ReLU-like layers, whose kink breaks finite
    differences (the step is 1e-6, so any margin well above it will do)."""
    shape = _shape("away_from_zero", shape)
    _positive("away_from_zero", "margin", margin)
    z = rng.standard_normal(shape)
    return np.sign(z + (z == 0)) * (np.abs(z) + margin)


def off_kinks(rng: np.random.Generator, shape, kinks: Sequence[float] = (0.0,),
              margin: float = 0.05) -> np.ndarray:
    """Normal values at least ``margin`` from each of ``kinks`` (the points where a
    piecewise function is not differentiable: 0 for ReLU, -1 and 1 for a hard tanh). A value
    that falls closer is pushed out to ``kink +- margin``, on its own side."""
    shape = _shape("off_kinks", shape)
    _positive("off_kinks", "margin", margin)
    for k in kinks:
        check_number("off_kinks", "kinks", k)
    kinks = sorted(float(k) for k in kinks)
    if any(b - a <= 2 * margin for a, b in itertools.pairwise(kinks)):
        raise ValueError(f"off_kinks: kinks {kinks} must lie more than 2 * margin = "
                         f"{2 * margin} apart")
    if kinks == [0.0]:
        return away_from_zero(rng, shape, margin)
    z = rng.standard_normal(shape)
    for k in kinks:
        d = z - k
        close = np.abs(d) < margin
        z[close] = k + np.where(d[close] >= 0, margin, -margin)
    return z


def spread_columns(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(n, d) values whose every column has a clear spread (std well above 0), so that batch
    normalisation in training mode is well conditioned even for n = 2."""
    base = np.linspace(-1.0, 1.0, n)
    cols = [rng.permutation(base) * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1) for _ in range(d)]
    return np.stack(cols, axis=1) + 0.05 * rng.standard_normal((n, d))


def distinct(rng: np.random.Generator, shape, gap: float = 0.01) -> np.ndarray:
    """Values at least ``gap`` apart from each other, in random order: for max pooling, whose
    choice of maximum must not flip under the finite-difference step (1e-6)."""
    shape = _shape("distinct", shape)
    _positive("distinct", "gap", gap)
    size = int(np.prod(shape))
    return (rng.permutation(size) * gap - size * gap / 2).reshape(shape)


def probabilities(rng: np.random.Generator, shape, low: float = 0.05,
                  high: float = 0.95) -> np.ndarray:
    """Uniform values in [low, high]: probabilities kept off 0 and 1."""
    shape = _shape("probabilities", shape)
    check_number("probabilities", "low", low, low=0.0, high=1.0)
    check_number("probabilities", "high", high, low=0.0, high=1.0)
    if low >= high:
        raise ValueError(f"probabilities: need low < high, got {low!r}, {high!r}")
    return rng.uniform(low, high, shape)


def _positive(owner: str, name: str, value) -> None:
    check_number(owner, name, value, low=0.0)
    if value == 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")


def _spread(rng, shape):
    if len(shape) != 2:
        raise ValueError(f"inputs='spread' makes (N, D) arrays, but the input shape is {shape}")
    return spread_columns(rng, *shape)


INPUTS: dict[str, Callable] = {
    "normal": normal,
    "off_kinks": off_kinks,
    "spread": _spread,
    "probabilities": probabilities,
}


def _values(values, who: str) -> Callable:
    if callable(values):
        return values
    if values not in INPUTS:
        raise ValueError(f"{who}: values must be one of {sorted(INPUTS)} or a function "
                         f"(rng, shape) -> array, got {values!r}")
    return INPUTS[values]


# ---------------------------------------------------------------------- targets of losses
def _target_normal(rng, pred):
    return rng.standard_normal(pred.shape)


def _target_binary(rng, pred):
    return rng.integers(0, 2, pred.shape)


def _target_labels(rng, pred):
    return rng.integers(0, pred.shape[-1], pred.shape[:-1])


def _target_one_hot(rng, pred):
    return np.eye(pred.shape[-1])[_target_labels(rng, pred)]


TARGETS: dict[str, Callable] = {
    "normal": _target_normal,
    "binary": _target_binary,
    "labels": _target_labels,
    "one_hot": _target_one_hot,
}


# ---------------------------------------------------------------------- the property
class _Marker:
    def __init__(self, name: str, doc: str):
        self.name, self.__doc__ = name, doc

    def __repr__(self) -> str:
        return f"minidl.testing.{self.name}"


#: The input width of the example: the last dimension of the default input shape ``(batch,
#: IN)``, and wherever it appears in the constructor's arguments.
IN = _Marker("IN", "The input width drawn for the example.")
#: An output width drawn for the example (from :data:`widths`).
OUT = _Marker("OUT", "An output width drawn for the example.")
#: A ``numpy.random.Generator`` for the constructor, seeded from the example's seed.
RNG = _Marker("RNG", "A numpy Generator seeded from the example's seed.")

MODES = ("train", "eval")


def gradcheck_property(cls: Callable[..., Layer | Loss], *args: Any,
                       input_shape: Sequence = (batch_sizes, IN),
                       inputs: str | Callable = "normal",
                       target: str | Callable | None = None,
                       setup: Callable | None = None,
                       modes: Sequence[str] = MODES,
                       gradcheck_mode: str = "full",
                       atol: float = 1e-5, rtol: float = 1e-3,
                       max_examples: int | None = None,
                       **kwargs: Any) -> Callable[[], None]:
    """A pytest test (assign it to a name starting with ``test_``) that checks ``cls``'s
    gradients with :func:`minidl.gradcheck` over random shapes, values and seeds.

    For each hypothesis example: draw a seed, the widths :data:`IN` and :data:`OUT` and every
    strategy among ``args``/``kwargs``; build ``obj = cls(*args, **kwargs)`` (markers and
    strategies replaced by their values); call ``setup(obj, rng)`` if given (e.g. to set
    running statistics); draw the input of ``input_shape`` with ``inputs``; then

    - for a :class:`~minidl.Layer`: gradcheck the input and every parameter gradient, once per
      mode in ``modes`` (``obj.train()`` then ``obj.eval()``);
    - for a :class:`~minidl.Loss`: draw ``target`` for the prediction and gradcheck ``dL/dpred``.

    ``cls``: the class, or any function returning a Layer or a Loss. ``input_shape``: a tuple
    of ints, strategies and :data:`IN`/:data:`OUT` (the batch comes first). ``inputs``:
    ``"normal"``, ``"off_kinks"`` (at least 0.05 from 0, for ReLU-like kinks), ``"spread"``
    (columns with a clear spread: batch normalisation; use a batch of at least 2),
    ``"probabilities"`` (in [0.05, 0.95]), or a function ``(rng, shape) -> array``.
    ``target`` (losses only, required there): ``"normal"`` (same shape as the prediction),
    ``"binary"`` (0/1), ``"labels"`` (integers in [0, C) of shape (N,)), ``"one_hot"``, or a
    function ``(rng, pred) -> target``. ``gradcheck_mode``, ``atol``, ``rtol``: passed to
    :func:`minidl.gradcheck`. ``max_examples``: overrides the hypothesis profile's (for other
    settings, leave it out and decorate the result: ``settings(...)(gradcheck_property(...))``).

    A failure is hypothesis' minimal falsifying example, with the :class:`GradcheckError`
    naming the mode, the input shape, the tensor, the worst index and both values.
    """
    name = getattr(cls, "__name__", type(cls).__name__)
    who = f"gradcheck_property({name})"
    if not callable(cls) or isinstance(cls, (Layer, Loss)):
        raise TypeError(f"{who}: expected a Layer or Loss class (or a function building one), "
                        f"got {cls!r}" + (" (pass the class and its arguments, not an instance)"
                                          if isinstance(cls, (Layer, Loss)) else ""))
    make_inputs = _values(inputs, who)
    if target is not None and not callable(target) and target not in TARGETS:
        raise ValueError(f"{who}: target must be one of {sorted(TARGETS)} or a function "
                         f"(rng, pred) -> target, got {target!r}")
    modes = tuple(modes)
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"{who}: modes must be a non-empty subset of {MODES}, got {modes!r}")
    make_target = TARGETS.get(target, target) if isinstance(target, str) else target
    if isinstance(cls, type) and issubclass(cls, Loss) and target is None:
        raise TypeError(f"{who}: {name} is a Loss, so pass target= (one of {sorted(TARGETS)}, "
                        f"or a function (rng, pred) -> target)")
    shape_spec = tuple(input_shape)
    check_number(who, "atol", atol, low=0.0)
    check_number(who, "rtol", rtol, low=0.0)
    check_int(who, "max_examples", max_examples, low=1, allow_none=True)

    def draw(data, value, drawn):
        if isinstance(value, _Marker):
            return drawn[value.name]
        if isinstance(value, st.SearchStrategy):
            return data.draw(value)
        return value

    @given(data=st.data(), seed=seeds)
    def test(data, seed):
        build_seed, input_seed = np.random.SeedSequence(seed).spawn(2)
        drawn = {"IN": data.draw(widths, label="IN"), "OUT": data.draw(widths, label="OUT"),
                 "RNG": np.random.default_rng(build_seed)}
        obj = cls(*(draw(data, a, drawn) for a in args),
                  **{k: draw(data, v, drawn) for k, v in kwargs.items()})
        rng = np.random.default_rng(input_seed)
        if setup is not None:
            setup(obj, rng)
        shape = tuple(int(draw(data, s, drawn)) for s in shape_spec)
        x = np.asarray(make_inputs(rng, shape), dtype=np.float64)
        options = {"mode": gradcheck_mode, "atol": atol, "rtol": rtol}
        if isinstance(obj, Loss):
            if make_target is None:
                raise TypeError(f"{who}: {obj!r} is a Loss, so pass target= (one of "
                                f"{sorted(TARGETS)}, or a function (rng, pred) -> target)")
            _check(obj, (x, make_target(rng, x)), options, f"pred shape {shape}")
        elif isinstance(obj, Layer):
            for mode in modes:
                obj.train(mode == "train")
                _check(obj, x, options, f"{mode} mode, input shape {shape}")
        else:
            raise TypeError(f"{who}: building it gave {type(obj).__name__}, not a Layer or "
                            f"a Loss")

    if max_examples is not None:
        test = settings(max_examples=max_examples)(test)
    test.__name__ = test.__qualname__ = f"test_gradcheck_{name}"
    test.__doc__ = f"{name}: every gradient agrees with finite differences ({who})."
    return test


def _check(obj, inputs, options, where: str) -> None:
    try:
        gradcheck(obj, inputs, **options)
    except GradcheckError as exc:
        raise GradcheckError(f"{where}: {exc}") from None


__all__ = [
    "IN",
    "INPUTS",
    "MODES",
    "OUT",
    "RNG",
    "TARGETS",
    "away_from_zero",
    "batch_sizes",
    "batches",
    "distinct",
    "gradcheck_property",
    "normal",
    "off_kinks",
    "probabilities",
    "seeds",
    "shapes",
    "spread_columns",
    "widths",
]
