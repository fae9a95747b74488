"""Every setting of the studies, each written once: the source's (``SPEC.md``) and the few this
project adds. The study scripts, the main job (``experiments.demo``) and the runner's flags
import them from here; nothing else repeats a learning rate, a batch size or a seed.

Light to import (minidl and the standard library only), so ``--help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minidl as md


@dataclass(frozen=True)
class OptimizerSetting:
    """An optimizer as a study uses it: its class, learning rate, batch size (None: the whole
    training set, one step per epoch) and other arguments."""

    cls: type[md.Optimizer]
    lr: float
    batch_size: int | None
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, parameters, lr: float | None = None) -> md.Optimizer:
        """``cls(parameters, lr=lr or self.lr, **options)``."""
        return self.cls(parameters, lr=self.lr if lr is None else lr, **self.options)

    def describe(self) -> dict[str, Any]:
        return {"class": self.cls.__name__, "lr": self.lr, "batch_size": self.batch_size,
                **self.options}


# ---------------------------------------------------------------------------- the QA studies
#: The source's seeds (five runs of every configuration).
SEEDS = (42, 10, 2024, 7, 99)
#: ``--quick``: a smoke run.
QUICK_EPOCHS, QUICK_SEEDS = 3, 2
#: The source's training length and TwoLayerMLP width.
EPOCHS, HIDDEN = 100, 64
#: The QA studies' precision: the features are stored as float16, and float32 halves the time
#: of the matrix products against float64 (the models are cast to the data's dtype).
DTYPE = np.float32
#: The validation split: this fraction of the training *questions* (both answers of each), drawn
#: with this seed; the test split is scored once per run.
VAL_FRACTION, VAL_SEED = 0.2, 0

#: The source's optimizers, learning rates and batch sizes.
OPTIMIZERS = {
    "gd": OptimizerSetting(md.SGD, 0.01, None),
    "sgd": OptimizerSetting(md.SGD, 0.1, 32),
    "adam": OptimizerSetting(md.Adam, 0.001, 32, {"betas": (0.9, 0.999), "eps": 1e-8}),
    "adagrad": OptimizerSetting(md.AdaGrad, 0.01, 32, {"eps": 1e-8}),
    "rmsprop": OptimizerSetting(md.RMSProp, 0.01, 32, {"alpha": 0.9, "eps": 1e-8}),
}
#: The source's three (``optimizers`` and most studies) and all five (``adaptive``).
THREE, FIVE = ("gd", "sgd", "adam"), tuple(OPTIMIZERS)

#: The model's inputs: the source's ``[q | a | 1]``, or the sentence-pair features
#: ``[q | a | q*a | |q-a| | 1]``, which let a layer compare question and answer coordinate by
#: coordinate.
INPUTS = ("source", "pairs")
#: What a model is trained on: ``all`` (every kind together, the source's setting) or kinds of
#: wrong answer, one at a time; ``a+b`` trains on two kinds together.
ALL_KINDS = "all"
#: The kinds of wrong answer in the shipped data (``data/qa/topics.csv``, column ``tur``).
KINDS = ("fact", "non_answer", "other_answer")
#: The setting of the studies that vary something else (model, data size, ...): the one in which
#: there is something to learn (``optimizers`` shows which that is).
MAIN_INPUTS, MAIN_TRAINED_ON = "pairs", ALL_KINDS

#: The setting the headline tables and curves show where a study ran it: the learnable kind,
#: on the features that can learn it.
HEADLINE = ("pairs", "other_answer")

#: Study 3: fractions of the training questions, 50 epochs.
TRAIN_FRACTIONS, TRAIN_SIZE_EPOCHS = (0.1, 0.25, 0.5, 0.75, 1.0), 50
#: Study 5 and 6: the models beside the TwoLayerMLP (hidden widths).
ONE_LAYER, DEEP = (), (128, 64, 32)
#: Study 7: hidden widths, epochs, training rows (None: all) and learning rates per optimizer.
FITTING = {
    "overfit": {"hidden": (1024,), "epochs": 300, "rows": 50,
                "lr": {"gd": 0.5, "sgd": 0.1, "adam": 0.001}},
    "underfit": {"hidden": (1,), "epochs": 10, "rows": None,
                 "lr": {"gd": 0.001, "sgd": 0.001, "adam": 0.0001}},
}
#: Study 8: the source's grid (Adam, 30 epochs, one seed), and the searches' budget and range.
GRID_HIDDEN, GRID_LRS, SEARCH_EPOCHS, SEARCH_SEED = (32, 64, 128), (0.1, 0.01, 0.001, 0.0001), \
    30, 42
TRIALS, QUICK_TRIALS, TRIAL_BATCH, SEARCH_PATIENCE = 12, 6, 4, 5
SEARCH_HIDDEN, SEARCH_LR = (16, 256), (1e-4, 1e-1)
#: Study 9: 50 epochs; the source's five seeds, then five more for its ten-seed panel.
TRAJECTORY_EPOCHS, TRAJECTORY_SEEDS = 50, (*SEEDS, 0, 1, 2, 3, 4)
TSNE = {"perplexity": 10, "init": "pca", "pca": 50}
#: Study 10: f(x1, x2) = x1^2 + 2 x2^2 from (2, 2), gradient noise N(0, 1), 200 steps.
QUADRATIC_START, QUADRATIC_NOISE, QUADRATIC_STEPS = (2.0, 2.0), 1.0, 200
QUADRATIC_OPTIMIZERS = {
    "sgd": OptimizerSetting(md.SGD, 0.1, 1),
    "momentum": OptimizerSetting(md.SGD, 0.01, 1, {"momentum": 0.9}),
    "adam": OptimizerSetting(md.Adam, 0.1, 1),
}


# ---------------------------------------------------------------------------- the MNIST studies
#: Their seeds (three runs of every configuration); the source's 48,000 / 12,000 train/validation
#: split (scikit-learn's ``train_test_split(test_size=0.2, random_state=42)``).
MNIST_SEEDS = (42, 10, 2024)
MNIST_VAL_SIZE, MNIST_SPLIT_SEED = 0.2, 42
#: ``--quick``: a smoke run of seconds: 1 epoch, the first ``QUICK_SEEDS`` of the seeds, 400
#: training images (of the generated stand-in unless ``--dataset mnist``) and 2 search trials.
MNIST_QUICK_EPOCHS, MNIST_QUICK_TRAIN, MNIST_QUICK_TRIALS = 1, 400, 2

#: ``mnist_scratch``: the source's mini-batch gradient descent, and the same network tuned.
MNIST_SCRATCH_EPOCHS = 10
MNIST_SCRATCH_OPTIMIZERS = {
    "source": OptimizerSetting(md.SGD, 0.01, 32),
    "tuned": OptimizerSetting(md.Adam, 0.001, 64),
}
#: ``mnist_pipeline``: the source's Keras optimizers (Keras defaults: eps 1e-7, RMSprop rho 0.9).
MNIST_PIPELINE_EPOCHS = 6
MNIST_PIPELINE_OPTIMIZERS = {
    "adam": OptimizerSetting(md.Adam, 0.001, 128, {"eps": 1e-7}),
    "sgd": OptimizerSetting(md.SGD, 0.01, 128),
    "rmsprop": OptimizerSetting(md.RMSProp, 0.001, 128, {"alpha": 0.9, "eps": 1e-7}),
}
#: ``mnist_cnn``: the Keras CNN example, at most 12 epochs, early stopping's patience, one seed.
MNIST_CNN_EPOCHS, MNIST_CNN_PATIENCE, MNIST_CNN_SEEDS = 12, 2, (42,)
MNIST_CNN_OPTIMIZER = OptimizerSetting(md.Adam, 0.001, 128)
#: ``mnist_improvements``: the baseline's epochs and optimizer; the ensemble's five seeds; early
#: stopping's patience; the random search (trials of a few epochs, and the ranges drawn from);
#: the Keras MLP example's optimizer and epochs.
MNIST_IMPROVEMENTS_EPOCHS = 12
MNIST_BASELINE_OPTIMIZER = OptimizerSetting(md.Adam, 0.001, 128)
MNIST_ENSEMBLE_SEEDS = (*MNIST_SEEDS, 7, 99)
MNIST_PATIENCE = 3
MNIST_SEARCH_TRIALS, MNIST_SEARCH_EPOCHS = 8, 4
MNIST_SEARCH = {"width": (128, 256, 512), "dropout": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
                "log10_lr": (-3.7, -2.5), "batch_size": (64, 128, 256)}
MNIST_KERAS_MLP_OPTIMIZER = OptimizerSetting(md.RMSProp, 0.001, 128, {"alpha": 0.9, "eps": 1e-7})
MNIST_KERAS_MLP_EPOCHS = 20
#: ``mnist_keras``: the Keras CNN example's epochs (fixed: no early stopping there).
MNIST_KERAS_CNN_EPOCHS = 12
