"""Small data sets, models and comparisons shared by the training, callback, checkpoint and
resume tests (and imported by the subprocesses of test_resume.py)."""

from __future__ import annotations

import numpy as np

from minidl import Dense, Dropout, Sequential, Tanh


def make_data(n: int = 103, d: int = 5, seed: int = 0):
    """A learnable +-1 problem: (N, d) features, (N, 1) labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X[:, :1] + 0.5 * X[:, 1:2] > 0, 1.0, -1.0)
    return X, y


def make_model(d: int = 5, hidden: int = 16, p: float = 0.3, seed: int = 1) -> Sequential:
    """Dense -> Tanh -> Dropout -> Dense -> Tanh, every weight and mask from ``seed``."""
    return Sequential(Dense(d, hidden, rng=seed), Tanh(), Dropout(p, rng=seed + 1),
                      Dense(hidden, 1, rng=seed + 2), Tanh())


def assert_same_arrays(a: dict, b: dict) -> None:
    """Two flat dicts of arrays are equal bit for bit (same keys, dtypes and values)."""
    assert list(a) == list(b)
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        assert x.dtype == y.dtype, key
        assert np.array_equal(x, y), key


def assert_same_optimizer_state(a: dict, b: dict) -> None:
    assert a["class"] == b["class"]
    assert a["hparams"] == b["hparams"]
    assert a["step_count"] == b["step_count"]
    assert sorted(int(k) for k in a["state"]) == sorted(int(k) for k in b["state"])
    for key, state in a["state"].items():
        other = b["state"][key] if key in b["state"] else b["state"][str(key)]
        assert set(state) == set(other)
        for name, value in state.items():
            assert np.array_equal(value, other[name]), (key, name)
            assert np.asarray(value).dtype == np.asarray(other[name]).dtype


def assert_same_history(a, b, ignore=("time",)) -> None:
    """Same columns and values (bit for bit), apart from the wall-time column."""
    assert a.keys() == b.keys()
    for key in a:
        if key not in ignore:
            assert np.array_equal(a[key], b[key], equal_nan=True), key
    assert a.events == b.events


def assert_same_tree(a, b, where: str = "") -> None:
    """Two nested dicts / lists of JSON values and arrays are equal bit for bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tree(x, y, f"{where}/{i}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        assert np.array_equal(a, b, equal_nan=True), where
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), where
