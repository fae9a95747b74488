"""The fused path (numba kernels) against the per-parameter loop (``update`` in NumPy).

As torch's ``test_fused_matches_forloop``: each built-in optimizer runs the same trajectory
with ``foreach=False, fused=False`` (the loop, itself checked against a plain-Python reference
in ``test_optim_reference.py``) and with ``fused=True``, and the parameters and the whole state
dict must be **bit-equal** after every step. Bit equality, not a tolerance, is the claim: the
kernels do the loop's operations in the loop's order with the loop's scalar roundings, and
numba without ``fastmath`` fuses no multiply-add. The trajectories cover many steps, weight
decay (L2 and decoupled), momentum, Nesterov, dampening, amsgrad, centered RMSprop, a learning
rate changed between steps, two parameter groups, a 0-d parameter, a parameter that is never
touched (its gradient stays zero, as a layer that never ran backward leaves it), float32 and
float64, and state dicts moved between paths mid-run.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import minidl
from minidl import SGD, Adagrad, Adam, AdamW, Parameter, RMSprop
from minidl.optim import fused

HAVE_NUMBA = fused.HAVE_NUMBA
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (pip install -e '.[fast]')")
FLAT = [pytest.param("fused", marks=needs_numba)]
FLAGS = {"loop": {"foreach": False, "fused": False}, "fused": {"fused": True}}

SHAPES = [(7, 5), (5,), (), (3, 2, 4), (6,)]
NEVER_TOUCHED = 4  # index of the parameter whose gradient is never written
STEPS = 30

CASES = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (AdamW, {"lr": 0.01, "betas": (0.8, 0.95)}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (Adagrad, {"lr": 0.1}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
               "initial_accumulator_value": 0.1}),
    (RMSprop, {"lr": 0.01}),
    (RMSprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "weight_decay": 0.1}),
    (RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for cls, kw in CASES]


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s), dtype=dtype) for s in SHAPES]


def set_grads(params, rng, scale=1.0):
    for i, p in enumerate(params):
        if i != NEVER_TOUCHED:
            p.grad[...] = scale * rng.standard_normal(p.shape)


def groups(params, kw):
    """Two parameter groups, the second with its own lr and weight decay."""
    return [{"params": params[:3]},
            {"params": params[3:], "lr": kw["lr"] / 2, "weight_decay": 0.05}]


def trajectory(cls, kw, impl, dtype, steps=STEPS, grouped=False):
    """Parameters and state dict after every step (lr changed at step 10, large grads at 20)."""
    params = make_params(dtype)
    opt = cls(groups(params, kw) if grouped else params, **kw, **FLAGS[impl])
    assert opt.implementation == impl
    rng = np.random.default_rng(1)
    out = []
    for t in range(steps):
        if t == 10:
            for g in opt.param_groups:
                g["lr"] *= 0.5
        set_grads(params, rng, scale=100.0 if t == 20 else 1.0)
        opt.step()
        out.append(([p.data.copy() for p in params], opt.state_dict()))
    return out


def assert_state_dicts_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key != "state":
            assert a[key] == b[key], key
    assert a["state"].keys() == b["state"].keys()
    for i, st in a["state"].items():
        assert st.keys() == b["state"][i].keys()
        for k, v in st.items():
            w = b["state"][i][k]
            if isinstance(v, np.ndarray):
                assert v.dtype == w.dtype and v.shape == w.shape, (i, k)
                np.testing.assert_array_equal(v, w, err_msg=f"state {i} {k}")
            else:
                assert v == w, (i, k)


def assert_same_trajectory(ref, got):
    for t, ((p_ref, s_ref), (p_got, s_got)) in enumerate(zip(ref, got, strict=True)):
        for i, (a, b) in enumerate(zip(p_ref, p_got, strict=True)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=f"step {t + 1}, parameter {i}")
        assert_state_dicts_equal(s_ref, s_got)


@pytest.mark.parametrize("impl", FLAT)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_fused_path_matches_the_loop_bit_for_bit(cls, kw, dtype, impl):
    ref = trajectory(cls, kw, "loop", dtype)
    assert_same_trajectory(ref, trajectory(cls, kw, impl, dtype))
    # the never-touched parameter moved (the loop updates it too: decay, momentum)
    assert ref[-1][0][NEVER_TOUCHED].dtype == dtype


@pytest.mark.parametrize("impl", FLAT)
@pytest.mark.parametrize(("cls", "kw"), CASES[1::2], ids=IDS[1::2])
def test_fused_path_matches_the_loop_with_parameter_groups(cls, kw, impl):
    ref = trajectory(cls, kw, "loop", np.float32, steps=12, grouped=True)
    assert_same_trajectory(ref, trajectory(cls, kw, impl, np.float32, steps=12, grouped=True))


@needs_numba
@pytest.mark.parametrize(("cls", "kw"), [CASES[2], CASES[5], CASES[9], CASES[12]],
                         ids=[IDS[2], IDS[5], IDS[9], IDS[12]])
def test_parallel_kernels_match_the_loop(cls, kw, monkeypatch):
    from minidl.optim import _kernels_numba

    monkeypatch.setattr(_kernels_numba, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(_kernels_numba, "THREADS", "parallel")
    ref = trajectory(cls, kw, "loop", np.float32, steps=8)
    assert_same_trajectory(ref, trajectory(cls, kw, "fused", np.float32, steps=8))
    # auto, timing both compilations within the run: 1 serial call and 2 timed cycles, then
    # the parallel compilation's first call and 2 cycles, all inside the 8 steps
    monkeypatch.setattr(_kernels_numba, "THREADS", "auto")
    monkeypatch.setattr(_kernels_numba.Adaptive, "WARMUP", 0)
    monkeypatch.setattr(_kernels_numba.Adaptive, "SAMPLES", 2)
    ran = []
    original = _kernels_numba.Adaptive.__call__

    def spy(self, *args):
        original(self, *args)
        ran.append(self.last)

    monkeypatch.setattr(_kernels_numba.Adaptive, "__call__", spy)
    assert_same_trajectory(ref, trajectory(cls, kw, "fused", np.float32, steps=8))
    assert {"serial", "parallel"} <= set(ran)


@pytest.mark.parametrize("impl", FLAT)
@pytest.mark.parametrize(("cls", "kw"), [(Adam, {"eps": 0.0}), (Adagrad, {"eps": 0.0}),
                                         (RMSprop, {"eps": 0.0})])
def test_zero_over_zero_gives_the_loops_nan_not_an_exception(cls, kw, impl, monkeypatch):
    """eps=0 and a zero gradient: 0/0 is NaN in NumPy; the fused kernels follow NumPy's
    error model (numba's default would raise ZeroDivisionError, and could not vectorise).
    The constructors refuse eps=0 (issue 19), so it is written into ``defaults`` afterwards:
    the kernels' error model is what is tested (a NaN gradient meets it too)."""
    results = {}
    for path in ("loop", impl, *(("fused parallel",) if impl == "fused" else ())):
        if path == "fused parallel":  # the parallel compilation's error model too
            from minidl.optim import _kernels_numba

            monkeypatch.setattr(_kernels_numba, "PARALLEL_MIN_SIZE", 0)
            monkeypatch.setattr(_kernels_numba, "THREADS", "parallel")
        params = make_params(np.float32)
        opt = cls(params, lr=0.1, **FLAGS[path.split()[0]])
        opt.defaults.update(kw)
        for p in params:
            p.grad[...] = 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            opt.step()
        results[path] = [p.data.copy() for p in params]
    for path in results:
        for a, b in zip(results["loop"], results[path], strict=True):
            np.testing.assert_array_equal(a, b)
    assert np.isnan(results["loop"][0]).all()


class _FakeProgram:
    """A clock, and a serial and a parallel kernel that advance it by their cost; ``after``
    is what a call of each costs the rest of the program until the next call (a training
    step's matrix products slowed by spinning threads)."""

    def __init__(self, serial, parallel, after=None):
        self.now, self.calls = 0.0, []
        self.cost = {"serial": serial, "parallel": parallel}
        self.after = after or {"serial": 0.0, "parallel": 0.0}

    def clock(self):
        return self.now

    def kernel(self, mode):
        def run(*args):
            self.calls.append(mode)
            self.now += self.cost[mode] + self.after[mode]
        return run

    def adaptive(self):
        from minidl.optim._kernels_numba import Adaptive

        return Adaptive(self.kernel("serial"), self.kernel("parallel"), clock=self.clock)


def _runs(program) -> str:
    return "".join("p" if c == "parallel" else "s" for c in program.calls)


@needs_numba
def test_adaptive_keeps_the_compilation_that_keeps_the_program_faster():
    # 3 warm-up calls, then each compilation: 1 untimed call and 5 timed cycles
    first = "s" * 3 + "s" + "s" * 5 + "p" + "p" * 5
    back_to_back = _FakeProgram(serial=10.0, parallel=4.0)
    kernel = back_to_back.adaptive()
    for _ in range(30):
        kernel()
    assert _runs(back_to_back) == first + "p" * 15 and kernel.mode == "parallel"
    # in a training loop the parallel kernel is faster, but slows what follows it
    training = _FakeProgram(serial=10.0, parallel=4.0, after={"serial": 100.0, "parallel": 150.0})
    kernel = training.adaptive()
    for _ in range(35):
        kernel()
    assert _runs(training) == first + "s" * 20 and kernel.mode == "serial"


@needs_numba
def test_adaptive_rechecks_less_often_while_nothing_changes_and_follows_a_change():
    program = _FakeProgram(serial=10.0, parallel=20.0)
    kernel = program.adaptive()
    for _ in range(160):
        kernel()
    runs = _runs(program)
    checks = [i for i in range(1, len(runs)) if runs[i - 1:i + 1] == "sp"]
    assert kernel.mode == "serial" and checks == [9, 35, 80]  # after 20 cycles, then 40
    program.cost["parallel"] = 2.0  # the machine changed (the other pool went quiet)
    for _ in range(400):
        kernel()
    assert kernel.mode == "parallel" and runs[-1] == "s" and _runs(program)[-1] == "p"


@needs_numba
def test_adaptive_gives_up_a_recheck_after_one_hopeless_cycle():
    program = _FakeProgram(serial=10.0, parallel=10.0, after={"serial": 0.0, "parallel": 90.0})
    kernel = program.adaptive()
    for _ in range(200):
        kernel()
    runs = _runs(program)
    # the first parallel call compiles (untimed), the next is timed and hopeless; each recheck
    # after that (after 20, 40 and 80 cycles) is one call
    assert runs.startswith("s" * 9 + "pps") and runs.count("p") == 2 + 3
    assert kernel.mode == "serial"


@needs_numba
def test_threads_forces_one_compilation(monkeypatch):
    from minidl.optim import _kernels_numba

    program = _FakeProgram(serial=1.0, parallel=1.0)
    kernel = program.adaptive()
    monkeypatch.setattr(_kernels_numba, "THREADS", "parallel")
    kernel()
    kernel()
    assert program.calls == ["parallel", "parallel"]
    assert kernel.last == "parallel" and kernel.mode == "serial"  # forced, not chosen
    monkeypatch.setattr(_kernels_numba, "PARALLEL_MIN_SIZE", 0)
    opt = Adam(make_params(np.float32), fused=True)
    opt.step()
    assert opt._fused.last == "parallel"  # what ran, THREADS included
    monkeypatch.setattr(_kernels_numba, "THREADS", "two")
    with pytest.raises(ValueError, match="THREADS must be 'auto', 'serial' or 'parallel'"):
        kernel()


@pytest.mark.parametrize(("first", "second"), [pytest.param("loop", "fused", marks=needs_numba),
                                               pytest.param("fused", "loop", marks=needs_numba)])
@pytest.mark.parametrize(("cls", "kw"), [CASES[2], CASES[5], CASES[12]],
                         ids=[IDS[2], IDS[5], IDS[12]])
def test_state_dict_moves_between_paths(cls, kw, first, second):
    """Ten steps on one path, state_dict, load into an optimizer on another path over a copy
    of the parameters, ten more steps: the same as twenty steps on the loop."""
    ref = trajectory(cls, kw, "loop", np.float64, steps=20)
    params = make_params(np.float64)
    opt = cls(params, **kw, **FLAGS[first])
    rng = np.random.default_rng(1)
    for _ in range(10):
        set_grads(params, rng)
        opt.step()
    saved = opt.state_dict()
    copies = [Parameter(p.data) for p in params]
    resumed = cls(copies, **kw, **FLAGS[second])
    resumed.load_state_dict(saved)
    for t in range(10, 20):
        if t == 10:
            for g in resumed.param_groups:
                g["lr"] *= 0.5
        set_grads(copies, rng)
        resumed.step()
    for a, b in zip(ref[-1][0], [p.data for p in copies], strict=True):
        np.testing.assert_array_equal(a, b)
    assert_state_dicts_equal(ref[-1][1], resumed.state_dict())
    # loading into an optimizer that has already stepped replaces its state, on any path
    opt.load_state_dict(saved)
    assert_state_dicts_equal(saved, opt.state_dict())


@pytest.mark.parametrize("impl", FLAT)
def test_partial_state_gives_the_loop_step_counters(impl):
    """A state dict holding state for some parameters only: the others start from step 0, as
    on the loop, so one group has two step counters (two kernel calls)."""
    results = []
    for path in ("loop", impl):
        params = make_params(np.float64)
        opt = Adam(params, lr=0.01, **FLAGS[path])
        rng = np.random.default_rng(3)
        set_grads(params, rng)
        opt.step()
        opt.step()
        saved = opt.state_dict()
        saved["state"] = {0: saved["state"][0], 3: saved["state"][3]}
        opt.load_state_dict(saved)
        for _ in range(5):
            set_grads(params, rng)
            opt.step()
        results.append(([p.data.copy() for p in params], opt.state_dict()))
    assert_same_trajectory([results[0]], [results[1]])
    assert {st["step"] for st in results[1][1]["state"].values()} == {7, 5}


@pytest.mark.parametrize("impl", FLAT)
def test_mixed_dtypes_match_the_loop(impl):
    results = []
    for path in ("loop", impl):
        params = make_params(np.float64)
        for p in params[::2]:
            p.astype(np.float32)
        opt = AdamW(params, lr=0.01, **FLAGS[path])
        rng = np.random.default_rng(2)
        for _ in range(5):
            set_grads(params, rng)
            opt.step()
        results.append(([p.data.copy() for p in params], opt.state_dict()))
    assert_same_trajectory([results[0]], [results[1]])


# -------------------------------------------------------------------------------- choosing
def test_default_is_fused_with_numba_else_the_loop():
    params = make_params(np.float64)
    assert Adam(params).implementation == ("fused" if HAVE_NUMBA else "loop")
    assert Adam(params, foreach=False).implementation == ("fused" if HAVE_NUMBA else "loop")
    assert Adam(params, fused=False).implementation == "loop"
    assert Adam(params, foreach=True).implementation == "loop"  # the NumPy path: update()
    assert Adam(params, foreach=False, fused=False).implementation == "loop"


def test_flag_errors():
    params = make_params(np.float64)
    with pytest.raises(ValueError, match="exclude each other"):
        Adam(params, foreach=True, fused=True)

    class Lion(minidl.Optimizer):
        def update(self, param, grad, state, lr):
            param -= lr * np.sign(grad)

    assert Lion(params, lr=0.1).implementation == "loop"
    assert Lion(params, lr=0.1, foreach=True).implementation == "loop"
    if HAVE_NUMBA:
        with pytest.raises(ValueError, match="Lion has no fused kernel"):
            Lion(params, lr=0.1, fused=True)

    class MyAdam(Adam):  # a changed update: the Adam kernel would not do what it says
        def update(self, param, grad, state, lr):
            param -= lr * grad

    assert MyAdam(params).implementation == "loop"
    assert MyAdam(params, foreach=True).implementation == "loop"
    if HAVE_NUMBA:
        with pytest.raises(ValueError, match="MyAdam has no fused kernel"):
            MyAdam(params, fused=True)

    class SlowAdam(Adam):  # same maths: the kernel stays
        pass

    assert SlowAdam(params).implementation == ("fused" if HAVE_NUMBA else "loop")


def test_without_numba_fused_raises_and_the_default_says_so_once(monkeypatch):
    monkeypatch.setattr(fused, "HAVE_NUMBA", False)
    monkeypatch.setattr(fused, "_noticed", False)
    params = make_params(np.float64)
    with pytest.raises(ImportError, match=r"pip install 'minidl\[fast\]'"):
        SGD(params, fused=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Lion(minidl.Optimizer):
            def update(self, param, grad, state, lr):
                param -= lr * np.sign(grad)

        assert Lion(params, lr=0.1).implementation == "loop"  # no kernel to miss: no notice
        assert not caught
        assert Adam(params).implementation == "loop"
        assert SGD(params).implementation == "loop"
        assert Adam(params, foreach=True).implementation == "loop"
    notices = [w for w in caught if issubclass(w.category, fused.PerformanceNotice)]
    assert len(notices) == 1 and "numba is not installed" in str(notices[0].message)


# -------------------------------------------------------------------------------- memory
def _peak_step_allocation(impl, opt_cls=Adam, **kw):
    """Largest extra memory traced during one steady-state training step (forward, backward,
    update) of a model whose weights dwarf its activations."""
    model = minidl.Sequential(minidl.Dense(256, 256, rng=0), minidl.ReLU(),
                              minidl.Dense(256, 256, rng=1)).astype(np.float32)
    opt = opt_cls(model.parameters(), lr=1e-3, **kw, **FLAGS[impl])
    loss = minidl.MSE()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 256)), rng.standard_normal((4, 256)).astype(np.float32)

    def train_step():
        loss(model(x), y)
        model.backward(loss.backward())
        opt.step()

    for _ in range(3):  # warm up: state, layout, compilation
        train_step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        train_step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, next(model.parameters()).data.nbytes  # 256 KiB


