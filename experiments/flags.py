"""The flags the studies take, defined once: the study runner shows them in its ``--help``,
checks them before running anything and hands them on; :func:`experiments.common.parser` and
:func:`experiments.mnist_common.parser` read them. Light to import (no pandas, no models)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from experiments.qa.embedders import FEATURE_NAMES
from experiments.settings import ALL_KINDS, INPUTS, QUICK_EPOCHS, QUICK_SEEDS, SEEDS
from minidl.cli import path_arg, positive_int

DEFAULT_FEATURES = "e5-small"


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else all)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: Processes for the runs: one per core.
DEFAULT_JOBS = cores()
#: The largest seed: numpy's legacy generators (and scikit-learn's) take seeds below 2**32.
MAX_SEED = 2**32 - 1
BACKENDS = ("loky", "dask")


def add_study_flags(p: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags of the question/answer studies (the MNIST studies accept and ignore the ones
    that do not apply to them); returns the actions added."""
    return [
        p.add_argument("--epochs", type=positive_int,
                       help="epochs of every run (default: the study's)"),
        p.add_argument("--seeds", type=seed_int, nargs="+",
                       help=f"seeds (default: the study's, {SEEDS})"),
        p.add_argument("--features", choices=FEATURE_NAMES, default=DEFAULT_FEATURES,
                       help="QA studies: the sentence features"),
        p.add_argument("--data", type=path_arg, help="QA studies: a folder with train.csv and "
                       "test.csv (default: the repository's data/qa)"),
        p.add_argument("--inputs", nargs="+", choices=INPUTS, type=str,
                       help="QA studies: the model's inputs: source, the source's "
                       "[q | a | 1]; pairs, [q | a | q*a | |q-a| | 1] (default: both in "
                       "optimizers and adaptive, pairs in the others)"),
        p.add_argument("--kinds", nargs="+", metavar="KIND", type=kinds_token,
                       help=f"QA studies: what each model is trained on, one run set per "
                       f"token: {ALL_KINDS} (every kind together, the source's setting), a "
                       f"kind of wrong answer (fact, non_answer, other_answer) or kinds "
                       f"joined by + (default: {ALL_KINDS}, then each kind alone, in "
                       f"optimizers and adaptive; {ALL_KINDS} in the others); the test split "
                       f"is always scored whole, per kind"),
        p.add_argument("--out", type=path_arg, default=Path("runs"),
                       help="results folder, relative to the current folder (the committed "
                       "results: --out results, from the repository root)"),
        p.add_argument("--quick", action="store_true",
                       help=f"a smoke run: {QUICK_EPOCHS} epochs, {QUICK_SEEDS} seeds"),
        p.add_argument("--jobs", type=jobs_count, default=DEFAULT_JOBS,
                       help="QA studies: runs in parallel on this machine (loky processes; "
                       "at most one per core: more is capped, with a note)"),
        p.add_argument("--backend", choices=BACKENDS, default="loky",
                       help="QA studies: where the runs go: loky, processes on this machine; "
                       "dask, a Dask cluster (--scheduler, else the dask config's "
                       "scheduler-address, else a local cluster of --jobs workers on "
                       "127.0.0.1). Needs pip install 'minidl[dask]'"),
        p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="QA studies: a Dask scheduler's address (implies --backend dask)"),
        p.add_argument("--storage", metavar="URL",
                       help="hyperparams: an optuna storage URL (sqlite:///PATH locally, any "
                       "database URL optuna supports on a cluster, reachable from every worker) "
                       "holding the searches' studies, one new study per strategy: the workers "
                       "open their trials there and record on them; the results are those of "
                       "a run without it. Needs optuna: pip install 'minidl[experiments]'"),
    ]


class FlagError(ValueError):
    """A flag's value that the data or the study cannot take (a kind the data does not have,
    a seed given twice): the runner says it in one line."""


def kinds_token(text: str) -> str:
    """A ``--kinds`` token: ``all`` or kind names joined by ``+`` (letters, digits, ``_``)."""
    parts = text.split("+")
    if text != ALL_KINDS and (ALL_KINDS in parts or not all(
            part.replace("_", "").isalnum() for part in parts)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected {ALL_KINDS}, a kind such as other_answer, or kinds joined by "
            f"+ (fact+non_answer)")
    return "+".join(sorted(set(parts)))


def seed_int(text: str) -> int:
    """An argparse type: a seed, a whole number from 0 to :data:`MAX_SEED`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {MAX_SEED}, "
                                         f"got {value}")
    return value


def jobs_count(text: str, say=lambda line: print(line, file=sys.stderr)) -> int:
    """An argparse type: a number of parallel runs, at least 1; more than this machine's
    :func:`cores` is capped at them, and ``say`` gets a line saying so (hundreds of processes
    on a few cores only make every run slower)."""
    value, limit = positive_int(text), cores()
    if value > limit:
        say(f"note: --jobs {value}: this machine has {limit} core{'s' * (limit != 1)}; "
            f"running {limit} at a time")
        return limit
    return value


def check_seeds(seeds) -> list[int]:
    """``seeds`` as a list, refused (:class:`FlagError`) when one is given twice: one seed run
    twice would count as two runs and report a spread of 0."""
    seeds = list(seeds)
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise FlagError(f"--seeds: {' '.join(map(str, twice))} given more than once")
    return seeds


def check_out(out, flag: str = "--out", given=None) -> Path:
    """The results folder ``out``, created if missing and checked to take a file, before any
    work: a folder that cannot be written (read-only, a file in the way, no such device) is a
    :class:`FlagError` naming ``flag`` and its value ``given`` (default ``out``), not an
    ``OSError`` after the runs."""
    out = Path(out)
    given = out if given is None else given
    if out.exists() and not out.is_dir():
        raise FlagError(f"{flag} {given}: {out} is a file, not a folder"
                        if Path(given) != out else f"{flag} {given}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".minidl-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            why = "part of that path is a file, not a folder"
        raise FlagError(f"{flag} {given}: cannot write there: {why}") from None
    return out


def missing_kinds(tokens, present) -> list[str]:
    """The ``--kinds`` tokens that name a kind not in ``present`` (the data's kinds)."""
    return [t for t in tokens if t != ALL_KINDS and not set(t.split("+")) <= set(present)]


def add_mnist_flags(p: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags only the MNIST studies take."""
    return [
        p.add_argument("--dataset", choices=("mnist", "synthetic"),
                       help="MNIST studies: mnist (default) or synthetic, a tiny generated "
                       "stand-in (the default with --quick)"),
        p.add_argument("--mnist-dir", type=path_arg,
                       help="MNIST studies: a folder of MNIST IDX files (optional)"),
        p.add_argument("--protocol", choices=("split", "source"), default="split",
                       help="MNIST studies: split, train on 48,000 and validate on 12,000; "
                       "source, as the source did (test set as validation)"),
    ]


def to_argv(args: argparse.Namespace, actions: list[argparse.Action]) -> list[str]:
    """The command-line tokens that give ``args`` for ``actions`` (defaults left out)."""
    argv: list[str] = []
    for action in actions:
        value = getattr(args, action.dest)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv
