"""What the MNIST studies share, written once.

- :func:`load_data`: MNIST through :func:`minidl.datasets.load_mnist` (or ``--dataset
  synthetic``, a tiny generated stand-in, the default of ``--quick`` smoke runs), pixels / 255
  as float32, and the source's 48,000/12,000 train/validation split (:func:`split`, scikit-learn's
  ``train_test_split(random_state=42)`` reproduced); the 10,000 test images are scored once per
  run.
- :func:`train`: one seeded run through :func:`minidl.fit` (validation every epoch, accuracy,
  the training time of each epoch), then the test predictions.
- :func:`tables` and :func:`write_results`: ``epochs.csv``, ``summary.csv`` and ``config.json``
  in ``<out>/<study>/``, the layout of the QA studies' runner.
- :func:`parser` and :func:`settings`: the flags every study takes (``--out``, ``--seeds``,
  ``--epochs``, ``--quick``, ``--dataset``, ``--mnist-dir``, ``--protocol``; the runner's
  ``--data``, ``--features`` and ``--jobs`` are accepted and ignored).
- :func:`curves`, :func:`save_figure`, :func:`markdown_table`: figures (Agg) and report pieces.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import itertools
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

import minidl
from experiments.flags import add_mnist_flags
from minidl.cli import ArgumentParser

SEEDS = (42, 10, 2024)
VAL_SIZE, SPLIT_SEED = 0.2, 42      # the source's 48,000 / 12,000 split
QUICK_EPOCHS, QUICK_SEEDS, QUICK_TRAIN = 1, 2, 400  # --quick: a smoke run of seconds
CLASSES = 10


# ---------------------------------------------------------------------------- data
@dataclass
class Data:
    """Float32 pixels in [0, 1], as (N, 784) rows or (N, 1, 28, 28) images; int labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    sha256: str
    source: str


def synthetic(n_train: int = 1200, n_test: int = 300, seed: int = 0):
    """A tiny, seeded, MNIST-shaped stand-in for smoke runs and tests: ten random 28x28 stroke
    templates, one per class, each image its class's template shifted by up to 2 pixels, with
    noise, as uint8."""
    rng = np.random.default_rng(seed)
    templates = np.zeros((CLASSES, 28, 28))
    for k in range(CLASSES):
        points = rng.integers(6, 22, (6, 2))           # a polyline through 6 random points
        for start, end in itertools.pairwise(points):
            t = np.linspace(0, 1, 30)[:, None]
            r, c = np.rint(start + t * (end - start)).astype(int).T
            templates[k, r, c] = 1.0
    y = rng.integers(0, CLASSES, n_train + n_test)
    shifts = rng.integers(-2, 3, (len(y), 2))
    images = np.stack([np.roll(templates[k], tuple(s), axis=(0, 1)) for k, s in zip(y, shifts,
                                                                                   strict=True)])
    images = np.clip(images * 220 + rng.uniform(0, 35, images.shape), 0, 255).astype(np.uint8)
    return (images[:n_train], y[:n_train]), (images[n_train:], y[n_train:])


def split(n: int, test_size: float = VAL_SIZE, random_state: int = SPLIT_SEED):
    """(train rows, validation rows) exactly as scikit-learn's ``train_test_split(...,
    test_size, random_state)`` draws them (so the source's 48,000/12,000 split is reproduced):
    one permutation from ``RandomState(random_state)``, the first ceil(n * test_size) rows for
    validation."""
    n_val = int(np.ceil(n * test_size))
    order = np.random.RandomState(random_state).permutation(n)
    return order[n_val:], order[:n_val]


