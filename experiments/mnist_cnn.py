"""MNIST CNN: the classic Keras example on minidl, Adam, trained until validation accuracy plateaus.

conv 32 3x3 ReLU -> conv 64 3x3 ReLU -> max-pool 2 -> dropout 0.25 -> flatten -> dense 128 ReLU
-> dropout 0.5 -> dense 10, softmax cross-entropy; Adam lr 0.001, batch 128, float32; early
stopping on val_accuracy (patience 2, best weights restored), at most 12 epochs (the Keras
example's epoch count). Its reference: 99.25% test accuracy.

    python -m experiments.mnist_cnn                        # seed 42, up to 12 epochs
    python -m experiments.mnist_cnn --epochs 3 --seeds 42  # what fits a short time budget
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import Adam, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
from minidl.callbacks import EarlyStopping

from . import mnist_common as mc

STUDY = "mnist_cnn"
EPOCHS, BATCH, PATIENCE = 12, 128, 2
SEEDS = (42,)
SOURCE = 0.9925  # the Keras CNN example


def model(seed: int, width: tuple[int, int, int] = (32, 64, 128)) -> Sequential:
    c1, c2, hidden = width
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2D(1, c1, 3, rng=rng), ReLU(),
        Conv2D(c1, c2, 3, rng=rng), ReLU(),
        MaxPool2D(2), Dropout(0.25, rng=rng), Flatten(),
        Dense(c2 * 12 * 12, hidden, rng=rng), ReLU(), Dropout(0.5, rng=rng),
        Dense(hidden, 10, rng=rng),
    ).astype(np.float32)


def main(argv=None) -> None:
    args = mc.parser(__doc__, EPOCHS, SEEDS).parse_args(argv)
    epochs, seeds = mc.settings(args, EPOCHS, SEEDS)
    data = mc.load_data(args, images=True)
    width = (4, 8, 16) if args.quick else (32, 64, 128)
    runs = []
    for seed in seeds:
        net = model(seed, width)
        stop = EarlyStopping("val_accuracy", patience=PATIENCE, restore_best_weights=True)
        result = mc.train(net, Adam(net.parameters(), lr=0.001), data, epochs=epochs,
                          batch_size=BATCH, seed=seed, callbacks=[stop])
        result["best_epoch"] = stop.best_epoch
        runs.append({"variant": "Keras CNN", "optimizer": "adam", "seed": seed, "result": result})
        print(f"seed {seed}: test accuracy {result['test_accuracy']:.4f} after "
              f"{len(result['rows'])} epochs (best {stop.best_epoch}), "
              f"{np.mean([r['epoch_time'] for r in result['rows']]):.0f} s/epoch", file=sys.stderr)
    epochs_df, summary = mc.tables(STUDY, runs)
    summary["best_epoch_mean"] = np.mean([r["result"]["best_epoch"] for r in runs])
    folder = mc.write_results(args, STUDY, epochs_df, summary, data, epochs=epochs,
                              batch_size=BATCH, optimizer="Adam(lr=0.001)", seeds=seeds,
                              early_stopping={"monitor": "val_accuracy", "patience": PATIENCE,
                                              "restore_best_weights": True},
                              widths=width, model=minidl.layer_config(model(0, width)),
                              dtype="float32")
    figure(folder, epochs_df)


def figure(folder, epoch_table) -> None:
    """Training loss and validation accuracy per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig.suptitle("MNIST CNN (Keras example architecture), Adam, batch 128")
    mc.curves(axes[0], epoch_table, "train_loss", "training loss")
    mc.curves(axes[1], epoch_table, "val_accuracy", "validation accuracy")
    mc.save_figure(fig, folder, "mnist_cnn_curves.png")


def report_section(results_dir) -> str:
    s = mc.read_summary(results_dir, STUDY).iloc[0]
    rows = [["CNN (conv32-conv64-pool-drop-128-drop-10), Adam", mc.fmt(s.test_accuracy_mean,
             s.test_accuracy_std), f"{SOURCE:.4f}", f"{s.test_accuracy_mean - SOURCE:+.4f}",
             int(s.n_seeds), f"{s.epoch_mean:.0f} (best {s.best_epoch_mean:.0f})",
             f"{s.epoch_time_mean:.0f}"]]
    return "\n".join([
        "## 13. `mnist_cnn`: the Keras CNN example", "",
        mc.markdown_table(["model", "test accuracy (ours)", "Keras example", "difference",
                           "seeds", "epochs run", "s/epoch"], rows), "",
        f"![CNN training curves](figures/{STUDY}/mnist_cnn_curves.png)", "",
    ])


if __name__ == "__main__":
    main()
