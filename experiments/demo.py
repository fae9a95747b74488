"""The main job: the QA study's TwoLayerMLP trained with GD, SGD and Adam, on what each kind of
wrong answer allows.

The shipped Turkish question/answer pairs (``data/qa``) are read as the committed
multilingual-e5-small sentence embeddings, in two forms: the source's inputs ``[q | a | 1]``
and the sentence-pair features ``[q | a | q*a | |q-a| | 1]``. Each is trained on all kinds of
wrong answer together (the source's setting) and on each kind alone (``fact``: one fact
swapped; ``non_answer``: a true statement that does not answer; ``other_answer``: the right
answer of another question of the same topic). The model, loss, optimizers, learning rates,
batch sizes, 100 epochs and five seeds are the source's (``experiments.settings``); a fifth of
the training questions is held out for validation, and the whole test split is scored once per
run, per kind. One line per finished run, then the table and its reading. It writes no
results (with ``--data``, the embeddings of your rows are cached for the next run).

    python -m experiments.demo                                # the full job
    python -m experiments.demo --seeds 42 --inputs pairs --kinds other_answer
    python -m experiments.demo --data my_qa/ --features tfidf # your own train.csv / test.csv
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from experiments import common, report
from experiments.optimizers import train
from experiments.qa.embedders import FEATURE_NAMES, ModelUnavailableError
from experiments.settings import EPOCHS, INPUTS, SEEDS, THREE
from minidl.cli import ArgumentParser, path_arg
from minidl.errors import MinidlError

from .flags import (
    DEFAULT_FEATURES,
    DEFAULT_JOBS,
    FlagError,
    check_seeds,
    jobs_count,
    kinds_token,
    positive_int,
    seed_int,
)


def arguments(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m experiments.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizers", nargs="+", choices=THREE, default=list(THREE))
    p.add_argument("--data", type=path_arg, help="a folder with train.csv and test.csv in the "
                   "study's format (default: the shipped data/qa)")
    p.add_argument("--features", choices=FEATURE_NAMES, default=DEFAULT_FEATURES,
                   help="the sentence embedder")
    p.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS),
                   help="source: [q | a | 1]; pairs: [q | a | q*a | |q-a| | 1]")
    p.add_argument("--kinds", nargs="+", type=kinds_token, metavar="KIND",
                   help="what to train on: all, a kind, or kinds joined by + (default: all, "
                   "then each kind of the data alone)")
    p.add_argument("--epochs", type=positive_int, default=EPOCHS)
    p.add_argument("--seeds", type=seed_int, nargs="+", default=list(SEEDS))
    p.add_argument("--jobs", type=jobs_count, default=DEFAULT_JOBS,
                   help="runs in parallel (processes; at most one per core)")
    args = p.parse_args(argv)
    try:
        check_seeds(args.seeds)
    except FlagError as exc:
        p.error(str(exc))
    if args.data is not None and not args.data.is_dir():
        p.error(f"--data {args.data}: not a folder")
    return args


def main(argv=None) -> pd.DataFrame:
    args = arguments(argv)
    start = time.perf_counter()
    try:
        features = common.load_features(args.features, args.data)
        variants = common.qa_variants(args, features)
    except (ModelUnavailableError, MinidlError, OSError, FlagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    tasks = common.grid(variants, args.optimizers, args.seeds, epochs=args.epochs)
    print(f"{len(tasks)} runs ({len(variants)} training sets x {len(args.optimizers)} "
          f"optimizers x {len(args.seeds)} seeds, {args.epochs} epochs) on {args.jobs} "
          f"processes:", flush=True)
    results = common.run_all(train, tasks, args, "run", report=lambda line: print(
        line.removeprefix("[run] "), flush=True))
    _, summary = common.tables("demo", [ids for ids, _ in tasks], results)
    print(f"\ntest accuracy, mean ± sample std over {len(args.seeds)} seeds "
          f"({summary['n_test'].iloc[0]} test rows, {args.features} features; "
          f"{time.perf_counter() - start:.0f} s):")
    print(table(summary))
    print("\n" + report.reading_lines(summary))
    return summary


def table(summary: pd.DataFrame) -> str:
    """The summary as aligned text: one row per inputs, training set and optimizer."""
    kinds = report.kinds(summary)
    n = summary["n_test"].iloc[0]
    rows = [[r["inputs"], r["trained_on"], report.LABELS.get(r["optimizer"], r["optimizer"]),
             report.fmt(r["test_accuracy_mean"], r["test_accuracy_std"], n),
             *(report.fmt(r[f"test_accuracy_{k}_mean"], r[f"test_accuracy_{k}_std"], n)
               for k in kinds)] for _, r in summary.iterrows()]
    head = ["inputs", "trained on", "optimizer", "all test rows", *kinds]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True))
                     .rstrip() for line in [head, *rows])


if __name__ == "__main__":
    main()
