"""What the question/answer studies share, written once.

- :func:`load_features`: the one place features come from (rows ``[q | a | 1]``, labels +-1,
  the texts, and the answer kind of each row where the data has kinds).
- :func:`split`: a validation split carved from the training *questions* (both answers of a
  question go to the same side) with a seed; the test split is only scored once per run.
- :class:`Run` and :func:`run_all`: one seeded training run of the study's model with one of the
  study's optimizers, through :func:`minidl.fit`; independent runs in parallel (joblib), with a
  progress bar.
- :func:`tables` and :func:`write_results`: ``epochs.csv``, ``summary.csv`` and ``config.json``.
- :func:`parser` and :func:`settings`: the flags every study takes.
- :func:`curves`, :func:`bars`, :func:`save_figure`: plot panels (Agg backend).
- :func:`source_table`, :func:`chance_verdict`: pieces of the report's sections.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import minidl
from minidl import MSE, SGD, AdaGrad, Adam, RecursiveMLP, RMSProp, Tanh
from minidl.callbacks import EarlyStopping, WeightTrajectory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "qa"
SEEDS = (42, 10, 2024, 7, 99)
VAL_FRACTION, VAL_SEED = 0.2, 0
QUICK_EPOCHS, QUICK_SEEDS = 3, 2
FEATURES = ("e5-small", "minilm", "tfidf", "e5-large")

#: The study's optimizers: class, learning rate, batch size (None: full batch), other settings.
OPTIMIZERS = {
    "gd": (SGD, 0.01, None, {}),
    "sgd": (SGD, 0.1, 32, {}),
    "adam": (Adam, 0.001, 32, {"betas": (0.9, 0.999), "eps": 1e-8}),
    "adagrad": (AdaGrad, 0.01, 32, {"eps": 1e-8}),
    "rmsprop": (RMSProp, 0.01, 32, {"alpha": 0.9, "eps": 1e-8}),
}
LABELS = {"gd": "GD", "sgd": "SGD", "adam": "Adam", "adagrad": "AdaGrad", "rmsprop": "RMSProp"}
COLORS = {"gd": "tab:blue", "sgd": "tab:orange", "adam": "tab:green", "adagrad": "tab:red",
          "rmsprop": "tab:purple"}


# ---------------------------------------------------------------------------- features
class FeaturesUnavailable(RuntimeError):
    """The requested features cannot be made here; the message says why."""


@dataclass
class Features:
    """Rows ``[q | a | 1]`` and +-1 labels of both splits, their texts and answer kinds."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    texts: dict = field(default_factory=dict)   # split -> (questions, answers)
    kinds: dict = field(default_factory=dict)   # split -> per-row answer kind, or None


def _qa_package() -> bool:
    """True once ``experiments.qa.features`` (the data engineer's interface) is installed."""
    try:
        return importlib.util.find_spec("experiments.qa.features") is not None
    except ModuleNotFoundError:
        return False


def default_features() -> str:
    """e5-small once its features exist; until then the committed MiniLM features."""
    return "e5-small" if _qa_package() else "minilm"


def load_features(name: str | None = None, data_dir=None):
    """The features ``name`` of the data in ``data_dir`` (default: the shipped ``data/qa``).

    The single point where features come from: ``experiments.qa.features.qa_features`` where it
    exists; otherwise the committed MiniLM file, or TF-IDF fitted on the training texts."""
    name = name or default_features()
    if name not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {name!r}")
    if _qa_package():
        from experiments.qa.features import qa_features

        return qa_features(features=name, data=data_dir)
    from minidl.datasets import TfidfEmbedder, load_qa_features, load_splits, pair_features

    folder = Path(data_dir) if data_dir is not None else DATA
    if name == "tfidf":
        train, test = load_splits(folder / "train.csv", folder / "test.csv")
        embedder = TfidfEmbedder(max_features=1024).fit(train.questions + train.answers)
        X = {s: pair_features(d.questions, d.answers, embedder) for s, d in
             (("train", train), ("test", test))}
        return Features(X["train"], train.labels, X["test"], test.labels,
                        {"train": (train.questions, train.answers),
                         "test": (test.questions, test.answers)},
                        {"train": None, "test": None})
    if name == "minilm" and data_dir is None:
        f = load_qa_features(DATA / "features" / "all-MiniLM-L6-v2.npz")
        return Features(f.X_train, f.y_train, f.X_test, f.y_test, f.texts,
                        {"train": None, "test": None})
    raise FeaturesUnavailable(
        f"{name} features of {data_dir or 'data/qa'} need experiments.qa.features (not "
        f"installed yet) or a sentence-embedding model; here only minilm (the committed file) "
        f"and tfidf exist")


