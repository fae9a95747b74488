"""The Lion of docs/custom_optimizer.md against a plain-Python Lion (Chen et al., 2023).

``Lion`` is taken from the docs page itself (the Python block that defines it), so the page and
this test cannot drift apart. The reference works one scalar at a time with Python floats, from
the paper's update rule::

    c_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
    theta_t = theta_{t-1} - lr * (sign(c_t) + weight_decay * theta_{t-1})
    m_t     = beta2 * m_{t-1} + (1 - beta2) * g_t
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

import minidl

from .test_optim_reference import run_minidl

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom_optimizer.md"
SHAPES = [(2, 3), (4,), ()]
STEPS = 15


def load_lion():
    """Execute the docs block that defines ``class Lion`` and return the class."""
    blocks = re.findall(r"^```python[^\n]*\n(.*?)^```", DOC.read_text(encoding="utf-8"),
                        flags=re.S | re.M)
    (source,) = [b for b in blocks if "class Lion(" in b]
    namespace: dict = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    return namespace["Lion"]


Lion = load_lion()


def sign(x: float) -> float:
    return 0.0 if x == 0 else math.copysign(1.0, x)


def ref_lion(theta, grads, lrs, betas=(0.9, 0.99), weight_decay=0.0):
    beta1, beta2 = betas
    out, m = [], 0.0
    for g, lr in zip(grads, lrs, strict=True):
        c = beta1 * m + (1 - beta1) * g
        theta = theta - lr * (sign(c) + weight_decay * theta)
        m = beta2 * m + (1 - beta2) * g
        out.append(theta)
    return out


def make_problem(seed: int):
    rnd = random.Random(seed)
    sizes = [math.prod(s) for s in SHAPES]
    init = [[rnd.uniform(-1, 1) for _ in range(n)] for n in sizes]
    grads = [[[0.0 if rnd.random() < 0.1 else rnd.gauss(0, 1) for _ in range(n)] for n in sizes]
             for _ in range(STEPS)]
    return init, grads


@pytest.mark.parametrize(
    "hparams",
    [
        {"lr": 1e-4},
        {"lr": 0.01, "betas": (0.95, 0.98)},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.3, "betas": (0.5, 0.9), "weight_decay": 1.0},
    ],
    ids=str,
)
@pytest.mark.parametrize("kind", ["constant", "changed"])
def test_lion_matches_reference(hparams, kind):
    init, grads = make_problem(seed=len(repr(hparams)))
    lr = hparams["lr"]
    lrs = [lr] * STEPS if kind == "constant" else [lr] * 5 + [lr / 10] * 5 + [2 * lr] * 5
    actual = [np.concatenate([np.ravel(x) for x in step])
              for step in run_minidl(Lion, hparams, init, grads, lrs)]
    kw = {k: v for k, v in hparams.items() if k != "lr"}
    paths = [ref_lion(x, [g[i][j] for g in grads], lrs, **kw)
             for i, xs in enumerate(init) for j, x in enumerate(xs)]
    for t, got in enumerate(actual):
        expected = np.array([path[t] for path in paths])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15,
                                   err_msg=f"step {t + 1}")


def test_lion_first_step_is_lr_times_sign():
    g = np.array([0.3, -2.0, 0.0, 1e-9])
    p = minidl.Parameter(np.zeros(4))
    opt = Lion([p], lr=0.01)
    p.grad[...] = g
    opt.step()
    assert np.array_equal(p.data, -0.01 * np.sign(g))
    q = minidl.Parameter(np.full(4, 2.0))
    opt = Lion([q], lr=0.01, weight_decay=0.5)
    q.grad[...] = g
    opt.step()
    np.testing.assert_allclose(q.data, 2.0 * (1 - 0.01 * 0.5) - 0.01 * np.sign(g), rtol=1e-15)


def test_lion_state_dict_round_trip_and_float32():
    init, grads = make_problem(seed=2)
    params = [minidl.Parameter(np.array(x, dtype=np.float32).reshape(s))
              for x, s in zip(init, SHAPES, strict=True)]
    opt = Lion(params, lr=0.01, weight_decay=0.1)

    def feed(opt, params, grads):
        for g_step in grads:
            for p, g in zip(params, g_step, strict=True):
                p.grad[...] = np.array(g).reshape(p.shape)
            opt.step()

    feed(opt, params, grads[:5])
    saved, values = opt.state_dict(), [p.data.copy() for p in params]
    feed(opt, params, grads[5:])
    resumed = [minidl.Parameter(v) for v in values]
    opt2 = Lion(resumed)
    opt2.load_state_dict(saved)
    assert opt2.lr == 0.01 and opt2.hparams["weight_decay"] == 0.1
    feed(opt2, resumed, grads[5:])
    for a, b in zip(params, resumed, strict=True):
        assert a.data.dtype == opt.state[a]["exp_avg"].dtype == np.float32
        assert np.array_equal(a.data, b.data)
