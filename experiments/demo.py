"""The QA study's TwoLayerMLP, trained with minidl.fit: GD, SGD and Adam side by side.

Data (``--data``):

- ``qa`` (default): the shipped Turkish question/answer pairs (``data/qa``), read as sentence
  embeddings: by default the committed multilingual-e5-small features (rows
  ``[question | answer | 1]``, 769 columns; ``--features`` picks another embedder). A fifth of
  the training questions (both answers of each) is held out for validation; the test split is
  scored once per run, overall and per kind of wrong answer (``fact``: one fact swapped;
  ``non_answer``: a true statement that does not answer the question).
- a folder: any ``train.csv`` / ``test.csv`` pair in the study's format (``soru,cevap,etiket``),
  with an optional ``topics.csv`` giving each question's kind; it is embedded with
  ``--features`` (cached, so a rerun embeds nothing).
- ``synthetic``: a seeded stand-in with the same shape of problem: 32 Gaussian features plus
  the constant 1 column, labels +-1 from a random tanh "teacher" network with 10% label noise.

The model is the study's: y_hat = tanh(tanh(X W1) W2), W1 d x 64, W2 64x1, LeCun-normal
initialisation, no bias; loss MSE whose backward pass is the gradient of half the MSE; the
optimizers and learning rates of the study (GD full batch lr 0.01, SGD batch 32 lr 0.1, Adam
batch 32 lr 0.001), 100 epochs, the study's five seeds; prediction +1 if y_hat > 0 else -1.

    python -m experiments.demo                          # GD, SGD and Adam, 5 seeds
    python -m experiments.demo --optimizer adam --seeds 42 --epochs 50
    python -m experiments.demo --data my_qa/ --features tfidf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import MSE, SGD, Adam, RecursiveMLP, Tanh
from minidl.errors import MinidlError

from .qa.embedders import FEATURE_NAMES, ModelUnavailableError
from .qa.features import load_features

#: The study's settings: optimizer class, learning rate, batch size (None = full batch).
OPTIMIZERS = {
    "gd": (SGD, 0.01, None),
    "sgd": (SGD, 0.1, 32),
    "adam": (Adam, 0.001, 32),
}
SEEDS = (42, 10, 2024, 7, 99)


def qa_data(features: str = "e5-small", data: str | None = None, seed: int = 0,
            val_fraction: float = 0.2):
    """(train, validation, test, test kinds) from QA features; validation held out by question.

    Each part is ``(X, y)`` with y of shape (N, 1) in {-1, +1}; the kinds are one string per
    test row, or None when the data has none.
    """
    f = load_features(features, data)
    questions = f.texts["train"][0]
    distinct = sorted(set(questions))
    held_out = set(np.random.default_rng(seed).permutation(distinct)[
        : round(val_fraction * len(distinct))])
    val = np.array([q in held_out for q in questions])
    y_train = f.y_train.reshape(-1, 1).astype(float)
    y_test = f.y_test.reshape(-1, 1).astype(float)
    return ((f.X_train[~val], y_train[~val]), (f.X_train[val], y_train[val]),
            (f.X_test, y_test), f.kinds.get("test"))


def make_data(seed: int, n: int = 600, d: int = 32, noise: float = 0.1):
    """Rows [features | 1] and labels +-1 from a random two-layer tanh teacher."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher_w = rng.standard_normal((d, 8)) / np.sqrt(d)
    teacher_v = rng.standard_normal((8, 1))
    score = np.tanh(X @ teacher_w) @ teacher_v
    y = np.where(score > 0, 1.0, -1.0)
    flip = rng.random((n, 1)) < noise
    y[flip] = -y[flip]
    X = np.hstack([X, np.ones((n, 1))])
    return (X[:400], y[:400]), (X[400:500], y[400:500]), (X[500:], y[500:]), None


def accuracy_by_kind(model, X, y, kinds) -> dict[str, float]:
    """Test accuracy overall and, where rows have kinds, per kind (``accuracy_<kind>``)."""
    correct = np.where(minidl.predict(model, X) > 0, 1.0, -1.0) == y
    out = {"accuracy": float(correct.mean())}
    if kinds is not None:
        for kind in sorted(set(kinds)):
            out[f"accuracy_{kind}"] = float(correct[kinds == kind].mean())
    return out


def train(name: str, data, epochs: int, seed: int, verbose: bool = True):
    """One run: the study's model and optimizer ``name``; returns its History and test scores."""
    (X, y), (X_val, y_val), (X_test, y_test), kinds = data
    d = X.shape[1]
    model = RecursiveMLP([d, 64, 1], activation=Tanh, bias=False, init="lecun_normal", rng=seed)
    optimizer_class, lr, batch_size = OPTIMIZERS[name]
    optimizer = optimizer_class(model.parameters(), lr=lr)
    history = minidl.fit(model, MSE(half_grad=True), optimizer, X, y, epochs=epochs,
                         batch_size=batch_size, seed=seed,
                         validation_data=(X_val, y_val), metrics=["accuracy"], verbose=0)
    test = accuracy_by_kind(model, X_test, y_test, kinds)
    if verbose:
        print(f"\n{name.upper()}: TwoLayerMLP {d}-64-1, lr={lr}, batch={batch_size or 'full'}, "
              f"{epochs} epochs, seed {seed}; {len(X)} training rows, {len(X_val)} validation")
        print(history.to_string(max_rows=6))
        print("test: " + ", ".join(f"{k} {v:.3f}" for k, v in test.items()))
    return history, test


def main(argv=None) -> dict[str, list[tuple[minidl.History, dict]]]:
    parser = argparse.ArgumentParser(prog="python -m experiments.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=[*OPTIMIZERS, "all"], default="all")
    parser.add_argument("--data", default="qa",
                        help="'qa' (the shipped data), 'synthetic', or a folder with train.csv "
                             "and test.csv (default: qa)")
    parser.add_argument("--features", choices=FEATURE_NAMES, default="e5-small",
                        help="sentence embedder for QA data (default: e5-small, multilingual)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help="one run per seed (default: the study's 42 10 2024 7 99)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")

    if args.data == "synthetic":
        data = make_data(seed=0)
    else:
        folder = None if args.data == "qa" else args.data
        if folder is not None and not Path(folder).is_dir():
            parser.error(f"--data {folder}: not 'qa', 'synthetic' or a folder")
        try:
            data = qa_data(args.features, folder)
        except (ModelUnavailableError, MinidlError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
    names = list(OPTIMIZERS) if args.optimizer == "all" else [args.optimizer]
    one = len(args.seeds) == 1
    results = {name: [train(name, data, args.epochs, seed, verbose=one) for seed in args.seeds]
               for name in names}

    what = args.data if args.data in ("qa", "synthetic") else f"data from {args.data}"
    features = "" if args.data == "synthetic" else f", {args.features} features"
    print(f"\nsummary ({what}{features}, {args.epochs} epochs, seeds "
          f"{' '.join(map(str, args.seeds))}; test accuracy, mean +- std over seeds):")
    keys = list(results[names[0]][0][1])
    print(f"  {'':5s} {'train loss':>10s}  " + "  ".join(f"{k:>22s}" for k in keys))
    for name, runs in results.items():
        loss = np.mean([h["train_loss"][-1] for h, _ in runs])
        cells = []
        for k in keys:
            v = np.array([t[k] for _, t in runs])
            cells.append(f"{v.mean():.3f} +- {v.std():.3f}".rjust(22))
        print(f"  {name:5s} {loss:10.4f}  " + "  ".join(cells))
    return results


if __name__ == "__main__":
    main()