def interaction(X: np.ndarray) -> np.ndarray:
    """``[q | a | 1]`` -> ``[q | a | q*a | |q-a| | 1]``, the classic sentence-pair features."""
    d = (X.shape[1] - 1) // 2
    q, a = X[:, :d], X[:, d:2 * d]
    return np.hstack([q, a, q * a, np.abs(q - a), X[:, 2 * d:]])


def data_hash(features) -> str:
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


def split(features, transform=None, seed: int = VAL_SEED, fraction: float = VAL_FRACTION):
    """Hold out ``fraction`` of the training questions (with both their answers) for validation."""
    questions = np.asarray(features.texts["train"][0])
    distinct = np.array(sorted(set(questions.tolist())))
    held = set(np.random.default_rng(seed).permutation(distinct)[:round(fraction * len(distinct))])
    val = np.array([q in held for q in questions])
    X_train, X_test = features.X_train, features.X_test
    if transform is not None:
        X_train, X_test = transform(X_train), transform(X_test)
    y = np.asarray(features.y_train, dtype=float).reshape(-1, 1)
    kinds = (getattr(features, "kinds", None) or {}).get("test")
    return Split(X_train[~val], y[~val], X_train[val], y[val], X_test,
                 np.asarray(features.y_test, dtype=float).reshape(-1, 1), questions[~val],
                 None if kinds is None else np.asarray(kinds))


# ---------------------------------------------------------------------------- runs
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
    """Train once, score the test split once; the per-epoch rows, test scores and weights."""
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
    callbacks = list(callbacks)
    trajectory = WeightTrajectory() if run.record_weights else None
    callbacks += [trajectory] if trajectory else []
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
    rows = [{"epoch": int(e), "train_loss": tl, "train_accuracy": ta, "val_loss": vl,
             "val_accuracy": va, "elapsed": t} for e, tl, ta, vl, va, t in
            zip(*(history[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                       "val_accuracy", "time")), strict=True)]
    weights = trajectory.weights.astype(np.float32) if trajectory else None
    return {"rows": rows, "test": test, "weights": weights, "n_test": len(data.y_test),
            "events": [e.get("event") for e in history.events]}


def run_all(runs: list[Run], data: dict[str, Split], jobs: int, label: str = "") -> list[dict]:
    """:func:`train` every run (in parallel over ``jobs`` processes), in the order given."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    tasks = (delayed(train)(run, data[run.data]) for run in runs)
    results = Parallel(n_jobs=jobs, return_as="generator")(tasks)
    return list(tqdm(results, total=len(runs), desc=label, unit="run", leave=False,
                     file=sys.stderr, disable=None))


# ---------------------------------------------------------------------------- tables
def tables(study: str, runs: list[Run], results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``epochs`` (one row per run and epoch; test accuracy on each run's last row only) and
    ``summary`` (one row per variant and optimizer: means and sample std over seeds)."""
    frames, finals = [], []
    for run, result in zip(runs, results, strict=True):
        ep = pd.DataFrame(result["rows"])
        for key, value in result["test"].items():
            ep[key] = np.nan
            ep.loc[ep.index[-1], key] = value
        ep.insert(0, "seed", run.seed)
        ep.insert(0, "optimizer", run.optimizer)
        ep.insert(0, "variant", run.variant)
        ep.insert(0, "study", study)
        frames.append(ep)
        finals.append(ep.iloc[-1])
    epochs = pd.concat(frames, ignore_index=True)
    last = pd.DataFrame(finals)
    metrics = [c for c in last.columns if c.startswith("test_accuracy")]
    grouped = last.groupby(["variant", "optimizer"], sort=False)
    summary = grouped[metrics[0]].agg(["mean", "std"]).add_prefix(f"{metrics[0]}_")
    for column in (*metrics[1:], "train_loss", "train_accuracy", "val_accuracy", "epoch",
                   "elapsed"):
        summary[f"{column}_mean"] = grouped[column].mean()
    summary["n_seeds"] = grouped["seed"].nunique()
    summary["n_test"] = results[0]["n_test"]
    for kind in metrics[1:]:  # per answer kind: `test_accuracy_<kind>` is the mean over seeds
        summary[kind] = summary.pop(f"{kind}_mean")
    return epochs, summary.reset_index()


