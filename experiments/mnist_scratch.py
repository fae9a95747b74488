"""MNIST from scratch: the source's exact settings, then the same network tuned.

Source settings: 784 -> 128 ReLU -> 10 softmax, cross-entropy, weights N(0, 1) * 0.01 and zero
biases, mini-batch gradient descent (SGD without momentum) lr 0.01, batch 32, 10 epochs, the
batches never shuffled, pixels / 255, a 48,000 / 12,000 train/validation split
(random_state 42). Tuned: the same network with He-normal weights, Adam lr 0.001, batch 64 and
reshuffled batches (``experiments.settings``). Reported per run on the 10,000 test images:
accuracy, macro precision/recall/F1, per-digit precision/recall/F1 and the confusion matrix.

    python -m experiments.mnist_scratch                # both variants, 3 seeds, 10 epochs
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import minidl as md
from experiments import common, files, plots
from experiments import mnist_common as mc
from experiments.settings import MNIST_SCRATCH_EPOCHS, MNIST_SCRATCH_OPTIMIZERS
from minidl.init import normal
from minidl.metrics import confusion_matrix, precision_recall_f1

STUDY = "mnist_scratch"
#: variant -> (weight initialiser, batches reshuffled every epoch); its optimizer, learning rate
#: and batch size: ``MNIST_SCRATCH_OPTIMIZERS[variant]``
VARIANTS = {"source": (normal(0.01), False), "tuned": ("he_normal", True)}
DIGITS = range(10)


def train(variant: str, data: mc.Data, seed: int, epochs: int) -> dict:
    """784 -> 128 ReLU -> 10, trained as ``variant`` says."""
    init, shuffle = VARIANTS[variant]
    setting = MNIST_SCRATCH_OPTIMIZERS[variant]
    rng = np.random.default_rng(seed)
    model = md.Sequential(md.Dense(784, 128, init=init, rng=rng), md.ReLU(),
                          md.Dense(128, 10, init=init, rng=rng)).astype(np.float32)
    history = md.fit(model, md.SoftmaxCrossEntropy(), setting.build(model.parameters()),
                     data.X_train, data.y_train, epochs=epochs, batch_size=setting.batch_size,
                     shuffle=shuffle, seed=seed, validation_data=data.val, metrics=["accuracy"],
                     verbose=2)
    return mc.result(history, model, data)


def main(argv=None) -> None:
    args = mc.parser(__doc__).parse_args(argv)
    epochs, seeds = mc.settings(args, MNIST_SCRATCH_EPOCHS)
    data = mc.load_data(args)
    tasks = [({"variant": v, "optimizer": MNIST_SCRATCH_OPTIMIZERS[v].cls.__name__.lower(),
               "seed": s}, {"variant": v, "data": data, "seed": s, "epochs": epochs})
             for v in VARIANTS for s in seeds]
    results = mc.run_all(train, tasks, STUDY)
    ids = [i for i, _ in tasks]
    per_epoch, summary = mc.tables(STUDY, ids, results)
    per_class = per_digit(ids, results, data.y_test)
    macro = per_class.groupby(["variant", "seed"], sort=False)[["precision", "recall", "f1"]]
    macro = macro.mean().groupby("variant", sort=False).mean()
    for k in ("precision", "recall", "f1"):
        summary[f"macro_{k}_mean"] = summary["variant"].map(macro[k])
    folder = common.write_results(
        args.out, STUDY, args, per_epoch, summary, data, epochs=epochs, seeds=seeds,
        variants={v: {"init": getattr(i, "__name__", i), "shuffle": s,
                      **MNIST_SCRATCH_OPTIMIZERS[v].describe()} for v, (i, s) in VARIANTS.items()},
        dtype="float32")
    per_class.pipe(files.write_csv, folder / "per_class.csv")
    first = {}  # the first seed's predictions of each variant
    for i, r in zip(ids, results, strict=True):
        first.setdefault(i["variant"], r["test_pred"])
    confusions = {v: confusion_matrix(data.y_test, pred, labels=DIGITS)
                  for v, pred in first.items()}
    pd.DataFrame([{"variant": v, "true": t, "pred": p, "count": int(c[t, p])}
                  for v, c in confusions.items() for t in DIGITS for p in DIGITS]
                 ).pipe(files.write_csv, folder / "confusion.csv")
    figures(folder, confusions, seeds[0], per_epoch)


def per_digit(ids: list[dict], results: list[dict], y_test: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support of every digit, per run."""
    return pd.concat([pd.DataFrame({"variant": i["variant"], "seed": i["seed"], "digit": DIGITS,
                                    **{k: scores[k] for k in ("precision", "recall", "f1",
                                                              "support")}})
                      for i, r in zip(ids, results, strict=True)
                      for scores in [precision_recall_f1(y_test, r["test_pred"], labels=DIGITS)]],
                     ignore_index=True)


def figures(folder, confusions: dict[str, np.ndarray], seed: int, per_epoch) -> None:
    """The test confusion matrix of each variant (first seed) and the validation curves."""
    fig, axes = plt.subplots(1, len(confusions), figsize=(6.2 * len(confusions), 5.6))
    fig.suptitle(f"MNIST test confusion matrices (seed {seed})")
    for ax, (variant, c) in zip(np.atleast_1d(axes), confusions.items(), strict=True):
        image = ax.imshow(np.log1p(c), cmap="Blues")
        for t in DIGITS:
            for p in DIGITS:
                ax.text(p, t, int(c[t, p]), ha="center", va="center", fontsize=6,
                        color="white" if np.log1p(c[t, p]) > np.log1p(c.max()) / 2 else "black")
        ax.set(xticks=DIGITS, yticks=DIGITS, xlabel="predicted digit", ylabel="true digit",
               title=f"{variant}: accuracy {np.trace(c) / c.sum():.4f}")
        fig.colorbar(image, ax=ax, label="log(1 + count)", shrink=0.8)
    plots.save_figure(fig, folder, "mnist_confusion.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    plots.curves(ax, per_epoch, "val_accuracy", by="variant", marker="o",
                 title="MNIST from scratch: validation accuracy")
    plots.save_figure(fig, folder, "mnist_scratch_curves.png")


if __name__ == "__main__":
    main()
