"""One optimizer step: minidl's paths, torch.optim's, a user's optimizer, the bandwidth bound.

Every contender updates its own copy of the same parameters with the same fixed gradients. The
bound for a step is the bytes it must move (read the parameter, the gradient and k state arrays,
write the parameter and the k state arrays: ``(3 + 2k) * itemsize`` per value) divided by the
bandwidth of an in-place add measured on the same working set
(:func:`.timing.stream_bandwidth`).
"""

from __future__ import annotations

import contextlib

import numpy as np

import minidl

from .timing import calls_for, interleaved, settle, stream_bandwidth

#: name -> (shapes, dtype, what it is)
PARAM_SETS = {
    "qa_mlp": ([(2049, 64), (64, 1)], np.float64, "QA MLP 2049x64 + 64x1, float64"),
    "mnist_mlp": ([(784, 256), (256,), (256, 10), (10,)], np.float32,
                  "MNIST MLP 784x256, 256, 256x10, 10, float32"),
    "many_small": ([(1000,)] * 1000, np.float32, "1,000 tensors of 1,000 values, float32"),
    "one_16m": ([(1 << 24,)], np.float32, "one tensor of 16M values, float32"),
}
#: Tiny stand-ins for the test suite.
QUICK_SETS = {
    "qa_mlp": ([(33, 4), (4, 1)], np.float64, "tiny QA-shaped set"),
    "many_small": ([(10,)] * 20, np.float32, "20 tensors of 10 values"),
}

#: name -> (minidl class, torch class name, keyword arguments shared by both)
OPTIMIZERS = {
    "SGD": (minidl.SGD, "SGD", {"lr": 1e-3}),
    "SGD+momentum": (minidl.SGD, "SGD", {"lr": 1e-3, "momentum": 0.9}),
    "Adam": (minidl.Adam, "Adam", {"lr": 1e-3}),
    "AdamW": (minidl.AdamW, "AdamW", {"lr": 1e-3}),
    "Adagrad": (minidl.Adagrad, "Adagrad", {"lr": 1e-2}),
    "RMSprop": (minidl.RMSprop, "RMSprop", {"lr": 1e-2}),
}

#: minidl's two paths (``foreach=True`` is the loop: NumPy's ``update`` per parameter)
MINIDL_PATHS = {"minidl fused": {"fused": True}, "minidl loop": {"foreach": False, "fused": False}}
TORCH_PATHS = {"torch default": {"foreach": False}, "torch foreach": {"foreach": True},
               "torch fused": {"fused": True}}


def load_optimizer(spec: str, who: str = "python -m benchmarks --optimizer") -> type:
    """``"package.module:ClassName"`` or ``"path/to/file.py:ClassName"`` -> the class (as
    :func:`minidl.cli.load_class` finds it); exits with one line naming what is wrong."""
    from minidl.cli import fail, load_class

    cls = load_class(spec, who)
    if not (isinstance(cls, type) and issubclass(cls, minidl.Optimizer)):
        fail(f"{who}: {spec} is {cls!r}, not a minidl.Optimizer subclass")
    return cls


def _params(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [minidl.Parameter(rng.standard_normal(s), dtype=dtype) for s in shapes]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    return params


def _minidl_step(cls, shapes, dtype, kwargs):
    params = _params(shapes, dtype)
    opt = cls(params, **kwargs)
    return opt.step, opt


def _torch_step(torch, cls_name, shapes, dtype, kwargs):
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    tensors = [torch.tensor(p.data, dtype=tdtype, requires_grad=True)
               for p in _params(shapes, dtype)]
    for t, p in zip(tensors, _params(shapes, dtype), strict=True):
        t.grad = torch.tensor(p.grad, dtype=tdtype)
    opt = getattr(torch.optim, cls_name)(tensors, **kwargs)
    opt.step()  # fails here if this variant does not exist (fused RMSprop)
    return opt.step


def state_arrays(opt) -> int:
    """How many arrays of the parameter's size the optimizer keeps per parameter."""
    st = next(iter(opt.state.values()), {})
    return sum(isinstance(v, np.ndarray) for v in st.values())


def run(*, sets=None, optimizers=None, user=(), torch=None, budget=0.4, log=print) -> dict:
    """Time every optimizer on every parameter set; ``budget`` seconds per contender and case.
    Returns {"bandwidth": ..., "cases": [...]}."""
    sets = PARAM_SETS if sets is None else sets
    optimizers = OPTIMIZERS if optimizers is None else optimizers
    have_numba = minidl.optim.fused.HAVE_NUMBA
    cases, bandwidth = [], {}
    for set_name, (shapes, dtype, label) in sets.items():
        n = sum(int(np.prod(s)) for s in shapes)
        itemsize = np.dtype(dtype).itemsize
        runs = [(name, cls, torch_name, kw) for name, (cls, torch_name, kw) in optimizers.items()]
        runs += [(cls.__name__, cls, None, {}) for cls in user]
        for opt_name, cls, torch_name, kw in runs:
            contenders, owner, ran = {}, None, []
            paths = MINIDL_PATHS if torch_name else {"minidl": {}}
            for path, flags in paths.items():
                if path == "minidl fused" and not have_numba:
                    continue
                step, opt = _minidl_step(cls, shapes, dtype, {**kw, **flags})
                if path == "minidl fused":
                    step, ran = settle(step, opt, calls=3 if budget < 0.1 else 100)
                contenders[path] = step
                owner = owner or opt
            if torch is not None and torch_name:
                for path, flags in TORCH_PATHS.items():
                    # torch has no fused RMSprop: that contender is left out
                    with contextlib.suppress(RuntimeError, TypeError, ValueError):
                        contenders[path] = _torch_step(torch, torch_name, shapes, dtype,
                                                       {**kw, **flags})
            owner.step()
            k = state_arrays(owner)
            nbytes = (3 + 2 * k) * itemsize * n
            working_set = (2 + k) * itemsize * n
            if working_set not in bandwidth:
                bandwidth[working_set] = stream_bandwidth(
                    working_set, rounds=3 if budget < 0.1 else 15)
            bound = nbytes / bandwidth[working_set]["bytes_per_s"]
            # about budget/20 s per sample, 20 rounds; 7 rounds when a contender's one call
            # is slower than that (a loaded machine, the 16M set)
            inner = {name: calls_for(fn, budget / 20) for name, fn in contenders.items()}
            slow = any(n == 1 for n in inner.values())
            rounds = 3 if budget < 0.1 else 7 if slow else 20
            times = interleaved(contenders, rounds=rounds, inner=inner,
                                warmup=1 if budget < 0.1 else 3)
            case = {"set": set_name, "label": label, "values": n, "dtype": np.dtype(dtype).name,
                    "optimizer": opt_name, "user": torch_name is None, "state_arrays": k,
                    "bytes": nbytes, "bound_s": bound,
                    "bandwidth_GBps": bandwidth[working_set]["bytes_per_s"] / 1e9,
                    "fused_ran": ran, "times": times}
            cases.append(case)
            log(_line(case))
    return {"bandwidth": {str(k): v for k, v in bandwidth.items()}, "cases": cases}


def _line(case) -> str:
    parts = [f"{name} {t['median'] * 1e6:,.0f} us" for name, t in case["times"].items()]
    return (f"{case['set']:>10} {case['optimizer']:<13} bound {case['bound_s'] * 1e6:,.0f} us | "
            + ", ".join(parts))
