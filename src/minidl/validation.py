"""Argument checks shared by layers, optimizers and schedules: a clear ValueError or nothing."""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np


def check_number(owner: str, name: str, value: Any, low: float | None = None,
                 high: float | None = None, high_inclusive: bool = True) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number in [low, high] (or [low, high))."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not np.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value!r}")
    if high is not None and (value > high or (not high_inclusive and value == high)):
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{owner}: {name} must lie in [{low}, {high}{bracket}, got {value!r}")


@overload
def check_int(owner: str, name: str, value: Any, low: int | None = None,
              allow_none: Literal[False] = False) -> int: ...
@overload
def check_int(owner: str, name: str, value: Any, low: int | None = None,
              allow_none: bool = ...) -> int | None: ...
def check_int(owner: str, name: str, value: Any, low: int | None = None,
              allow_none: bool = False) -> int | None:
    """``value`` as an ``int``, or a ``ValueError`` unless it is an integer >= ``low``.

    Python and NumPy integers are accepted (``np.int64(3)`` is an int); ``True`` and ``False``
    are refused (``patience=True`` is a mistake, not 1), and so are floats, even whole ones.
    ``allow_none``: None is accepted too, and returned as None."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool,
                                                                                    np.bool_))
    if not ok or (low is not None and value < low):
        kind = ("a positive int" if low == 1 else "an int" if low is None
                else f"an int >= {low}")
        raise ValueError(f"{owner}: {name} must be {kind}{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return int(value)


def check_betas(owner: str, betas: Any) -> tuple[float, float]:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        check_number(owner, f"betas[{i}]", b, low=0.0, high=1.0, high_inclusive=False)
    return float(betas[0]), float(betas[1])


@overload
def check_bool(owner: str, name: str, value: Any, allow_none: Literal[False] = False) -> bool: ...
@overload
def check_bool(owner: str, name: str, value: Any, allow_none: bool = ...) -> bool | None: ...
def check_bool(owner: str, name: str, value: Any, allow_none: bool = False) -> bool | None:
    """``value`` as a ``bool``, or a ``ValueError`` unless it is True or False (NumPy's too).

    Truthiness is not enough: ``restore_best_weights="no"`` is a mistake, not True, and so are
    1, NaN and a list. ``allow_none``: None is accepted too, and returned as None."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False"
                         f"{' (or None)' if allow_none else ''}, got {value!r}")
    return bool(value)


def check_float_dtype(owner: str, dtype: Any) -> np.dtype:
    """``dtype`` as a floating NumPy dtype, or a ``ValueError`` naming ``owner``."""
    try:
        result = np.dtype(dtype)
    except TypeError:
        result = None
    if result is None or result.kind != "f":
        raise ValueError(f"{owner}: dtype must be a floating dtype (np.float32, np.float64), "
                         f"got {dtype!r}")
    return result


def returned_number(value, who: str, expected: str) -> float:
    """``value`` as a float if it is one real number (a NumPy scalar or 0-d array too), or a
    TypeError naming ``who`` returned it: ``float()`` would read the string "0.5" as a number
    and fail on None or an array with NumPy's words."""
    if isinstance(value, (np.ndarray, np.generic)) and value.ndim == 0:
        if value.dtype.kind in "biuf":  # NumPy's numbers and bools (np.True_ is no Real)
            return float(value)
    elif isinstance(value, numbers.Real) or (
            hasattr(value, "__float__") and not isinstance(value, (str, bytes, np.ndarray))):
        return float(value)  # Python's numbers, Decimal, Fraction
    raise TypeError(f"{who} returned {describe(value)}; {expected}")


def describe(value) -> str:
    """``value`` in a few words for an error message: an array's shape and dtype, else its
    type and (shortened) repr."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} (dtype {value.dtype})"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


@functools.cache
def memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def check_allocation(owner: str | Callable[[], str], what: str | Callable[[], str],
                     shapes: list[tuple[int, ...]], dtype: Any,
                     error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming ``owner`` and ``what`` if arrays of ``shapes`` in ``dtype``
    together need more than this machine's physical memory: refused before NumPy tries (a
    ``MemoryError``, or minutes of swapping). ``owner`` and ``what`` may be functions giving
    the text, called only to raise (a forward pass checks on every call)."""
    itemsize = np.dtype(dtype).itemsize
    values = sum(math.prod(int(d) for d in shape) for shape in shapes)  # no int64 overflow
    limit = memory_bytes()
    if limit is not None and values * itemsize > limit:
        owner, what = (t() if callable(t) else t for t in (owner, what))
        raise error(f"{owner}: {what} needs {values:,} values ({values * itemsize / 2**30:,.1f} "
                    f"GiB of {np.dtype(dtype).name}), more than this machine's memory "
                    f"({limit / 2**30:,.1f} GiB)")
