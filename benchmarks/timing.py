"""Interleaved timing, the environment report and the measured memory bandwidth."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np

#: Seconds to sleep when the next contender belongs to another framework: numba's and torch's
#: OpenMP threads spin for a few milliseconds after their work, stealing the second core.
PAUSE = 0.02
#: The same where the contenders call BLAS (training steps, convolutions): OpenBLAS's threads
#: spin for 2**28 cycles after a matrix product (about 0.1 s at 2.6 GHz), and a torch step
#: timed inside that window measured 4-5 times its time after a 0.2 s pause.
BLAS_PAUSE = 0.25


def interleaved(contenders: dict[str, Callable[[], object]], *, rounds: int, warmup: int = 3,
                inner: int | dict[str, int] = 1,
                framework: Callable[[str], str] = lambda name: name.split()[0],
                pause: float = PAUSE) -> dict[str, dict]:
    """Time each contender ``rounds`` times, in rounds A B C ... A B C ... (so a change in the
    machine's load hits them all alike), after ``warmup`` untimed calls each. A sample is the
    mean of ``inner`` back-to-back calls (one count for all, or one per contender). Returns
    per contender the median and quartiles, in seconds per call. ``pause`` seconds are slept
    between two contenders of different frameworks (:data:`PAUSE`, :data:`BLAS_PAUSE`), and
    one untimed call follows each pause."""
    names = list(contenders)
    counts = inner if isinstance(inner, dict) else dict.fromkeys(names, inner)
    for name in names:
        for _ in range(warmup):
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    previous = None
    for _ in range(rounds):
        for name in names:
            fn = contenders[name]
            if previous is not None and framework(name) != framework(previous):
                time.sleep(pause)
                fn()  # untimed: after the pause the thread pools are asleep and caches cold,
                # which a loop of the contender alone never sees
            t0 = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / counts[name])
            previous = name
    return {name: {"median": float(np.median(s)), "q1": float(np.percentile(s, 25)),
                   "q3": float(np.percentile(s, 75)), "rounds": rounds, "inner": counts[name]}
            for name, s in samples.items()}


def compilations(optimizer) -> list[str]:
    """What ran minidl's ``optimizer``'s last step for its large parameters: ``["serial"]`` or
    ``["parallel"]`` (``Fused.last``; nothing for the loop)."""
    fused = getattr(optimizer, "_fused", None)
    return [] if fused is None else [fused.last]


def settle(step: Callable[[], object], optimizer, calls: int = 100):
    """Run ``step`` (a step of minidl's ``optimizer``) ``calls`` times back to back, so the fused
    path chooses serial or parallel on a loop of its own (``Adaptive`` in
    ``src/minidl/optim/_kernels_numba.py`` times call-to-call cycles, and interleaved rounds would
    put the other contenders' work into those cycles). 100 calls include two of its rechecks,
    so one noisy first choice is corrected. Returns ``step`` with the choice forced
    (``THREADS``), and the compilation it settled on; the loop is returned as it is."""
    if getattr(optimizer, "_fused", None) is None:
        return step, compilations(optimizer)
    time.sleep(PAUSE)  # the previous case's torch threads may still spin: not in these cycles
    for _ in range(calls):
        step()
    modes = compilations(optimizer)
    from minidl.optim import _kernels_numba

    def forced():
        _kernels_numba.THREADS = modes[0]
        try:
            step()
        finally:
            _kernels_numba.THREADS = "auto"

    return forced, modes


def calls_for(fn: Callable[[], object], seconds: float) -> int:
    """How many back-to-back calls of ``fn`` take about ``seconds`` (at least 1), timed on
    a call after a first one (which may compile or allocate)."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(seconds / once))


def stream_bandwidth(nbytes: int, rounds: int = 15) -> dict:
    """Bytes per second moved by the fastest in-place add ``a += b`` of two arrays of
    ``nbytes / 2`` bytes each (so the working set is ``nbytes``): read ``a`` and ``b``, write
    ``a``, three array sizes a call. That is an optimizer step's pattern (every array it writes
    it has just read); a copy into a third array would also read the destination before
    writing it (write-allocate) without counting it, and understate the bandwidth by a third.
    NumPy's ``add`` (one thread) and, when numba is installed, a parallel numba loop."""
    n = max(1, nbytes // 2 // 8)
    a, b = np.ones(n), np.full(n, 0.5)  # written, so b's pages are real (np.zeros' would all
    # map the one zero page, and reading them would cost nothing)
    adds = {"numpy": lambda: np.add(a, b, out=a)}
    try:
        import numba

        @numba.njit(parallel=True, cache=True)
        def _add(x, y):
            for i in numba.prange(x.size):
                x[i] += y[i]

        adds["numba"] = lambda: _add(a, b)
    except ImportError:
        pass
    inner = calls_for(adds["numpy"], 0.01)
    times = interleaved(adds, rounds=rounds, inner=inner, framework=lambda _: "add")
    best = min(times, key=lambda k: times[k]["median"])
    return {"bytes_per_s": 3 * a.nbytes / times[best]["median"], "by": best,
            "working_set": 2 * a.nbytes}


def environment() -> dict:
    """Versions, BLAS (threadpoolctl), thread counts, load and OpenBLAS variables."""
    env = {
        "python": sys.version.split()[0], "numpy": np.__version__,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    import minidl
    from minidl.optim import fused

    env["minidl"] = getattr(minidl, "__version__", "dev")
    env["numba"] = None
    if fused.HAVE_NUMBA:
        import numba

        env["numba"] = numba.__version__
        env["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    try:
        import threadpoolctl

        # the library's file name, not its path: the report describes the machine's libraries,
        # and a path would carry the folder it was run from into a committed file
        env["threadpools"] = [
            {**{k: info.get(k) for k in ("user_api", "internal_api", "version", "num_threads",
                                         "architecture")},
             "library": os.path.basename(info.get("filepath") or "")}
            for info in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        env["threadpools"] = "threadpoolctl is not installed (pip install -e '.[bench]')"
    return env


def add_torch(env: dict, torch) -> None:
    env["torch"] = torch.__version__
    env["torch_threads"] = torch.get_num_threads()
    config = torch.__config__.show()
    env["torch_config"] = [line.strip(" -") for line in config.splitlines()
                           if "CPU capability" in line]
    env["torch_config"] += [item.strip() for item in config.replace("\n", ",").split(",")
                            if item.strip().startswith(("BLAS_INFO", "USE_OPENMP"))]
