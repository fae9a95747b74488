"""Weight initialisers.

Each initialiser is a function ``init(shape, rng, dtype) -> ndarray`` for a weight of shape
``(fan_in, fan_out)``. Layers accept an initialiser by name (``init="he_normal"``) or any
callable with that signature. ``rng`` is always an explicit ``numpy.random.Generator``.

========================  ======================================================================
name                      distribution
========================  ======================================================================
``"lecun_normal"``        N(0, 1) * sqrt(1 / fan_in): the QA study's initialisation
``"glorot_uniform"``      U(-a, a), a = sqrt(6 / (fan_in + fan_out))   (Glorot & Bengio, 2010)
``"glorot_normal"``       N(0, 1) * sqrt(2 / (fan_in + fan_out))
``"he_uniform"``          U(-a, a), a = sqrt(6 / fan_in)               (He et al., 2015)
``"he_normal"``           N(0, 1) * sqrt(2 / fan_in)
``"zeros"``               all zeros
``normal(std)``           N(0, 1) * std, e.g. ``normal(0.01)``: the MNIST study's initialisation
========================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .validation import check_number

Initializer = Callable[[tuple, np.random.Generator, np.dtype], np.ndarray]


def _fans(name: str, shape, rng) -> tuple[int, int]:
    """Fan-in and fan-out of a weight of ``shape`` (checked: at least 2 dimensions, each a
    positive int, since a fan of 0 divides by zero), after checking ``rng``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name}: rng must be a numpy.random.Generator, got {rng!r} (layers "
                         f"turn an int seed into one)")
    ok = isinstance(shape, tuple) and all(
        isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) and n > 0
        for n in shape)
    if not ok or len(shape) < 2:
        if isinstance(shape, tuple) and len(shape) < 2 and ok:
            raise ValueError(f"{name}: initialisers need a weight of at least 2 dimensions, got "
                             f"shape {shape}")
        raise ValueError(f"{name}: shape must be a tuple of at least 2 positive ints, got "
                         f"{shape!r}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[0]) * receptive, int(shape[1]) * receptive


def lecun_normal(shape, rng, dtype=np.float64):
    fan_in, _ = _fans("lecun_normal", shape, rng)
    return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(dtype)


def glorot_uniform(shape, rng, dtype=np.float64):
    fan_in, fan_out = _fans("glorot_uniform", shape, rng)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def glorot_normal(shape, rng, dtype=np.float64):
    fan_in, fan_out = _fans("glorot_normal", shape, rng)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def he_uniform(shape, rng, dtype=np.float64):
    fan_in, _ = _fans("he_uniform", shape, rng)
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape).astype(dtype)


def he_normal(shape, rng, dtype=np.float64):
    fan_in, _ = _fans("he_normal", shape, rng)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def zeros(shape, rng=None, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def normal(std: float) -> Initializer:
    """N(0, 1) * ``std``, whatever the fan-in (the MNIST study uses ``normal(0.01)``)."""
    check_number("normal", "std", std, low=0.0)

    def init(shape, rng, dtype=np.float64):
        return (rng.standard_normal(shape) * std).astype(dtype)

    init.__name__ = f"normal({std})"
    return init


INITIALIZERS: dict[str, Initializer] = {
    "lecun_normal": lecun_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
}


def get_initializer(init) -> Initializer:
    """Look an initialiser up by name, or return a callable unchanged."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown initialiser {init!r}; choose one of {sorted(INITIALIZERS)} or pass a "
            f"callable init(shape, rng, dtype)"
        ) from None


def init_config(init) -> str | None:
    """How a layer's ``init`` appears in its config: the name, or None for a callable (a model
    rebuilt from such a config starts from zeros; its weights are meant to be loaded)."""
    return init if isinstance(init, str) else None


def as_generator(rng, who: str) -> np.random.Generator:
    """Accept a ``numpy.random.Generator`` or an int seed; refuse global-state randomness."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"{who} needs rng=: a numpy.random.Generator or an int seed (got {rng!r}); minidl never "
        f"draws from global random state"
    )
