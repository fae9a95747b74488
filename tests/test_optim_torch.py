"""minidl's optimizers against ``torch.optim`` itself, step by step (skipped without torch).

The same kind of trajectories as ``test_optim_reference.py`` (parameters of several shapes, a
fixed gradient sequence, a constant and a changed learning rate, a large learning rate), run
side by side in minidl and in torch. After every step the parameters *and* every state array
(``exp_avg``, ``sum``, ``square_avg``, ``momentum_buffer``, ...: minidl uses torch's names) must
agree: float64 to rtol 1e-12, float32 to rtol 1e-5. Also checks that constructor argument names,
order and defaults are torch's.

Print the largest differences per optimizer with ``python tests/test_optim_torch.py``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from minidl import SGD, AdaGrad, Adam, AdamW, Parameter, RMSProp

torch = pytest.importorskip("torch")

TORCH = {
    SGD: torch.optim.SGD,
    Adam: torch.optim.Adam,
    AdamW: torch.optim.AdamW,
    AdaGrad: torch.optim.Adagrad,
    RMSProp: torch.optim.RMSprop,
}
SHAPES = [(2, 3), (4,), ()]
STEPS = 15
TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-14}, np.float32: {"rtol": 1e-5, "atol": 1e-6}}

CASES = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.2}),
    (SGD, {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.01}),
    (SGD, {"lr": 5.0, "momentum": 0.5, "weight_decay": 0.1}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    (Adam, {"lr": 0.01, "amsgrad": True}),
    (Adam, {"lr": 0.02, "betas": (0.5, 0.6), "eps": 1e-3, "weight_decay": 0.05, "amsgrad": True}),
    (Adam, {"lr": 10.0, "betas": (0.0, 0.5), "amsgrad": True}),
    (AdamW, {"lr": 0.01}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.0}),
    (AdamW, {"lr": 0.01, "betas": (0.7, 0.8), "weight_decay": 0.5, "amsgrad": True}),
    (AdamW, {"lr": 3.0, "weight_decay": 0.1, "eps": 1e-4}),
    (AdaGrad, {"lr": 0.1}),
    (AdaGrad, {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.5}),
    (AdaGrad, {"lr": 0.05, "lr_decay": 0.5, "weight_decay": 0.3, "initial_accumulator_value": 0.1,
               "eps": 1e-6}),
    (AdaGrad, {"lr": 10.0, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    (RMSProp, {"lr": 0.01}),
    (RMSProp, {"lr": 0.01, "alpha": 0.9, "momentum": 0.9}),
    (RMSProp, {"lr": 0.01, "centered": True, "weight_decay": 0.1}),
    (RMSProp, {"lr": 0.01, "alpha": 0.5, "eps": 1e-4, "weight_decay": 0.1, "momentum": 0.5,
               "centered": True}),
    (RMSProp, {"lr": 5.0, "alpha": 0.9, "momentum": 0.3, "centered": True}),
]


def case_id(cls, hparams):
    return cls.__name__ + "(" + ",".join(f"{k}={v}" for k, v in hparams.items()) + ")"


def make_problem(seed: int, steps: int = STEPS):
    """Initial values and gradients (about one in ten exactly 0, magnitudes 1e-2..10)."""
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-1, 1, size=s) for s in SHAPES]
    grads = []
    for _ in range(steps):
        step = []
        for s in SHAPES:
            g = rng.normal(size=s) * 10 ** rng.uniform(-2, 1, size=s)
            step.append(np.where(rng.random(size=s) < 0.1, 0.0, g))
        grads.append(step)
    return init, grads


def schedule(lr: float, kind: str, steps: int = STEPS) -> list[float]:
    if kind == "constant":
        return [lr] * steps
    return [lr] * 5 + [lr / 10] * 4 + [0.0] + [lr * 3] * (steps - 10)


def run_both(cls, hparams, lrs, seed=0, dtype=np.float64, torch_hparams=None):
    """Step minidl and torch side by side. Yield, after every step, the step number and the
    pairs (name, minidl array, torch array) of every parameter and state array."""
    init, grads = make_problem(seed, len(lrs))
    params = [Parameter(x, dtype=dtype) for x in init]
    tparams = [torch.tensor(x.astype(dtype), requires_grad=True) for x in init]
    opt = cls(params, **hparams)
    topt = TORCH[cls](tparams, **(hparams if torch_hparams is None else torch_hparams))
    for t, (g_step, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        opt.lr = lr
        for group in topt.param_groups:
            group["lr"] = lr
        for p, tp, g in zip(params, tparams, g_step, strict=True):
            p.grad[...] = g
            tp.grad = torch.tensor(g.astype(dtype))
        opt.step()
        topt.step()
        pairs = []
        for i, (p, tp) in enumerate(zip(params, tparams, strict=True)):
            pairs.append((f"param {i}", p.data, tp.detach().numpy()))
            state, tstate = opt.state[p], topt.state[tp]
            keys = set(state) - {"step"}
            tkeys = {k for k, v in tstate.items() if v is not None} - {"step"}  # SGD has none
            assert keys == tkeys, f"step {t}: state keys {sorted(keys)} vs torch {sorted(tkeys)}"
            assert state["step"] == t == int(tstate.get("step", t))
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    pairs.append((f"param {i} {key}", value, tstate[key].numpy()))
        yield t, pairs


def assert_matches_torch(cls, hparams, lrs, seed=0, dtype=np.float64, torch_hparams=None):
    tol = TOL[dtype]
    for t, pairs in run_both(cls, hparams, lrs, seed, dtype, torch_hparams):
        for name, mine, theirs in pairs:
            assert mine.dtype == theirs.dtype == dtype, name
            if not np.allclose(mine, theirs, **tol):
                bad = ~np.isclose(mine, theirs, **tol)
                raise AssertionError(
                    f"{case_id(cls, hparams)}: first difference at step {t}, {name}: minidl "
                    f"{mine[bad].tolist()}, torch {theirs[bad].tolist()}"
                )


@pytest.mark.parametrize("kind", ["constant", "changed"])
@pytest.mark.parametrize(("cls", "hparams"), [pytest.param(c, h, id=case_id(c, h))
                                              for c, h in CASES])
def test_trajectory_matches_torch(cls, hparams, kind):
    assert_matches_torch(cls, hparams, schedule(hparams["lr"], kind), seed=len(repr(hparams)))


FLOAT32_CASES = [
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (AdamW, {"lr": 0.01}),
    (AdaGrad, {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1}),
    (RMSProp, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(("cls", "hparams"), [pytest.param(c, h, id=case_id(c, h))
                                              for c, h in FLOAT32_CASES])
def test_float32_trajectory_matches_torch(cls, hparams):
    assert_matches_torch(cls, hparams, schedule(hparams["lr"], "constant"), seed=3,
                         dtype=np.float32)


def test_comparison_can_fail():
    """A different beta2 is caught at step 1 in the state, although the first update is the
    same (about lr * sign(g) whatever beta2)."""
    with pytest.raises(AssertionError, match=r"first difference at step 1, param 0 exp_avg_sq"):
        assert_matches_torch(Adam, {"lr": 0.01}, [0.01] * 3,
                             torch_hparams={"lr": 0.01, "betas": (0.9, 0.99)})


def positional(fn):
    return [(name, p.default) for name, p in inspect.signature(fn).parameters.items()
            if p.kind is p.POSITIONAL_OR_KEYWORD and name != "self"]


@pytest.mark.parametrize(
    "cls",
    [SGD, Adam, AdamW, AdaGrad, RMSProp],
    ids=lambda c: c.__name__,
)
def test_arguments_and_defaults_are_torchs(cls):
    """minidl's arguments are the first positional arguments of torch's, in the same order,
    with equal defaults (torch adds ``foreach``, ``maximize``, ... after them)."""
    mine = positional(cls.__init__)
    theirs = positional(TORCH[cls].__init__)[: len(mine)]
    assert [n for n, _ in mine] == [n for n, _ in theirs]
    for (name, default), (_, tdefault) in zip(mine, theirs, strict=True):
        assert default == tdefault, f"{name}: minidl {default!r}, torch {tdefault!r}"


def max_abs_differences() -> dict[str, dict[str, float]]:
    """Largest |minidl - torch| per optimizer over every case, schedule and step, for the
    parameters and for the state arrays (float64)."""
    out: dict[str, dict[str, float]] = {}
    for cls, hparams in CASES:
        for kind in ("constant", "changed"):
            lrs = schedule(hparams["lr"], kind)
            for _, pairs in run_both(cls, hparams, lrs, seed=len(repr(hparams))):
                row = out.setdefault(cls.__name__, {"params": 0.0, "state": 0.0})
                for name, mine, theirs in pairs:
                    which = "params" if name.count(" ") == 1 else "state"
                    row[which] = max(row[which], float(np.max(np.abs(mine - theirs))))
    return out


if __name__ == "__main__":
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    for name, row in max_abs_differences().items():
        print(f"{name:8s} max |minidl - torch|: params {row['params']:.3e}, "
              f"state {row['state']:.3e}")