def versions() -> dict[str, str]:
    names = ("numpy", "scikit-learn", "pandas", "matplotlib", "joblib", "optuna", "tqdm")
    out = {"python": platform.python_version(), "minidl": minidl.__version__}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_results(out: Path, study: str, args, per_epoch: pd.DataFrame | None,
                  summary: pd.DataFrame | None, features=None, **settings) -> Path:
    """``out/<study>/``: epochs.csv, summary.csv and config.json (settings, data hash,
    package versions)."""
    folder = Path(out) / study
    folder.mkdir(parents=True, exist_ok=True)
    if per_epoch is not None:
        per_epoch.to_csv(folder / "epochs.csv", index=False)
    if summary is not None:
        summary.to_csv(folder / "summary.csv", index=False)
    config = {"study": study, "argv": vars(args), "settings": settings,
              "optimizers": {k: {"class": c.__name__, "lr": lr, "batch_size": b, **o}
                             for k, (c, lr, b, o) in OPTIMIZERS.items()},
              "validation": {"fraction": VAL_FRACTION, "seed": VAL_SEED, "by": "question"},
              "data_sha256": None if features is None else data_hash(features),
              "versions": versions()}
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=_jsonable) + "\n")
    return folder


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Run):
        return asdict(value)
    return str(value)


# ---------------------------------------------------------------------------- flags
def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every study takes."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--epochs", type=int, help="epochs of every run (default: the study's)")
    p.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default: the study's, {SEEDS})")
    p.add_argument("--features", choices=FEATURES, help="default: e5-small where it exists, "
                   "else minilm")
    p.add_argument("--data", type=Path, help="a folder with train.csv and test.csv")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs, "
                   f"{QUICK_SEEDS} seeds: a smoke run")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
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


# ---------------------------------------------------------------------------- figures
def figure(nrows: int, ncols: int, title: str, size=(5.0, 3.8)):
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    fig.suptitle(title)
    return fig, axes


def curves(ax, epochs: pd.DataFrame, y: str, x: str = "epoch", by: str = "optimizer",
           title: str = "", ylabel: str | None = None) -> None:
    """Mean over seeds of ``y`` against ``x`` (epoch, or mean elapsed seconds), a +-1 std band
    and a line per ``by`` group."""
    for name, group in epochs.groupby(by, sort=False):
        stats = group.groupby("epoch").agg(m=(y, "mean"), s=(y, "std"), t=("elapsed", "mean"))
        xs = stats.index if x == "epoch" else stats["t"]
        color = COLORS.get(name)
        ax.plot(xs, stats["m"], label=LABELS.get(name, name), color=color)
        ax.fill_between(xs, stats["m"] - stats["s"].fillna(0), stats["m"] + stats["s"].fillna(0),
                        alpha=0.2, color=color)
    ax.set_xlabel("epoch" if x == "epoch" else "training time (s)")
    ax.set_ylabel(ylabel or y.replace("_", " "))
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def bars(ax, summary: pd.DataFrame, title: str, group: str = "variant") -> None:
    """Test accuracy (mean +- std over seeds) per ``group`` value and optimizer; chance dashed."""
    groups = list(dict.fromkeys(summary[group]))
    optimizers = list(dict.fromkeys(summary["optimizer"]))
    width = 0.8 / len(optimizers)
    for i, opt in enumerate(optimizers):
        rows = summary[summary["optimizer"] == opt].set_index(group).reindex(groups)
        ax.bar(np.arange(len(groups)) + i * width, rows["test_accuracy_mean"], width,
               yerr=rows["test_accuracy_std"].fillna(0), capsize=3, color=COLORS.get(opt),
               label=LABELS.get(opt, opt))
    ax.axhline(0.5, ls="--", color="grey", lw=1, label="chance (0.5)")
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [str(g) for g in groups])
    ax.set_ylim(0, 1)
    ax.set_xlabel(group)
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title(title)
    ax.legend(fontsize="small")


