"""The test problems: small, fixed, each with its data, model, loss, batch size, epoch budget,
metric and target.

They reuse the studies' code and settings (:mod:`experiments.settings`):

- ``quadratic``: the ``quadratic`` study's noisy quadratic f(x) = x1^2 + 2 x2^2 from (2, 2),
  gradient noise N(0, 1) seeded per run (:class:`experiments.quadratic.NoisyQuadratic`), one
  step per row, 200 steps as 10 epochs of 20. It has no held-out data: validation and test
  are both f at the last iterate (the noise-free loss). Lower is better.
- ``qa``: the QA study's TwoLayerMLP (hidden 64, tanh, no biases, LeCun-normal, MSE with the
  half gradient) on the sentence-pair features of the shipped data (e5-small), all kinds, the
  studies' validation split by question group, the whole test split; batch 32 and the
  hyperparameter searches' 30 epochs (the study's 100 score about the same, at 3x the time).
- ``mnist_mlp``: the pipeline study's "128 ReLU" network on the first 10,000 MNIST training
  images (8,000 / 2,000 by the studies' split) and the 10,000 test images; batch 128, 5 epochs.
- ``mnist_cnn``: the CNN study's network at its small width (4, 8, 16 channels) on the first
  6,000 training images (4,800 / 1,200) and the first 2,000 test images; batch 128, 3 epochs.

Every model and every loss is built from the run's seed alone. ``quick`` gives tiny versions
(for tests and smoke runs); their settings differ, so their cached runs are distinct.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minidl as md

NAMES = ("quadratic", "qa", "mnist_mlp", "mnist_cnn")


@dataclass(frozen=True)
class Split:
    """Training, validation and test arrays."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class Problem:
    """One test problem. ``data()`` -> :class:`Split`; ``model(seed)`` and ``loss(seed)`` build
    a run's model and loss; ``score(model, X, y)`` is the metric (``metric``: its name,
    ``higher_is_better`` its direction); ``target``: the value "to target" counts to, on the
    test metric; ``settings``: what defines the problem (sizes, epochs, ...), part of every
    run's cache key."""

    name: str
    description: str
    data: Callable[[], Split]
    model: Callable[[int], md.Layer]
    loss: Callable[[int], md.Loss]
    score: Callable[[md.Layer, np.ndarray, np.ndarray], float]
    batch_size: int | None
    epochs: int
    metric: str
    higher_is_better: bool
    target: float
    shuffle: bool = True
    settings: dict[str, Any] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        """What identifies the problem's runs (its target is not part of a run)."""
        return {"name": self.name, "batch_size": self.batch_size, "epochs": self.epochs,
                "metric": self.metric, "shuffle": self.shuffle, **self.settings}

    def reached(self, value: float) -> bool:
        """Whether a test metric ``value`` is at the target or better."""
        if not np.isfinite(value):
            return False
        return value >= self.target if self.higher_is_better else value <= self.target

    def shapes(self) -> tuple[list[tuple[int, ...]], type]:
        """The model's parameter shapes and dtype (for the step timing)."""
        params = list(self.model(0).parameters())
        return [p.shape for p in params], params[0].data.dtype.type


# ---------------------------------------------------------------------------- scores
def sign_accuracy(model, X, y) -> float:
    """The QA studies' accuracy: the output's sign is the predicted label (+1 / -1)."""
    pred = np.where(md.predict(model, X) > 0, 1.0, -1.0)
    return float(np.mean(pred == y))


def argmax_accuracy(model, X, y) -> float:
    return float(np.mean(np.argmax(md.predict(model, X, batch_size=1000), axis=1) == y))


def quadratic_value(model, X, y) -> float:
    """f at the current iterate (the weight of the Dense(1, 2) fed 1)."""
    from experiments.quadratic import f

    x = md.predict(model, np.ones((1, 1)))[0]
    return float(f(x[0], x[1]))


# ---------------------------------------------------------------------------- quadratic
def _start(*_):
    from experiments.settings import QUADRATIC_START

    return np.array([QUADRATIC_START])


def quadratic_model(seed: int) -> md.Layer:
    return md.Dense(1, 2, bias=False, init=_start, rng=seed)


def quadratic_loss(seed: int) -> md.Loss:
    from experiments.quadratic import NOISE, NoisyQuadratic

    return NoisyQuadratic(NOISE, seed)


def quadratic_data(steps: int) -> Split:
    one, zero = np.ones((1, 1)), np.zeros((1, 2))
    return Split(np.ones((steps, 1)), np.zeros((steps, 2)), one, zero, one, zero)


# ---------------------------------------------------------------------------- qa
@functools.cache
def qa_data() -> Split:
    from experiments import common
    from experiments.settings import ALL_KINDS

    d = common.qa_data(common.load_features(), "pairs", ALL_KINDS)
    return Split(d.X, d.y, d.X_val, d.y_val, d.X_test, d.y_test)


