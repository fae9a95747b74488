"""The QA study's TwoLayerMLP, trained with minidl.fit on generated data.

A seeded synthetic stand-in for the embedded question/answer pairs: 32 Gaussian features plus
the constant 1 column that plays the bias (33 columns), labels +-1 from a random tanh "teacher"
network with some label noise. 400 training rows, 100 validation rows, 100 test rows.

The model is the study's: y_hat = tanh(tanh(X W1) W2), W1 33x64, W2 64x1, LeCun-normal
initialisation, no bias; loss MSE whose backward pass is the gradient of half the MSE; the
optimizers and learning rates of the study (GD full batch lr 0.01, SGD batch 32 lr 0.1, Adam
batch 32 lr 0.001); prediction +1 if y_hat > 0 else -1.

    python -m experiments.demo                    # Adam, 100 epochs, seed 42
    python -m experiments.demo --optimizer sgd --epochs 50 --seed 7
"""

from __future__ import annotations

import argparse

import numpy as np

import minidl
from minidl import MSE, SGD, Adam, RecursiveMLP, Tanh

#: The study's settings: optimizer class, learning rate, batch size (None = full batch).
OPTIMIZERS = {
    "gd": (SGD, 0.01, None),
    "sgd": (SGD, 0.1, 32),
    "adam": (Adam, 0.001, 32),
}


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


def main(argv=None) -> minidl.History:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    (X, y), (X_val, y_val), (X_test, y_test) = make_data(seed=0)
    d = X.shape[1]
    model = RecursiveMLP([d, 64, 1], activation=Tanh, bias=False, init="lecun_normal",
                         rng=args.seed)
    optimizer_class, lr, batch_size = OPTIMIZERS[args.optimizer]
    optimizer = optimizer_class(model.parameters(), lr=lr)
    print(f"TwoLayerMLP {d}-64-1 ({model.num_parameters()} weights), {args.optimizer} "
          f"lr={lr} batch={batch_size or 'full'}, {args.epochs} epochs, seed {args.seed}; "
          f"{len(X)} training rows")

    history = minidl.fit(model, MSE(half_grad=True), optimizer, X, y, epochs=args.epochs,
                         batch_size=batch_size, seed=args.seed,
                         validation_data=(X_val, y_val), metrics=["accuracy"], verbose=0)
    print(history.to_string(max_rows=12))
    test = minidl.evaluate(model, MSE(), X_test, y_test, metrics=["accuracy"])
    print(f"test: MSE {test['loss']:.4f}, accuracy {test['accuracy']:.3f} "
          f"({len(X_test)} rows); training time {history['time'][-1]:.3f} s")
    return history


if __name__ == "__main__":
    main()
