"""MNIST CNN: the classic Keras example on minidl, Adam, trained until validation accuracy plateaus.

conv 32 3x3 ReLU -> conv 64 3x3 ReLU -> max-pool 2 -> dropout 0.25 -> flatten -> dense 128 ReLU
-> dropout 0.5 -> dense 10, softmax cross-entropy; Adam lr 0.001, batch 128, float32; early
stopping on val_accuracy (patience 2, best weights restored), at most 12 epochs (the Keras
example's epoch count; ``experiments.settings``). Its reference: 99.25% test accuracy.

    python -m experiments.mnist_cnn                        # seed 42, up to 12 epochs
    python -m experiments.mnist_cnn --epochs 3 --seeds 42  # what fits a short time budget
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import minidl as md
from experiments import common, plots
from experiments import mnist_common as mc
from experiments.settings import (
    MNIST_CNN_EPOCHS,
    MNIST_CNN_OPTIMIZER,
    MNIST_CNN_PATIENCE,
    MNIST_CNN_SEEDS,
)
from minidl.callbacks import EarlyStopping

STUDY = "mnist_cnn"
#: Channels of the two convolutions and width of the dense layer; ``--quick``: a small one.
WIDTH, QUICK_WIDTH = (32, 64, 128), (4, 8, 16)


def model(seed: int, width: tuple[int, int, int] = WIDTH) -> md.Sequential:
    c1, c2, hidden = width
    rng = np.random.default_rng(seed)
    return md.Sequential(
        md.Conv2D(1, c1, 3, rng=rng), md.ReLU(),
        md.Conv2D(c1, c2, 3, rng=rng), md.ReLU(),
        md.MaxPool2D(2), md.Dropout(0.25, rng=rng), md.Flatten(),
        md.Dense(c2 * 12 * 12, hidden, rng=rng), md.ReLU(), md.Dropout(0.5, rng=rng),
        md.Dense(hidden, 10, rng=rng),
    ).astype(np.float32)


def train(data: mc.Data, seed: int, epochs: int, width: tuple[int, int, int]) -> dict:
    """One seed's CNN, stopped early; ``best_epoch``: the epoch whose weights it keeps."""
    net = model(seed, width)
    stop = EarlyStopping("val_accuracy", patience=MNIST_CNN_PATIENCE, restore_best_weights=True)
    history = md.fit(net, md.SoftmaxCrossEntropy(), MNIST_CNN_OPTIMIZER.build(net.parameters()),
                     data.X_train, data.y_train, epochs=epochs,
                     batch_size=MNIST_CNN_OPTIMIZER.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], callbacks=[stop], verbose=2)
    return mc.result(history, net, data, best_epoch=stop.best_epoch)


def main(argv=None) -> None:
    args = mc.parser(__doc__).parse_args(argv)
    epochs, seeds = mc.settings(args, MNIST_CNN_EPOCHS, MNIST_CNN_SEEDS)
    data = mc.load_data(args, images=True)
    width = QUICK_WIDTH if args.quick else WIDTH
    tasks = [({"variant": "Keras CNN", "optimizer": "adam", "seed": s},
              {"data": data, "seed": s, "epochs": epochs, "width": width}) for s in seeds]
    results = mc.run_all(train, tasks, STUDY)
    per_epoch, summary = mc.tables(STUDY, [i for i, _ in tasks], results)
    summary["best_epoch_mean"] = np.mean([r["best_epoch"] for r in results])
    folder = common.write_results(
        args.out, STUDY, args, per_epoch, summary, data, epochs=epochs, seeds=seeds,
        optimizer=MNIST_CNN_OPTIMIZER.describe(),
        early_stopping={"monitor": "val_accuracy", "patience": MNIST_CNN_PATIENCE,
                        "restore_best_weights": True},
        widths=width, model=md.layer_config(model(0, width)), dtype="float32")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig.suptitle(f"MNIST CNN (Keras example architecture), {mc.label(MNIST_CNN_OPTIMIZER)}, "
                 f"batch {MNIST_CNN_OPTIMIZER.batch_size}")
    plots.curves(axes[0], per_epoch, "train_loss", by="variant", marker="o",
                 title="training loss")
    plots.curves(axes[1], per_epoch, "val_accuracy", by="variant", marker="o",
                 title="validation accuracy")
    plots.save_figure(fig, folder, "mnist_cnn_curves.png")


if __name__ == "__main__":
    main()