@pytest.mark.parametrize("impl", FLAT)
@pytest.mark.parametrize(("cls", "kw"), [(Adam, {"amsgrad": True, "weight_decay": 0.1}),
                                         (SGD, {"momentum": 0.9, "nesterov": True}),
                                         (RMSprop, {"centered": True, "momentum": 0.9})])
def test_a_steady_state_training_step_allocates_no_parameter_sized_array(impl, cls, kw):
    peak, weight_bytes = _peak_step_allocation(impl, cls, **kw)
    assert peak < weight_bytes / 4, f"a step allocated {peak} bytes (a weight is {weight_bytes})"


def test_the_allocation_test_sees_the_loop_allocate():
    """The measurement can fail: the per-parameter loop makes weight-sized temporaries."""
    peak, weight_bytes = _peak_step_allocation("loop")
    assert peak >= weight_bytes


@needs_numba
@pytest.mark.filterwarnings("ignore::minidl.optim.fused.FusedFallbackWarning")
@pytest.mark.parametrize("cls, kwargs", CASES, ids=IDS)
def test_batched_small_parameters_match_the_loop_in_any_mix(cls, kwargs, monkeypatch):
    """Small parameters are updated by one batch call (the serial kernel per parameter, run
    from compiled code); the batch is cut wherever the loop order would change: a parameter
    the kernel cannot take (transposed), a large one (its own call), another dtype or another
    group's learning rate. Some parameters skip steps, so their counters differ within a
    batch. Bit-equal to the loop after every step, and the batches are really batches."""
    from minidl.optim import _kernels_numba

    monkeypatch.setattr(_kernels_numba, "PARALLEL_MIN_SIZE", 200)  # (20, 10) and up: large
    calls = []
    original = _kernels_numba.many

    def counting(serial, arrays, dtype):
        driver = original(serial, arrays, dtype)

        def run(addresses, *rest):
            calls.append(len(addresses))
            return driver(addresses, *rest)
        return run

    monkeypatch.setattr(_kernels_numba, "many", counting)

    def build(flags):
        rng = np.random.default_rng(3)
        shapes = [((4, 3), np.float64), ((5,), np.float64), ((3, 4), np.float64),
                  ((20, 10), np.float64), ((2, 2), np.float64), ((6,), np.float32),
                  ((3, 3), np.float32), ((7,), np.float64)]
        params = [Parameter(rng.standard_normal(s), dtype=dt) for s, dt in shapes]
        params[2].data = params[0].data.T  # tied, transposed: the loop's update
        params[2].grad = np.zeros((3, 4))
        groups = [{"params": params[:6]}, {"params": params[6:], "lr": kwargs["lr"] / 2}]
        return params, cls(groups, **kwargs, **flags)

    runs = {}
    for name, flags in FLAGS.items():
        params, opt = build(flags)
        rng = np.random.default_rng(4)
        trajectory = []
        for step in range(6):
            for i, p in enumerate(params):
                if i == 2:
                    continue
                p.grad[...] = rng.standard_normal(p.shape)
                if (step + i) % 4 == 0:
                    p.zero_grad()  # no gradient this step: skipped, its counter falls behind
            opt.step()
            trajectory.append([p.data.copy() for p in params])
        runs[name] = (trajectory, opt.state_dict())
    for got, want in zip(runs["fused"][0], runs["loop"][0], strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert_state_dicts_equal(runs["fused"][1], runs["loop"][1])
    assert calls and max(calls) >= 2  # several small parameters in one call


# ------------------------------------------------------------------ issue 19: untested promises
LARGE = (181, 182)  # 32,942 values: above PARALLEL_MIN_SIZE, so not batched with the small


def large_trajectory(cls, kw, impl, dtype, steps=4):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(LARGE), dtype=dtype),
              Parameter(rng.standard_normal((3,)), dtype=dtype),
              Parameter(rng.standard_normal(LARGE[::-1]), dtype=dtype)]
    opt = cls(params, **kw, **FLAGS[impl])
    out = []
    for _ in range(steps):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
        out.append(([p.data.copy() for p in params], opt.state_dict()))
    return out


