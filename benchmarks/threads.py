"""``python -m benchmarks threads [--busy N]``: a training epoch on all BLAS threads against one.

What ``fit(threads="auto")`` (``minidl.threads``) is decided on. Each case trains one epoch of
``minidl.fit`` on generated MNIST-sized data, with ``threads=None`` (the BLAS's own thread
count) and ``threads=1``, interleaved, the median of ``rounds``. ``busy`` other processes spin
on the CPU meanwhile (each one core's worth of work), standing in for a machine shared with
other jobs; ``--busy 0`` is the idle machine.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np

import minidl
from minidl.threads import SMALL_WORK, choose

from .timing import interleaved

#: name -> (kind, widths, batch rows, samples per epoch); a "cnn" is the Keras example's: two
#: 3x3 convolutions of widths[0] and widths[1] channels, 2x2 max-pooling, a dense layer of
#: widths[2], ten outputs
CASES = {
    "small MLP": ("mlp", (784, 128, 128, 10), 32, 30_000),
    "middle MLP": ("mlp", (784, 512, 512, 10), 64, 20_000),
    "large MLP": ("mlp", (784, 1024, 1024, 10), 256, 20_000),
    "Keras CNN": ("cnn", (32, 64, 128), 128, 3_000),
}
QUICK = {"small MLP": ("mlp", (784, 16, 10), 32, 256), "Keras CNN": ("cnn", (4, 8, 16), 16, 32)}


def model(kind: str, widths: tuple[int, ...], rng) -> tuple[minidl.Sequential, tuple[int, ...]]:
    """The case's network (float32) and the shape of one input row."""
    if kind == "cnn":
        c1, c2, hidden = widths
        net = minidl.Sequential(
            minidl.Conv2D(1, c1, 3, rng=rng), minidl.ReLU(),
            minidl.Conv2D(c1, c2, 3, rng=rng), minidl.ReLU(), minidl.MaxPool2D(2),
            minidl.Flatten(), minidl.Dense(c2 * 12 * 12, hidden, rng=rng), minidl.ReLU(),
            minidl.Dense(hidden, 10, rng=rng))
        return net.astype(np.float32), (1, 28, 28)
    parts: list[minidl.Layer] = []
    for a, b in itertools.pairwise(widths):
        parts += [minidl.Dense(a, b, rng=rng), minidl.ReLU()]
    return minidl.Sequential(*parts[:-1]).astype(np.float32), (widths[0],)


def describe(kind: str, widths: tuple[int, ...]) -> str:
    if kind == "cnn":
        return "conv {}, conv {}, pool, dense {}, 10".format(*widths)
    return "-".join(map(str, widths))


def run(*, busy: int = 0, quick: bool = False, rounds: int = 3, log=print) -> dict:
    """Every case, timed with the BLAS's threads and with one, ``busy`` spinning processes
    running meanwhile."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(busy)]
    try:
        cases = []
        for name, (kind, widths, batch, n) in (QUICK if quick else CASES).items():
            rng = np.random.default_rng(0)
            net, shape = model(kind, widths, rng)
            layers = describe(kind, widths)
            x = rng.random((n, *shape), dtype=np.float32)
            y = rng.integers(0, 10, n)
            size = sum(p.data.size for p in net.parameters())
            opt = minidl.Adam(net.parameters())

            def epoch(threads, net=net, opt=opt, x=x, y=y, batch=batch):
                minidl.fit(net, minidl.SoftmaxCrossEntropy(), opt, x, y, epochs=1,
                           batch_size=batch, verbose=0, threads=threads)

            times = interleaved({"all": lambda epoch=epoch: epoch(None),
                                 "one": lambda epoch=epoch: epoch(1)},
                                rounds=1 if quick else rounds, warmup=1)
            auto = choose("auto", size, batch, kind == "cnn")
            cases.append({"case": name, "layers": layers, "batch": batch, "samples": n,
                          "work": batch * size, "auto": "one" if auto == 1 else "all",
                          "times": times})
            all_, one = times["all"]["median"], times["one"]["median"]
            log(f"{name:>11} ({layers}, batch {batch}, {n:,} rows): all threads {all_:.2f} s, "
                f"one {one:.2f} s ({all_ / one:.2f}x); auto: {cases[-1]['auto']}")
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return {"busy": busy, "small_work": SMALL_WORK, "cases": cases}
