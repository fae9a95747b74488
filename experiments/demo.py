"""The QA study's TwoLayerMLP, trained with minidl.fit: GD, SGD and Adam side by side.

Data (``--data``):

- ``qa`` (default): the shipped Turkish question/answer pairs, as the precomputed offline
  sentence embeddings in ``data/qa/features/all-MiniLM-L6-v2.npz`` (rows
  ``[question | answer | 1]``, 769 columns). A fifth of the training questions (both answers of
  each) is held out for validation; the test split is scored once, at the end.
- ``synthetic``: a seeded stand-in with the same shape of problem: 32 Gaussian features plus
  the constant 1 column, labels +-1 from a random tanh "teacher" network with 10% label noise;
  400 training, 100 validation and 100 test rows.

The model is the study's: y_hat = tanh(tanh(X W1) W2), W1 33x64, W2 64x1, LeCun-normal
initialisation, no bias; loss MSE whose backward pass is the gradient of half the MSE; the
optimizers and learning rates of the study (GD full batch lr 0.01, SGD batch 32 lr 0.1, Adam
batch 32 lr 0.001); prediction +1 if y_hat > 0 else -1.

    python -m experiments.demo                    # GD, SGD and Adam; 100 epochs; seed 42
    python -m experiments.demo --optimizer sgd --epochs 50 --seed 7 --data synthetic
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import minidl
from minidl import MSE, SGD, Adam, RecursiveMLP, Tanh

#: The study's settings: optimizer class, learning rate, batch size (None = full batch).
OPTIMIZERS = {
    "gd": (SGD, 0.01, None),
    "sgd": (SGD, 0.1, 32),
    "adam": (Adam, 0.001, 32),
}


FEATURES = Path(__file__).resolve().parent.parent / "data" / "qa" / "features"


def qa_data(seed: int = 0, val_fraction: float = 0.2):
    """The shipped QA features: (train, validation, test), validation held out by question."""
    from minidl.datasets import load_qa_features

    f = load_qa_features(FEATURES / "all-MiniLM-L6-v2.npz")
    questions = f.texts["train"][0]
    distinct = sorted(set(questions))
    held_out = set(np.random.default_rng(seed).permutation(distinct)[
        : round(val_fraction * len(distinct))])
    val = np.array([q in held_out for q in questions])
    y_train = f.y_train.reshape(-1, 1).astype(float)
    y_test = f.y_test.reshape(-1, 1).astype(float)
    return ((f.X_train[~val], y_train[~val]), (f.X_train[val], y_train[val]),
            (f.X_test, y_test))


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
    return (X[:400], y[:400]), (X[400:500], y[400:500]), (X[500:], y[500:])


def train(name: str, data, epochs: int, seed: int) -> minidl.History:
    (X, y), (X_val, y_val), (X_test, y_test) = data
    d = X.shape[1]
    model = RecursiveMLP([d, 64, 1], activation=Tanh, bias=False, init="lecun_normal", rng=seed)
    optimizer_class, lr, batch_size = OPTIMIZERS[name]
    optimizer = optimizer_class(model.parameters(), lr=lr)
    print(f"\n{name.upper()}: TwoLayerMLP {d}-64-1 ({model.num_parameters()} weights), "
          f"lr={lr}, batch={batch_size or 'full'}, {epochs} epochs, seed {seed}; "
          f"{len(X)} training rows, {len(X_val)} validation rows")
    history = minidl.fit(model, MSE(half_grad=True), optimizer, X, y, epochs=epochs,
                         batch_size=batch_size, seed=seed,
                         validation_data=(X_val, y_val), metrics=["accuracy"], verbose=0)
    print(history.to_string(max_rows=8))
    test = minidl.evaluate(model, MSE(), X_test, y_test, metrics=["accuracy"])
    print(f"test: MSE {test['loss']:.4f}, accuracy {test['accuracy']:.3f} "
          f"({len(X_test)} rows); training time {history['time'][-1]:.3f} s")
    return history, test


def main(argv=None) -> dict[str, tuple[minidl.History, dict]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=[*sorted(OPTIMIZERS), "all"], default="all")
    parser.add_argument("--data", choices=["qa", "synthetic"], default="qa")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    data = qa_data() if args.data == "qa" else make_data(seed=0)
    names = list(OPTIMIZERS) if args.optimizer == "all" else [args.optimizer]
    results = {name: train(name, data, args.epochs, args.seed) for name in names}
    print(f"\nsummary ({args.data} data, seed {args.seed}, {args.epochs} epochs; one seed, so "
          f"differences of a few points are noise):")
    for name, (history, test) in results.items():
        print(f"  {name:5s} final train loss {history['train_loss'][-1]:.4f}  "
              f"val accuracy {history['val_accuracy'][-1]:.3f}  "
              f"test accuracy {test['accuracy']:.3f}")
    return results


if __name__ == "__main__":
    main()