@needs_numba
@pytest.mark.parametrize("threads", ["serial", "parallel", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_parameters_larger_than_a_parallel_chunk_match_the_loop(cls, kw, dtype, threads,
                                                                 monkeypatch):
    """Issue 19: every fused test used parameters of at most 42 values, so a kernel that left
    the end of a large parameter alone (a skipped last chunk) went unnoticed. Parameters of
    more than PARALLEL_MIN_SIZE values, on each compilation (serial, parallel, and the
    Adaptive choice), match the loop bit for bit, to their last value."""
    from minidl.optim import _kernels_numba

    assert np.prod(LARGE) >= _kernels_numba.PARALLEL_MIN_SIZE
    monkeypatch.setattr(_kernels_numba, "THREADS", threads)
    ref = large_trajectory(cls, kw, "loop", dtype)
    got = large_trajectory(cls, kw, "fused", dtype)
    assert_same_trajectory(ref, got)
    first = np.random.default_rng(0).standard_normal(LARGE).astype(dtype)
    assert np.all(got[-1][0][0] != first)  # every value moved, the last ones too


@needs_numba
@pytest.mark.parametrize("shape", [(5,), LARGE], ids=["small", "large"])
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_fused_amsgrad_keeps_numpys_nan_after_a_nan_gradient(cls, shape):
    """Issue 19: np.maximum(max_exp_avg_sq, v) is NaN where v is; the kernel's ``vi != vi``
    term does the same (``vi > vm`` alone is False for NaN, and would keep the old maximum,
    so the NaN gradient would vanish from max_exp_avg_sq and the next steps differ)."""
    results = {}
    for impl in ("loop", "fused"):
        rng = np.random.default_rng(3)
        p = Parameter(rng.standard_normal(shape))
        opt = cls([p], lr=0.01, amsgrad=True, **FLAGS[impl])
        for t in range(3):
            p.grad[...] = rng.standard_normal(shape)
            if t == 1:
                p.grad.reshape(-1)[-1] = np.nan
            with np.errstate(invalid="ignore"):
                opt.step()
        results[impl] = (p.data.copy(), opt.state[p]["max_exp_avg_sq"].copy())
    assert np.isnan(results["loop"][1].reshape(-1)[-1])
    for a, b in zip(results["loop"], results["fused"], strict=True):
        np.testing.assert_array_equal(a, b)


@needs_numba
def test_a_step_cut_into_several_batches_keeps_each_batchs_address_table():
    """A large parameter between small ones cuts a step into two batches of one dtype; each
    keeps its own table of addresses from step to step (one cache slot for both rebuilt both
    at every step)."""
    from minidl.optim import _kernels_numba

    params = [Parameter(np.ones(10)), Parameter(np.ones(_kernels_numba.PARALLEL_MIN_SIZE)),
              Parameter(np.ones(10))]
    opt = SGD(params, lr=0.1, momentum=0.9, fused=True)
    for _ in range(3):
        opt.step()
    tables = {key: id(known[1]) for key, known in opt._fused._batches.items()}
    opt.step()
    assert len(tables) == 2
    assert tables == {key: id(known[1]) for key, known in opt._fused._batches.items()}
