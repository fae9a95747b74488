"""``python -m benchmarks [all|optim|train|threads] [--optimizer module:Class ...] [--quick] ...``

``python -m benchmarks optimizer MODULE:CLASS [--problems ...] [--budget N] [--seeds N] ...``
trains your optimizer on the test problems against tuned baselines
(:mod:`benchmarks.protocol`; docs/benchmark_your_optimizer.md).

``all`` (the default) times the optimizer steps, the training steps, an epoch of the MNIST MLP,
Conv2D and an epoch of the Keras CNN (``--cnn-samples`` images), and writes
``performance.json``, the generated part of ``performance.md`` and ``performance.png`` into
``--out`` (default ``./performance``). ``optim`` times only optimizer steps (``--optimizer`` adds
your own classes beside the built-ins); ``train`` only the training. torch is used when
installed (``--no-torch`` leaves it out). The committed ``docs/performance.*`` are regenerated
by one command, from the repository root, with OpenBLAS's variables unset for it alone::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks --out docs

``threads`` times training epochs on all BLAS threads against one (what ``fit(threads="auto")``
decides on, ``benchmarks/threads.py``), with ``--busy N`` other processes keeping N cores busy,
and writes ``threads.json`` into ``--out``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from minidl.cli import (
    ArgumentParser,
    fail,
    non_negative_int,
    path_arg,
    positive_int,
    positive_number,
)

from . import optim, report, threads, timing, train


def parse(argv, prog: str = "python -m benchmarks"):
    ap = ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="?", default="all",
                    choices=["all", "optim", "train", "threads", "optimizer"],
                    help="what to time (default: all); `optimizer MODULE:CLASS` benchmarks "
                    "your optimizer's training against the baselines (its own --help)")
    ap.add_argument("--optimizer", action="append", default=[], metavar="MODULE:CLASS",
                    help="a minidl.Optimizer subclass to time beside the built-ins (repeatable)")
    ap.add_argument("--only-user", action="store_true",
                    help="with --optimizer: time only your optimizers (and Adam for scale)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few rounds (for tests)")
    ap.add_argument("--no-torch", action="store_true", help="do not import torch")
    ap.add_argument("--out", type=path_arg, default=Path("performance"),
                    help="where performance.json/.md/.png go, relative to the current folder "
                    "(the committed ones: --out docs, from the repository root)")
    ap.add_argument("--budget", type=positive_number, default=0.4,
                    help="seconds of timing per contender and case")
    ap.add_argument("--cnn-samples", type=positive_int, default=60_000, metavar="N",
                    help="images in the Keras CNN's timed epoch (default 60,000, as MNIST)")
    ap.add_argument("--busy", type=non_negative_int, default=0, metavar="N",
                    help="threads: N other processes spin on the CPU meanwhile (a busy machine)")
    return ap.parse_args(argv)


def main(argv=None, prog: str = "python -m benchmarks") -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["optimizer"]:
        from experiments.__main__ import missing_extra

        missing = missing_extra()
        if missing:
            fail(f"{prog} optimizer: the test problems are the studies' and need the "
                 f"experiments extra ({', '.join(missing)} missing): pip install -e "
                 "\".[experiments,bench]\" from the repository's folder")
        from .protocol import run as protocol

        return protocol.main(argv[1:], prog)
    args = parse(argv, prog)
    if args.what == "optimizer":  # a flag before it: `optimizer` must come first
        fail(f"{prog}: error: optimizer must be the first argument: {prog} optimizer "
             "MODULE:CLASS [options]")
    if args.what == "threads":
        return run_threads(args)
    user = [optim.load_optimizer(spec, f"{prog} --optimizer") for spec in args.optimizer]
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch is not installed: timing minidl alone (pip install torch==2.13.0)")
    env = timing.environment()
    if torch is not None:
        timing.add_torch(env, torch)
    for line in report.environment_lines(env):
        print(line)
    budget = 0.02 if args.quick else args.budget
    result: dict = {"environment": env, "argv": sys.argv[1:] if argv is None else list(argv)}
    if args.what in ("all", "optim"):
        sets = optim.QUICK_SETS if args.quick else optim.PARAM_SETS
        optimizers = optim.OPTIMIZERS
        if args.only_user:
            optimizers = {"Adam": optim.OPTIMIZERS["Adam"]}
        result["optim"] = optim.run(sets=sets, optimizers=optimizers, user=user, torch=torch,
                                    budget=budget)
    if args.what in ("all", "train"):
        result["train"] = train.training_steps(
            cases=train.QUICK_STEP_CASES if args.quick else None, torch=torch,
            budget=0.05 if args.quick else 1.0)
        result["epoch"] = train.epoch(n=512 if args.quick else 60_000, torch=torch,
                                      rounds=1 if args.quick else 3)
        result["conv2d"] = train.conv2d(torch=torch, budget=0.05 if args.quick else 1.0,
                                        batch=2 if args.quick else 32)
        result["cnn_epoch"] = train.cnn_epoch(n=256 if args.quick else args.cnn_samples,
                                              torch=torch, rounds=1 if args.quick else 3)
    env["load_average_end"] = list(os.getloadavg())
    try:
        import numba

        env["numba_threading_layer"] = numba.threading_layer()
    except (ImportError, ValueError):
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(args.out / "performance.json", result)
    if "optim" in result:
        plot = args.out / "performance.png"
        try:
            report.plot(plot, result)
        except ImportError:
            plot = None
            print("matplotlib is not installed: no plot (pip install -e '.[bench]')")
        command = "python -m benchmarks " + shlex.join(result["argv"])
        unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v not in os.environ]
        if unset:
            command = "env " + " ".join(f"-u {v}" for v in unset) + " " + command
        report.write_markdown(args.out / "performance.md",
                              report.markdown(result, command.strip(),
                                              plot.name if plot else None))
        print(f"wrote {args.out / 'performance.md'}")
    print(f"wrote {args.out / 'performance.json'} at {time.strftime('%H:%M:%S')}")
    return result


def run_threads(args) -> dict:
    """``python -m benchmarks threads``: :func:`benchmarks.threads.run`, written to
    ``--out``/threads.json."""
    env = timing.environment()
    for line in report.environment_lines(env):
        print(line)
    result = {"environment": env, **threads.run(busy=args.busy, quick=args.quick)}
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(args.out / "threads.json", result)
    print(f"wrote {args.out / 'threads.json'}")
    return result


if __name__ == "__main__":
    main()
