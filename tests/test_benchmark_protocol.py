"""``python -m benchmarks optimizer``: tuning, caching, resuming, the statistics, and the
ranking of a good and a diverging optimizer, on the quick noisy quadratic (runs of
milliseconds)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import __main__ as bench
from benchmarks.protocol import run as protocol
from benchmarks.protocol import runs, stats, tuning

QUICK = ["--problems", "quadratic", "--quick", "--no-step-timing", "--no-figures"]
TIMING = {"elapsed", "seconds_to_target", "step_vs_adam"}

ROOT = Path(__file__).resolve().parents[1]
#: The docs' Lion (examples/lion.py), a diverging SGD and a class that is no optimizer.
OPTIMIZERS = (ROOT / "examples" / "lion.py").read_text(encoding="utf-8") + '''

class BadSGD(minidl.SGD):
    lr_range = (1e5, 1e7)  # overflows within the quick quadratic's 30 steps


class NotAnOptimizer:
    pass
'''


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "myopt.py"
    path.write_text(textwrap.dedent(OPTIMIZERS))
    return path


def main(module, name, out, *flags, cache=None):
    """One quick run on the quadratic, in this process unless ``flags`` say --jobs or
    --scheduler."""
    pool = [] if {"--jobs", "--scheduler"} & set(flags) else ["--jobs", "1"]
    argv = ["optimizer", f"{module}:{name}", "--out", str(out), *QUICK, *pool, *flags]
    if cache is not None:
        argv += ["--cache", str(cache)]
    return bench.main(argv)


# ---------------------------------------------------------------------------- statistics
def test_a_difference_is_called_only_where_the_intervals_part():
    a, b = [0.90, 0.91, 0.92], [0.80, 0.81, 0.82]
    assert stats.compare(a, b) == stats.BETTER
    assert stats.compare(b, a) == stats.WORSE
    assert stats.compare([0.9, 0.7, 0.8], [0.82, 0.81, 0.8]) == stats.NOISE
    # a loss: lower is better
    assert stats.compare([0.1, 0.11, 0.12], [0.5, 0.52, 0.51], higher_is_better=False) \
        == stats.BETTER
    # one seed gives no interval
    assert stats.compare([0.99], [0.1]) == stats.NOISE


def test_the_interval_is_mean_plus_minus_two_standard_errors():
    values = [1.0, 2.0, 3.0, 4.0]
    low, high = stats.interval(values)
    half = 2 * np.std(values, ddof=1) / 2
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half))
    assert stats.interval(values, higher_is_better=False) == pytest.approx((-2.5 - half,
                                                                            -2.5 + half))


def test_diverged_runs_are_the_worst():
    nan = math.nan
    assert stats.compare([nan, nan], [0.1, 0.2]) == stats.WORSE
    assert stats.compare([0.1, 0.2], [nan, math.inf], higher_is_better=False) == stats.BETTER
    assert stats.compare([nan, nan], [nan, nan]) == stats.NOISE
    # some seeds diverged: from the bottom up to the best finite run
    assert stats.interval([nan, 0.5, 0.7]) == (-math.inf, 0.7)
    assert stats.compare([nan, 0.5, 0.7], [0.9, 0.91]) == stats.WORSE
    assert stats.compare([nan, 0.5, 0.95], [0.9, 0.91]) == stats.NOISE


# ---------------------------------------------------------------------------- tuning
def test_the_grid_and_the_draws():
    grid = tuning.candidates(1e-4, 1.0)
    assert len(grid) == 7 and grid[0] == 1e-4 and grid[-1] == 1.0
    assert np.allclose(np.diff(np.log10(grid)), 4 / 6, atol=1e-5)
    draws = tuning.candidates(1e-3, 1e-1, budget=5)
    assert draws == tuning.candidates(1e-3, 1e-1, budget=5)  # a seeded Generator
    assert draws == sorted(draws) and all(1e-3 <= d <= 1e-1 for d in draws)
    assert len(set(draws)) == 5


def test_the_declared_range():
    class Declared:
        lr_range = (0.5, 2)

    class Wrong:
        lr_range = (2, 0.5)

    assert tuning.lr_range(Declared) == (0.5, 2.0)
    assert tuning.lr_range(object) == tuning.DEFAULT_RANGE
    with pytest.raises(ValueError, match="lr_range"):
        tuning.lr_range(Wrong)


def test_the_best_learning_rate():
    assert tuning.best([0.1, 0.01, 1.0], [0.8, 0.9, 0.9], higher_is_better=True) == 0.01
    assert tuning.best([0.1, 0.01], [0.5, 0.2], higher_is_better=False) == 0.01
    assert tuning.best([0.1, 0.01, 1.0], [math.nan, 0.3, math.inf],
                       higher_is_better=False) == 0.01
    assert tuning.best([10.0, 1.0], [math.nan, math.nan], higher_is_better=True) == 1.0


# ---------------------------------------------------------------------------- end to end
def test_the_reports_rank_a_good_and_a_diverging_optimizer(tmp_path, module, capsys):
    cache = tmp_path / "cache"
    good = main(module, "Lion", tmp_path / "lion", cache=cache)
    assert "\n0 of " in capsys.readouterr().out  # nothing cached yet
    bad = main(module, "BadSGD", tmp_path / "bad", cache=cache)
    said = capsys.readouterr().out
    # the baselines are read back for the second optimizer: only its own runs are new
    assert "tuning: 3 optimizers x 1 problems x 3 learning rates" in said
    assert "6 of 9 runs read back from the cache, 3 to run" in said
    assert bad["verdicts"]["quadratic"] == {"SGD+momentum": "worse", "Adam": "worse"}
    row = bad["table"]["quadratic"]["BadSGD"]
    assert row["diverged"] == row["seeds"] == 2
    assert "diverged (2/2 seeds)" in (tmp_path / "bad" / "summary.md").read_text()
    assert set(good["verdicts"]["quadratic"].values()) <= {"better", "within noise"}
    for name in ("summary.md", "summary.csv", "tuning.csv", "histories.csv", "results.json"):
        assert (tmp_path / "lion" / name).stat().st_size > 0
    tuned = pd.read_csv(tmp_path / "bad" / "tuning.csv")
    assert list(tuned[tuned.optimizer == "BadSGD"].lr) == [1e5, 1e6, 1e7]


class Interrupted(Exception):
    """Stands in for Ctrl-C (a KeyboardInterrupt would stop pytest itself)."""


def test_an_interrupted_run_resumes_and_redoes_nothing(tmp_path, module, monkeypatch):
    calls, armed = [], [True]
    real = runs.train

    def flaky(spec):
        calls.append(spec)
        if armed[0] and len(calls) == 5:
            raise Interrupted
        return real(spec)

    monkeypatch.setattr(runs, "train", flaky)
    with pytest.raises(Interrupted):
        main(module, "Lion", tmp_path / "out", "--jobs", "1")
    stored = list((tmp_path / "out" / "cache").rglob("*.json"))
    assert len(stored) == 4  # the four finished before the interrupt
    calls.clear()
    armed[0] = False
    first = main(module, "Lion", tmp_path / "out", "--jobs", "1")
    assert len(calls) == 9 + 3 - 4  # tuning 9, three new seeds; none of the four again
    calls.clear()
    again = main(module, "Lion", tmp_path / "out", "--jobs", "1")
    assert calls == []
    assert first["verdicts"] == again["verdicts"]
    same(tmp_path / "out", tmp_path / "out")


def test_a_cache_entry_is_keyed_by_what_makes_the_run(tmp_path):
    from benchmarks.protocol import problems

    p = problems.get("quadratic", quick=True)
    base = runs.spec(p, True, "minidl:Adam", {}, "src", 0.01, 42, {"kind": "grid"})
    keys = {runs.key(base)}
    for change in ({"lr": 0.02}, {"seed": 10}, {"kwargs": {"betas": [0.8, 0.9]}},
                   {"source": "other"}, {"minidl": "9.9"}, {"budget": {"kind": "random"}},
                   {"epochs": 4}):
        keys.add(runs.key({**base, **change}))
    assert len(keys) == 8
    cache = runs.Cache(tmp_path)
    assert cache.get(base) is None
    cache.put(base, {"rows": [], "val": math.nan, "test": 1.0, "diverged": None,
                     "seconds": 0.0})
    assert cache.get(base)["test"] == 1.0 and math.isnan(cache.get(base)["val"])
    cache.path(base).write_text("{ half written")
    assert cache.get(base) is None  # unreadable: run again


def same(a, b):
    for name in ("histories.csv", "summary.csv", "tuning.csv"):
        left, right = pd.read_csv(a / name), pd.read_csv(b / name)
        kept = [c for c in left.columns if c not in TIMING]
        pd.testing.assert_frame_equal(left[kept], right[kept], check_exact=True)


def test_one_process_two_processes_and_dask_give_the_same_results(tmp_path, module):
    main(module, "Lion", tmp_path / "one", "--jobs", "1")
    main(module, "Lion", tmp_path / "two", "--jobs", "2")
    same(tmp_path / "one", tmp_path / "two")
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from experiments import parallel

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", memory_limit="1GiB")
    try:
        main(module, "Lion", tmp_path / "dask", "--scheduler", cluster.scheduler_address)
    finally:
        parallel.close()
        cluster.close()
    same(tmp_path / "one", tmp_path / "dask")


def test_the_step_cost_and_the_figures(tmp_path, module):
    out = bench.main(["optimizer", f"{module}:Lion", "--out", str(tmp_path), "--quick",
                      "--problems", "quadratic", "--jobs", "1"])
    assert "x |" in out["text"]
    steps = pd.read_csv(tmp_path / "summary.csv")["step_vs_adam"]
    assert steps.notna().all() and (steps > 0).all()
    for name in ("tuning.png", "curves.png", "profile.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in out["text"]


# ---------------------------------------------------------------------------- flags
@pytest.mark.parametrize("argv, says", [
    (["nocolon"], "expected MODULE:CLASS"),
    (["no_such_module_xyz:Opt"], "no module named 'no_such_module_xyz'"),
    (["{module}:Missing"], "has no 'Missing'"),
    (["{module}:NotAnOptimizer"], "not a minidl.Optimizer subclass"),
    (["{module}:Lion", "--seeds", "0"], "--seeds: must be at least 1"),
    (["{module}:Lion", "--budget", "x"], "--budget: expected a whole number"),
    (["{module}:Lion", "--problems", "quadratic,imagenet"], "unknown problem(s) imagenet"),
    (["{module}:Lion", "--out", ""], "a path must not be empty"),
    (["{module}:Lion", "--scheduler", "localhost"], "tcp://HOST:PORT"),
])
def test_flags_are_checked_before_any_work(argv, says, module, tmp_path, capsys,
                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(module=module) for a in argv]
    with pytest.raises(SystemExit) as exc:
        bench.main(["optimizer", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_seeds_are_the_studies_then_seeded_draws():
    assert protocol.seeds(3) == [42, 10, 2024]
    assert protocol.seeds(7)[:5] == [42, 10, 2024, 7, 99]
    assert protocol.seeds(7) == protocol.seeds(7) and len(set(protocol.seeds(7))) == 7


# ---------------------------------------------------------------------------- the examples
def test_the_examples_are_the_docs_lion_and_a_diverging_sgd(tmp_path, capsys):
    """examples/lion.py holds docs/custom_optimizer.md's Lion word for word, and the quick
    quadratic ranks examples/too_fast_sgd.py's TooFastSGD below both baselines."""
    import inspect
    import re

    root = ROOT
    doc = (root / "docs" / "custom_optimizer.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"^```python[^\n]*\n(.*?)^```", doc, flags=re.S | re.M)
                if "class Lion(" in b]
    lion = runs.load(f"{root / 'examples' / 'lion.py'}:Lion")
    assert inspect.getsource(lion) in block
    result = bench.main(["optimizer", f"{root / 'examples' / 'too_fast_sgd.py'}:TooFastSGD",
                         "--out", str(tmp_path / "bad"), *QUICK, "--jobs", "1"])
    assert "TooFastSGD is worse than SGD+momentum, worse than Adam" in result["text"]


def test_a_loss_that_grew_huge_prints_in_powers_of_ten():
    from benchmarks.protocol import problems, report

    quadratic = problems.get("quadratic", quick=True)
    row = {"mean": 1.8e96, "std": 1.2e95, "diverged": 0, "seeds": 2}
    assert report.fmt_metric(quadratic, row) == "1.800e+96 ± 1.200e+95"
    assert report.fmt_metric(quadratic, {**row, "mean": 0.36, "std": 0.05}) == "0.3600 ± 0.0500"


def test_without_the_experiments_extra_it_prints_the_install_command(tmp_path, capsys,
                                                                      monkeypatch, module):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        main(module, "Lion", tmp_path / "out")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "python -m benchmarks optimizer: the test problems are the studies' and need the "
        "experiments extra (pandas missing): pip install -e \".[experiments,bench]\" from the "
        "repository's folder\n")
    assert not (tmp_path / "out").exists()
