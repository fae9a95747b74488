"""What only the MNIST studies need; the rest they share with the QA studies
(:mod:`experiments.common`: tables, config.json, flags; :mod:`experiments.plots`;
:mod:`experiments.report`).

- :func:`load_data`: MNIST through :func:`minidl.datasets.load_mnist` (or ``--dataset
  synthetic``, a tiny generated stand-in, the default of ``--quick`` smoke runs), pixels / 255
  as float32, and the source's 48,000/12,000 train/validation split (:func:`split`,
  scikit-learn's ``train_test_split(random_state=42)`` reproduced); the 10,000 test images are
  scored once per run. :class:`Data` describes itself for config.json.
- :func:`result`: what the tables need of a run (:func:`experiments.common.result`'s shape, plus
  the learning rate and training seconds of each epoch, and the test predictions);
  :func:`run_all`: the studies' runs one after the other in this process.
- :func:`tables`: :func:`experiments.common.tables` plus the training seconds per epoch.
- :func:`parser` and :func:`settings`: the study flags plus ``--dataset``, ``--mnist-dir`` and
  ``--protocol``; ``--quick`` is a smoke run of seconds.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

import minidl as md
from experiments import common
from experiments.flags import add_mnist_flags
from experiments.settings import (
    MNIST_QUICK_EPOCHS,
    MNIST_QUICK_TRAIN,
    MNIST_SEEDS,
    MNIST_SPLIT_SEED,
    MNIST_VAL_SIZE,
    QUICK_SEEDS,
)

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
    protocol: str = "split"

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X_val, self.y_val

    def describe(self) -> dict:
        """What config.json records of the data: its source, SHA-256, sizes and split."""
        return {"data": self.source, "data_sha256": self.sha256,
                "sizes": {"train": len(self.X_train), "validation": len(self.X_val),
                          "test": len(self.X_test)},
                "validation": ({"size": MNIST_VAL_SIZE, "random_state": MNIST_SPLIT_SEED,
                                "how": f"sklearn train_test_split(test_size={MNIST_VAL_SIZE}, "
                                       f"random_state={MNIST_SPLIT_SEED})"}
                               if self.protocol == "split" else
                               "the source's protocol: all training images, the test set as "
                               "validation")}


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


def split(n: int, test_size: float = MNIST_VAL_SIZE, random_state: int = MNIST_SPLIT_SEED):
    """(train rows, validation rows) exactly as scikit-learn's ``train_test_split(...,
    test_size, random_state)`` draws them (so the source's 48,000/12,000 split is reproduced):
    one permutation from ``RandomState(random_state)``, the first ceil(n * test_size) rows for
    validation."""
    n_val = int(np.ceil(n * test_size))
    order = np.random.RandomState(random_state).permutation(n)
    return order[n_val:], order[:n_val]


def load_data(args, images: bool = False) -> Data:
    """The data of ``args.dataset`` (``mnist`` or ``synthetic``; with ``--quick`` the default is
    ``synthetic``), split and scaled; with ``--quick`` only the first ``MNIST_QUICK_TRAIN``
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
        n = MNIST_QUICK_TRAIN
        X_train, y_train = X_train[:n], y_train[:n]
        X_val, y_val = X_val[:n // 4], y_val[:n // 4]
        X_test, y_test = X_test[:n], y_test[:n]
    shape = (-1, 1, 28, 28) if images else (-1, 784)

    def scale(a):
        return (a.reshape(shape) / np.float32(255)).astype(np.float32)

    return Data(scale(X_train), np.asarray(y_train, np.int64), scale(X_val),
                np.asarray(y_val, np.int64), scale(X_test), np.asarray(y_test, np.int64),
                digest.hexdigest(), source, args.protocol)


# ---------------------------------------------------------------------------- runs
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


def result(history: md.History, model: md.Layer, data: Data, **extra) -> dict:
    """What the tables need of a finished run (:func:`experiments.common.result`'s shape): its
    per-epoch ``rows`` (losses, accuracies, ``lr``, ``elapsed``: training seconds so far,
    ``epoch_time``: training seconds of the epoch, evaluation excluded), its ``test`` accuracy
    and ``n_test``; plus ``test_pred`` (labels), ``test_proba`` (softmax probabilities) and
    ``extra``."""
    logits = md.predict(model, data.X_test, batch_size=1000)
    pred = logits.argmax(axis=1)
    times = np.diff(np.concatenate([[0.0], history["time"]]))
    rows = [{**dict(zip(HISTORY_KEYS, map(float, values[:-2]), strict=True)),
             "epoch": int(values[0]), "elapsed": float(values[-2]), "epoch_time": float(values[-1])}
            for values in zip(*(history[k] for k in (*HISTORY_KEYS, "time")), times, strict=True)]
    return {"rows": rows, "test": {"test_accuracy": float(np.mean(pred == data.y_test))},
            "n_test": len(data.y_test), "test_pred": pred, "test_proba": md.Softmax()(logits),
            **extra}


def run_all(fn, tasks: list[tuple[dict, dict]], study: str) -> list[dict]:
    """:func:`experiments.common.run_all`'s contract (``fn(**kwargs)`` per ``(ids, kwargs)``,
    results in task order with their ``seconds``, one line per finished run), one run after the
    other in this process: the arrays are too large to ship to workers, and BLAS keeps its
    threads."""
    out = []
    for ids, kwargs in tasks:
        start = time.perf_counter()
        res = fn(**kwargs)
        res["seconds"] = time.perf_counter() - start
        print(common.progress_line(study, ids, res, res["seconds"]), file=sys.stderr, flush=True)
        out.append(res)
    return out


def tables(study: str, ids: list[dict], results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`experiments.common.tables`, plus ``epoch_time_mean``: the training seconds per
    epoch (each run's mean, then the mean over seeds)."""
    per_epoch, summary = common.tables(study, ids, results)
    by = [k for k in ids[0] if k != "seed"]
    per_run = per_epoch.groupby([*by, "seed"], sort=False)["epoch_time"].mean()
    seconds = per_run.groupby(level=by, sort=False).mean().rename("epoch_time_mean")
    return per_epoch, summary.merge(seconds.reset_index(), on=by, how="left")


def label(setting) -> str:
    """An optimizer setting as the figures and the report name it: ``Adam 0.001``."""
    return f"{setting.cls.__name__} {setting.lr:g}"


# ---------------------------------------------------------------------------- flags
def parser(doc: str):
    """:func:`experiments.common.parser` (the QA studies' flags are accepted; those that do not
    apply are ignored) plus the MNIST flags."""
    p = common.parser(doc)
    add_mnist_flags(p)
    for action in p._actions:
        if action.dest == "quick":
            action.help = (f"a smoke run: {MNIST_QUICK_EPOCHS} epoch, {QUICK_SEEDS} seeds, "
                           f"{MNIST_QUICK_TRAIN} images, of the generated stand-in unless "
                           f"--dataset mnist")
    return p


def settings(args, epochs: int, seeds=MNIST_SEEDS) -> tuple[int, list[int]]:
    """(epochs, seeds) after ``--epochs``, ``--seeds`` and ``--quick`` (``MNIST_QUICK_EPOCHS``,
    the first seeds of ``MNIST_SEEDS``)."""
    if args.quick:
        epochs, seeds = MNIST_QUICK_EPOCHS, MNIST_SEEDS
    return common.settings(args, epochs, seeds)