def save_figure(fig, folder: Path, name: str) -> Path:
    path = Path(folder) / name
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- report pieces
def read_summary(results: Path, study: str) -> pd.DataFrame:
    return pd.read_csv(Path(results) / study / "summary.csv", dtype={"variant": str})


def fmt(mean: float, std: float) -> str:
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def kind_columns(summary: pd.DataFrame) -> list[str]:
    """The per-answer-kind accuracy columns, ``test_accuracy_<kind>``."""
    return [c for c in summary.columns if c.startswith("test_accuracy_")
            and c not in ("test_accuracy_mean", "test_accuracy_std")]


def source_table(summary: pd.DataFrame, source: dict | None = None) -> str:
    """A markdown table: per variant and optimizer our test accuracy (mean ± std over seeds),
    per-kind accuracies where present, and the source's number (``source[(variant, opt)]``)."""
    source = source or {}
    kinds = kind_columns(summary)
    head = ["variant", "optimizer", "test accuracy (ours)", *kinds, "train accuracy",
            "seeds", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary.itertuples(index=False):
        r = row._asdict()
        cells = [r["variant"], LABELS.get(r["optimizer"], r["optimizer"]),
                 fmt(r["test_accuracy_mean"], r["test_accuracy_std"]),
                 *(f"{r[k]:.3f}" for k in kinds), f"{r['train_accuracy_mean']:.3f}",
                 str(r["n_seeds"]), source.get((r["variant"], r["optimizer"]), "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chance_verdict(mean: float, std: float, n_test: int) -> str:
    """Whether a mean test accuracy is distinguishable from 0.5 (two standard errors of a coin
    on ``n_test`` rows, or two seed standard deviations, whichever is larger)."""
    margin = 2 * max(0.5 / np.sqrt(n_test), 0.0 if pd.isna(std) else std)
    if abs(mean - 0.5) <= margin:
        return "indistinguishable from chance"
    return "above chance" if mean > 0.5 else "below chance"


# ---------------------------------------------------------------------------- one study
def run_study(study: str, args, runs: list[Run], data: dict[str, Split], features=None,
              **settings) -> tuple[Path, pd.DataFrame, pd.DataFrame, list[dict]]:
    """Run, tabulate and write a study: (its folder, epochs, summary, raw results)."""
    results = run_all(runs, data, args.jobs, study)
    epochs, summary = tables(study, runs, results)
    folder = write_results(args.out, study, args, epochs, summary, features, runs=runs,
                           n_test=int(summary["n_test"].iloc[0]),
                           features_name=args.features or default_features(), **settings)
    return folder, epochs, summary, results


def four_panels(epochs: pd.DataFrame, title: str):
    """The source's figure: training loss and accuracy against epochs and against time. The
    accuracy curves are on the validation split; the test split, scored once per run, is the
    diamond at the end (mean ± std over seeds)."""
    fig, axes = figure(2, 2, title)
    for row, x in enumerate(("epoch", "time")):
        curves(axes[row, 0], epochs, "train_loss", x, title=f"training MSE against {x}",
               ylabel="training MSE")
        curves(axes[row, 1], epochs, "val_accuracy", x, title=f"accuracy against {x}",
               ylabel="validation accuracy; ◆ test")
        for name, group in epochs.groupby("optimizer", sort=False):
            final = group.dropna(subset=["test_accuracy"])
            at = final["epoch"].mean() if x == "epoch" else final["elapsed"].mean()
            axes[row, 1].errorbar(at, final["test_accuracy"].mean(),
                                  yerr=final["test_accuracy"].std(), fmt="D",
                                  color=COLORS.get(name), capsize=3)
    return fig


def heatmap(ax, values: np.ndarray, xticks, yticks, xlabel: str, ylabel: str, title: str):
    """``values`` as coloured cells with their numbers written in, and a colour bar."""
    image = ax.imshow(values, cmap="viridis", vmin=0.4, vmax=1.0)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w" if v < 0.8 else "k")
    ax.set(xticks=range(len(xticks)), xticklabels=xticks, xlabel=xlabel, title=title,
           yticks=range(len(yticks)), yticklabels=yticks, ylabel=ylabel)
    ax.figure.colorbar(image, ax=ax, label=title)