def load_data(args, images: bool = False) -> Data:
    """The data of ``args.dataset`` (``mnist`` or ``synthetic``; with ``--quick`` the default is
    ``synthetic``), split and scaled; with ``--quick`` only the first :data:`QUICK_TRAIN`
    training images (and as many test images)."""
    if (args.dataset or ("synthetic" if args.quick else "mnist")) == "synthetic":
        (X, y), (X_test, y_test) = synthetic()
        source = "experiments.mnist_common.synthetic() (a generated stand-in, not MNIST)"
    else:
        from minidl.datasets import load_mnist

        (X, y), (X_test, y_test) = load_mnist(args.mnist_dir)
        source = "MNIST via minidl.datasets.load_mnist"
    digest = hashlib.sha256()
    for part in (X, y, X_test, y_test):
        digest.update(np.ascontiguousarray(part).tobytes())
    if args.protocol == "source":  # all training images; the test set doubles as validation
        X_train, y_train, X_val, y_val = X, y, X_test, y_test
    else:
        train_rows, val_rows = split(len(X))
        X_train, y_train, X_val, y_val = X[train_rows], y[train_rows], X[val_rows], y[val_rows]
    if args.quick:
        X_train, y_train = X_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN]
        X_val, y_val = X_val[:QUICK_TRAIN // 4], y_val[:QUICK_TRAIN // 4]
        X_test, y_test = X_test[:QUICK_TRAIN], y_test[:QUICK_TRAIN]
    shape = (-1, 1, 28, 28) if images else (-1, 784)

    def scale(a):
        return (a.reshape(shape) / np.float32(255)).astype(np.float32)

    return Data(scale(X_train), np.asarray(y_train, np.int64), scale(X_val),
                np.asarray(y_val, np.int64), scale(X_test), np.asarray(y_test, np.int64),
                digest.hexdigest(), source)


# ---------------------------------------------------------------------------- runs
def train(model, optimizer, data: Data, *, epochs: int, batch_size: int, seed: int,
          shuffle: bool = True, callbacks=(), loss=None) -> dict:
    """Train with :func:`minidl.fit` (validation each epoch), then predict the test set once.

    Returns the per-epoch ``rows`` (losses, accuracies, ``epoch_time``: training seconds of the
    epoch, evaluation excluded), ``test_accuracy``, ``test_pred`` (labels), ``test_proba``
    (softmax probabilities) and the ``history``."""
    loss = loss or minidl.SoftmaxCrossEntropy()
    history = minidl.fit(model, loss, optimizer, data.X_train, data.y_train, epochs=epochs,
                         batch_size=batch_size, shuffle=shuffle, seed=seed,
                         validation_data=(data.X_val, data.y_val), metrics=["accuracy"],
                         callbacks=callbacks, verbose=2)
    logits = minidl.predict(model, data.X_test, batch_size=1000)
    proba = minidl.Softmax()(logits)
    pred = logits.argmax(axis=1)
    times = np.diff(np.concatenate([[0.0], history["time"]]))
    rows = [{"epoch": int(e), "train_loss": float(tl), "train_accuracy": float(ta),
             "val_loss": float(vl), "val_accuracy": float(va), "lr": float(lr),
             "elapsed": float(t), "epoch_time": float(dt)}
            for e, tl, ta, vl, va, lr, t, dt in zip(
                *(history[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                       "val_accuracy", "lr", "time")), times, strict=True)]
    return {"rows": rows, "test_accuracy": float(np.mean(pred == data.y_test)),
            "test_pred": pred, "test_proba": proba, "history": history}


# ---------------------------------------------------------------------------- tables
def tables(study: str, runs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``runs``: dicts with ``variant``, ``optimizer``, ``seed`` and a :func:`train` result.

    ``epochs``: one row per run and epoch (``test_accuracy`` on each run's last row only).
    ``summary``: one row per (variant, optimizer): test accuracy mean and sample std over the
    seeds, the means of the last epoch's train loss and accuracies, of the number of epochs run
    and of the training seconds per epoch, and ``n_seeds``."""
    frames = []
    for run in runs:
        ep = pd.DataFrame(run["result"]["rows"])
        ep["test_accuracy"] = np.nan
        ep.loc[ep.index[-1], "test_accuracy"] = run["result"]["test_accuracy"]
        for i, key in enumerate(("study", "variant", "optimizer", "seed")):
            ep.insert(i, key, study if key == "study" else run[key])
        frames.append(ep)
    epochs = pd.concat(frames, ignore_index=True)
    last = epochs.groupby(["variant", "optimizer", "seed"], sort=False).tail(1)
    grouped = last.groupby(["variant", "optimizer"], sort=False)
    summary = grouped["test_accuracy"].agg(["mean", "std"]).add_prefix("test_accuracy_")
    for column in ("train_loss", "train_accuracy", "val_accuracy", "epoch"):
        summary[f"{column}_mean"] = grouped[column].mean()
    per_run = epochs.groupby(["variant", "optimizer", "seed"], sort=False)["epoch_time"].mean()
    summary["epoch_time_mean"] = per_run.groupby(["variant", "optimizer"], sort=False).mean()
    summary["n_seeds"] = grouped["seed"].nunique()
    return epochs, summary.reset_index()


def versions() -> dict[str, str | None]:
    out = {"python": platform.python_version(), "minidl": minidl.__version__}
    for name in ("numpy", "scikit-learn", "pandas", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = [f"{i['internal_api']} {i['version']} {i.get('architecture')} "
                       f"{i['num_threads']} threads" for i in threadpool_info()]
    except ImportError:
        pass
    return out


def write_results(args, study: str, epoch_table: pd.DataFrame | None,
                  summary: pd.DataFrame | None, data: Data, **settings) -> Path:
    """``<out>/<study>/``: epochs.csv, summary.csv and config.json (the exact settings, the
    data's SHA-256 and source, the split, package versions)."""
    folder = Path(args.out) / study
    folder.mkdir(parents=True, exist_ok=True)
    if epoch_table is not None:
        epoch_table.to_csv(folder / "epochs.csv", index=False)
    if summary is not None:
        summary.to_csv(folder / "summary.csv", index=False)
    config = {"study": study, "argv": {k: str(v) if isinstance(v, Path) else v
                                       for k, v in vars(args).items()},
              "settings": settings, "data": data.source, "data_sha256": data.sha256,
              "sizes": {"train": len(data.X_train), "validation": len(data.X_val),
                        "test": len(data.X_test)},
              "validation": ({"size": VAL_SIZE, "random_state": SPLIT_SEED,
                              "how": "sklearn train_test_split(test_size=0.2, random_state=42)"}
                             if args.protocol == "split" else
                             "the source's protocol: all training images, the test set as "
                             "validation"),
              "versions": versions()}
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    return folder


# ---------------------------------------------------------------------------- flags
def parser(doc: str, epochs: int, seeds=SEEDS) -> argparse.ArgumentParser:
    p = ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {list(seeds)})")
    p.add_argument("--epochs", type=int, help=f"epochs (default {epochs})")
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke run: {QUICK_EPOCHS} epoch, {QUICK_SEEDS} seeds, {QUICK_TRAIN} "
                   f"images, of the generated stand-in unless --dataset mnist")
    add_mnist_flags(p)
    for flag in ("--data", "--features", "--jobs", "--backend", "--scheduler", "--storage"):
        p.add_argument(flag, help="the question/answer studies' flag; ignored here (the MNIST "
                       "studies run in this process)")
    return p


def settings(args, epochs: int, seeds=SEEDS) -> tuple[int, list[int]]:
    """(epochs, seeds) after ``--epochs``, ``--seeds`` and ``--quick``."""
    if args.epochs is not None:
        epochs = args.epochs
    elif args.quick:
        epochs = QUICK_EPOCHS
    return epochs, list(args.seeds or (list(SEEDS)[:QUICK_SEEDS] if args.quick else seeds))


# ---------------------------------------------------------------------------- figures
def curves(ax, epochs: pd.DataFrame, y: str, title: str, by: str = "variant") -> None:
    """Mean over seeds of ``y`` per epoch, one line per ``by`` value, a +-1 std band."""
    for name, group in epochs.groupby(by, sort=False):
        stats = group.groupby("epoch")[y].agg(["mean", "std"])
        ax.plot(stats.index, stats["mean"], marker="o", ms=3, label=str(name))
        ax.fill_between(stats.index, stats["mean"] - stats["std"].fillna(0),
                        stats["mean"] + stats["std"].fillna(0), alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(y.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def save_figure(fig, folder: Path, name: str) -> Path:
    path = Path(folder) / name
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # nothing clipped, whatever the layout
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- report pieces
def fmt(mean: float, std: float | None = None) -> str:
    if std is None or pd.isna(std):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f}"


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def read_summary(results_dir, study: str) -> pd.DataFrame:
    return pd.read_csv(Path(results_dir) / study / "summary.csv")
