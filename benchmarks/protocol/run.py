"""``python -m benchmarks optimizer MODULE:CLASS``: the protocol, end to end.

1. Tuning: every candidate learning rate (:mod:`.tuning`) of the optimizer and of the two
   baselines (SGD with momentum 0.9, Adam), one run each on the first seed, scored on the
   validation split.
2. The best learning rate of each, run on every seed (the tuning run of the first seed is that
   seed's run), scored on the test split.
3. The step cost on each problem's parameters, and the report (:mod:`.report`).

Runs already in the cache are read back, not redone; the others go to ``--jobs`` processes or
a Dask cluster (``--scheduler``), one BLAS thread each, and are cached as they come back.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

import minidl as md
from minidl.cli import ArgumentParser, fail, path_arg, positive_int

from . import problems, report, runs, tuning

#: name -> (import path, keyword arguments): the baselines, tuned and run as the optimizer is.
BASELINES = {"SGD+momentum": ("minidl:SGD", {"momentum": 0.9}), "Adam": ("minidl:Adam", {})}
#: The seeds: the studies' five, then draws from a seeded Generator for more.
QUICK_SEEDS = 2


def seeds(n: int) -> list[int]:
    from experiments.settings import SEEDS

    extra = np.random.default_rng(0).integers(0, 2**31 - 1, max(0, n - len(SEEDS)))
    return [*SEEDS, *map(int, extra)][:n]


def problem_list(text: str) -> list[str]:
    import argparse

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in problems.NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown problem(s) {', '.join(unknown) or repr(text)}; choose from "
            f"{','.join(problems.NAMES)}")
    return list(dict.fromkeys(names))


def scheduler_arg(text: str) -> str:
    import argparse

    if "://" not in text:
        raise argparse.ArgumentTypeError(f"expected an address like tcp://HOST:PORT, got {text!r}")
    return text


def parser(prog: str) -> ArgumentParser:
    ap = ArgumentParser(prog=f"{prog} optimizer", description=__doc__.split("\n")[0])
    ap.add_argument("optimizer", metavar="MODULE:CLASS",
                    help="your minidl.Optimizer subclass (module importable from the current "
                    "folder, or path/to/file.py:Class); a class attribute lr_range = (low, high) "
                    "sets the learning rates tried")
    ap.add_argument("--problems", type=problem_list, default=list(problems.NAMES),
                    metavar="P,P", help=f"which problems ({','.join(problems.NAMES)})")
    ap.add_argument("--budget", type=positive_int, default=None, metavar="N",
                    help=f"N random log-uniform learning rates instead of the "
                    f"{tuning.GRID_POINTS}-point log grid")
    ap.add_argument("--seeds", type=positive_int, default=None,
                    help=f"seeds of the final runs (default: 5; --quick: {QUICK_SEEDS})")
    ap.add_argument("--jobs", type=positive_int, default=2, help="worker processes")
    ap.add_argument("--scheduler", type=scheduler_arg, default=None, metavar="tcp://HOST:PORT",
                    help="run on this Dask cluster (its workers need this checkout on their path)")
    ap.add_argument("--out", type=path_arg, default=Path("optimizer_bench"),
                    help="where the report goes (summary.md, figures, CSV, JSON)")
    ap.add_argument("--cache", type=path_arg, default=None,
                    help="finished runs, one JSON file each (default: OUT/cache); share it "
                    "between reports to reuse the baselines")
    ap.add_argument("--quick", action="store_true",
                    help=f"tiny problems, {tuning.QUICK_GRID_POINTS} learning rates, "
                    f"{QUICK_SEEDS} seeds (a smoke run)")
    ap.add_argument("--no-figures", action="store_true",
                    help="write summary.md and the CSV files without the PNG figures")
    ap.add_argument("--no-step-timing", action="store_true",
                    help="leave out the step-cost timing (it is not cached)")
    return ap


def contenders(path: str, cls: type) -> dict[str, tuple[str, dict, type]]:
    """``{name: (import path, kwargs, class)}``: the optimizer, then the baselines."""
    out = {cls.__name__: (path, {}, cls)}
    for name, (p, kw) in BASELINES.items():
        out.setdefault(name, (p, kw, runs.load(p)))
    return out


def check_optimizer(path: str, cls: type, prog: str) -> None:
    """One step on a tiny parameter, before any work, so a class that cannot be built with
    ``lr=`` or cannot step says so now."""
    try:
        tuning.lr_range(cls)
        p = md.Parameter(np.ones(3))
        p.grad[...] = 1.0
        cls([p], lr=1e-3).step()
    except Exception as exc:
        fail(f"{prog} optimizer: {path}: {cls.__name__}([...], lr=1e-3).step() failed: "
             f"{type(exc).__name__}: {exc}")


def execute(specs: list[dict], cache: runs.Cache, jobs: int, where, log=print) -> list[dict]:
    """The results of ``specs`` in order: cached ones read back, the rest run and cached as
    each comes back."""
    from experiments import parallel

    results: list[dict | None] = [cache.get(s) for s in specs]
    todo = [i for i, r in enumerate(results) if r is None]
    log(f"{len(specs) - len(todo)} of {len(specs)} runs read back from the cache, "
        f"{len(todo)} to run")
    if todo:
        pool = parallel.Parallel(jobs, where, batch_size=1)
        from joblib import delayed

        done = pool(delayed(runs.train)(specs[i]) for i in todo)
        for i, result in zip(todo, done, strict=True):
            cache.put(specs[i], result)
            results[i] = result
            log(describe(specs[i], result))
    return [r for r in results if r is not None]


def describe(s: dict, r: dict) -> str:
    what = "diverged (" + r["diverged"] + ")" if r["diverged"] else \
        f"val {r['val']:.4g} test {r['test']:.4g}"
    return (f"  {s['problem']['name']:<9} {s['optimizer']:<24} lr {s['lr']:<9.3g} "
            f"seed {s['seed']:<5} {what}, {r['seconds']:.1f} s")


def main(argv: list[str], prog: str = "python -m benchmarks") -> dict:
    args = parser(prog).parse_args(argv)
    from experiments import parallel

    where = parallel.backend(args)
    if where.name == "dask":
        try:
            parallel.require_dask()
        except parallel.BackendUnavailableError as exc:
            fail(f"{prog} optimizer: {exc}")
    cls = runs.load(args.optimizer)
    check_optimizer(args.optimizer, cls, prog)
    for name in ("out", "cache"):
        folder = getattr(args, name)
        if folder is not None and folder.exists() and not folder.is_dir():
            fail(f"{prog} optimizer: --{name} {folder}: exists and is not a folder")
    cache = runs.Cache(args.cache if args.cache is not None else args.out / "cache")
    quick = args.quick
    n_seeds = args.seeds or (QUICK_SEEDS if quick else 5)
    points = tuning.QUICK_GRID_POINTS if quick else tuning.GRID_POINTS
    seed_list = seeds(n_seeds)
    chosen = {name: problems.get(name, quick) for name in args.problems}
    who = contenders(args.optimizer, cls)
    start = time.perf_counter()

    # 1. tuning: one seed, every candidate
    plan = {}
    for pname, problem in chosen.items():
        for oname, (path, kw, c) in who.items():
            low, high = tuning.lr_range(c)
            budget = tuning.settings(low, high, args.budget, points)
            lrs = tuning.candidates(low, high, args.budget, points)
            src = runs.source_hash(c)
            plan[pname, oname] = (lrs, [runs.spec(problem, quick, path, kw, src, lr,
                                                  seed_list[0], budget) for lr in lrs])
    print(f"tuning: {len(who)} optimizers x {len(chosen)} problems x "
          f"{len(next(iter(plan.values()))[0])} learning rates on seed {seed_list[0]}")
    flat = [s for _, specs in plan.values() for s in specs]
    found = iter(execute(flat, cache, args.jobs, where))
    tuned = {k: (lrs, [next(found) for _ in specs]) for k, (lrs, specs) in plan.items()}

    # 2. the best learning rate of each on every seed
    final_plan = {}
    for (pname, oname), (lrs, results) in tuned.items():
        problem = chosen[pname]
        lr = tuning.best(lrs, [r["val"] for r in results], problem.higher_is_better)
        base = plan[pname, oname][1][lrs.index(lr)]
        final_plan[pname, oname] = (lr, [{**base, "seed": s} for s in seed_list])
    print(f"final runs: the best learning rate of each on {n_seeds} seeds")
    flat = [s for _, specs in final_plan.values() for s in specs]
    found = iter(execute(flat, cache, args.jobs, where))
    final = {k: (lr, specs, [next(found) for _ in specs]) for k, (lr, specs) in
             final_plan.items()}
    seconds = time.perf_counter() - start

    # 3. step cost and the report
    steps = {} if args.no_step_timing else step_costs(chosen, who, final, quick)
    result = report.write(args.out, problems=chosen, contenders=list(who), user=cls.__name__,
                          tuned=tuned, final=final, steps=steps, seeds=seed_list,
                          command=f"{prog} optimizer " + " ".join(argv), seconds=seconds,
                          budget=tuning.settings(*tuning.lr_range(cls), args.budget, points),
                          figures=not args.no_figures)
    print(result["text"])
    print(f"wrote {args.out / 'summary.md'} ({seconds:.0f} s of runs)")
    return result


def step_costs(chosen: dict, who: dict, final: dict, quick: bool) -> dict:
    """Median seconds of one optimizer step on each problem's parameters (benchmarks.optim's
    timing, each optimizer at its chosen learning rate, its default path), and the ratio to
    Adam's."""
    from .. import optim

    out = {}
    for pname, problem in chosen.items():
        shapes, dtype = problem.shapes()
        table = {name: (c, None, {"lr": final[pname, name][0], **kw})
                 for name, (_, kw, c) in who.items()}
        with np.errstate(all="ignore"):
            timed = optim.run(sets={pname: (shapes, dtype, problem.description)},
                              optimizers=table, budget=0.02 if quick else 0.1,
                              log=lambda line: None)
        med = {c["optimizer"]: c["times"]["minidl"]["median"] for c in timed["cases"]}
        adam = med.get("Adam", math.nan)
        out[pname] = {name: {"seconds": t, "vs_adam": t / adam} for name, t in med.items()}
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