def qa_model(seed: int) -> md.Layer:
    from experiments.settings import DTYPE, HIDDEN

    dim = qa_data().X.shape[1]
    return md.RecursiveMLP([dim, HIDDEN, 1], activation=md.Tanh, bias=False,
                           init="lecun_normal", rng=seed).astype(DTYPE)


def qa_loss(seed: int) -> md.Loss:
    return md.MSE(half_grad=True)


# ---------------------------------------------------------------------------- mnist
@functools.cache
def mnist_data(rows: int, test_rows: int, images: bool) -> Split:
    """The first ``rows`` MNIST training images, split as the studies split (20% validation,
    :func:`experiments.mnist_common.split`), and the first ``test_rows`` test images; pixels
    / 255 as float32."""
    from experiments import mnist_common as mc
    from minidl.datasets import load_mnist

    (X, y), (X_test, y_test) = load_mnist()
    train, val = mc.split(rows)
    shape = (-1, 1, 28, 28) if images else (-1, 784)

    def scale(a):
        return (a.reshape(shape) / np.float32(255)).astype(np.float32)

    X, y = X[:rows], np.asarray(y[:rows], np.int64)
    return Split(scale(X[train]), y[train], scale(X[val]), y[val], scale(X_test[:test_rows]),
                 np.asarray(y_test[:test_rows], np.int64))


def mlp_model(seed: int) -> md.Layer:
    from experiments import mnist_pipeline

    return mnist_pipeline.model([128], seed)


def cnn_model(seed: int) -> md.Layer:
    from experiments import mnist_cnn

    return mnist_cnn.model(seed, mnist_cnn.QUICK_WIDTH)


def cross_entropy(seed: int) -> md.Loss:
    return md.SoftmaxCrossEntropy()


# ---------------------------------------------------------------------------- the problems
# Targets: values the tuned baselines (SGD with momentum 0.9, Adam) reach within the budget on
# most seeds, measured with the default protocol (7-point grid; 3 seeds, a 2-core machine), so
# that epochs and seconds to target say something: the quadratic's f <= 0.05 (both by epoch 3
# of 10), QA 0.56 (both by epoch 10), the MLP 0.94 (both by epoch 4 of 5: 0.944-0.949 at the
# end), the CNN 0.85 (Adam 0.88-0.90 at epoch 3, SGD with momentum 0.82-0.87).
def _problems(quick: bool) -> dict[str, Problem]:
    from experiments.settings import QUADRATIC_STEPS, QUICK_EPOCHS, SEARCH_EPOCHS

    steps_per_epoch, q_epochs = (10, 3) if quick else (QUADRATIC_STEPS // 10, 10)
    mlp_rows, mlp_test, mlp_epochs = (1250, 500, 1) if quick else (10_000, 10_000, 5)
    cnn_rows, cnn_test, cnn_epochs = (500, 200, 1) if quick else (6_000, 2_000, 3)
    qa_epochs = QUICK_EPOCHS if quick else SEARCH_EPOCHS
    return {
        "quadratic": Problem(
            "quadratic", "noisy quadratic x1^2 + 2 x2^2 (the quadratic study), f at the end",
            functools.partial(quadratic_data, steps_per_epoch), quadratic_model,
            quadratic_loss, quadratic_value, 1, q_epochs, "loss", False, 0.05, shuffle=False,
            settings={"steps_per_epoch": steps_per_epoch, "noise": 1.0, "start": [2.0, 2.0]}),
        "qa": Problem(
            "qa", "QA pairs, TwoLayerMLP on the e5-small pair features (the QA studies)",
            qa_data, qa_model, qa_loss, sign_accuracy, 32,
            qa_epochs, "accuracy", True, 0.56,
            settings={"features": "e5-small", "inputs": "pairs", "trained_on": "all"}),
        "mnist_mlp": Problem(
            "mnist_mlp", f"MNIST MLP 784-128-10, {mlp_rows:,} training rows",
            functools.partial(mnist_data, mlp_rows, mlp_test, False), mlp_model,
            cross_entropy, argmax_accuracy, 128, mlp_epochs, "accuracy", True, 0.94,
            settings={"rows": mlp_rows, "test_rows": mlp_test}),
        "mnist_cnn": Problem(
            "mnist_cnn", f"MNIST CNN 4-8 channels, {cnn_rows:,} training rows",
            functools.partial(mnist_data, cnn_rows, cnn_test, True), cnn_model,
            cross_entropy, argmax_accuracy, 128, cnn_epochs, "accuracy", True, 0.85,
            settings={"rows": cnn_rows, "test_rows": cnn_test, "width": [4, 8, 16]}),
    }


@functools.cache
def problems(quick: bool = False) -> dict[str, Problem]:
    """``{name: Problem}``, the full ones or (``quick``) the tiny ones."""
    return _problems(quick)


def get(name: str, quick: bool = False) -> Problem:
    return problems(quick)[name]
