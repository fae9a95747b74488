"""MNIST from scratch: the source's exact settings, then the same network tuned.

Source settings: 784 -> 128 ReLU -> 10 softmax, cross-entropy, weights N(0, 1) * 0.01 and zero
biases, mini-batch gradient descent (SGD without momentum) lr 0.01, batch 32, 10 epochs, the
batches never shuffled, pixels / 255, a 48,000 / 12,000 train/validation split
(random_state 42). Tuned: the same network with He-normal weights, Adam lr 0.001, batch 64 and
reshuffled batches. Reported per run on the 10,000 test images: accuracy, macro
precision/recall/F1, per-digit precision/recall/F1 and the confusion matrix.

    python -m experiments.mnist_scratch                # both variants, 3 seeds, 10 epochs
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from minidl import SGD, Adam, Dense, ReLU, Sequential
from minidl.init import normal
from minidl.metrics import confusion_matrix, precision_recall_f1

from . import mnist_common as mc

STUDY = "mnist_scratch"
EPOCHS = 10
SOURCE = {"accuracy": 0.9350, "precision": 0.9346, "recall": 0.9340, "f1": 0.9340}
SOURCE_WEAKEST = {5: 0.8767, 9: 0.9058, 8: 0.9076}  # the source's lowest recalls

#: variant -> (initialiser, optimizer factory, batch size, shuffle)
VARIANTS = {
    "source": (normal(0.01), lambda p: SGD(p, lr=0.01), 32, False),
    "tuned": ("he_normal", lambda p: Adam(p, lr=0.001), 64, True),
}
OPTIMIZER = {"source": "sgd", "tuned": "adam"}


def model(init, seed: int) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(Dense(784, 128, init=init, rng=rng), ReLU(),
                      Dense(128, 10, init=init, rng=rng)).astype(np.float32)


def main(argv=None) -> None:
    args = mc.parser(__doc__, EPOCHS).parse_args(argv)
    epochs, seeds = mc.settings(args, EPOCHS)
    data = mc.load_data(args)
    runs, per_class, confusions = [], [], {}
    for variant, (init, make_opt, batch, shuffle) in VARIANTS.items():
        for seed in seeds:
            net = model(init, seed)
            result = mc.train(net, make_opt(net.parameters()), data, epochs=epochs,
                              batch_size=batch, seed=seed, shuffle=shuffle)
            runs.append({"variant": variant, "optimizer": OPTIMIZER[variant], "seed": seed,
                         "result": result})
            scores = precision_recall_f1(data.y_test, result["test_pred"], labels=range(10))
            per_class.append(pd.DataFrame({"variant": variant, "seed": seed, "digit": range(10),
                                           **{k: scores[k] for k in ("precision", "recall", "f1",
                                                                     "support")}}))
            confusions.setdefault(variant, confusion_matrix(data.y_test, result["test_pred"],
                                                            labels=range(10)))
            print(f"{variant} / seed {seed}: {result['test_accuracy']:.4f}", file=sys.stderr)
    epoch_table, summary = mc.tables(STUDY, runs)
    per_class = pd.concat(per_class, ignore_index=True)
    macro = per_class.groupby(["variant", "seed"], sort=False)[["precision", "recall", "f1"]]
    macro = macro.mean().groupby("variant", sort=False).mean()
    for k in ("precision", "recall", "f1"):
        summary[f"macro_{k}_mean"] = summary["variant"].map(macro[k])
    folder = mc.write_results(args, STUDY, epoch_table, summary, data, epochs=epochs, seeds=seeds,
                              variants={v: {"init": getattr(i, "__name__", i), "batch_size": b,
                                            "shuffle": s, "optimizer": OPTIMIZER[v]}
                                        for v, (i, _, b, s) in VARIANTS.items()},
                              lr={"source": 0.01, "tuned": 0.001}, dtype="float32")
    per_class.to_csv(folder / "per_class.csv", index=False)
    pd.DataFrame([{"variant": v, "true": t, "pred": p, "count": int(c[t, p])}
                  for v, c in confusions.items() for t in range(10) for p in range(10)]
                 ).to_csv(folder / "confusion.csv", index=False)
    figures(folder, confusions, seeds[0], epoch_table)


def figures(folder, confusions: dict[str, np.ndarray], seed: int, epoch_table) -> None:
    """The test confusion matrix of each variant (first seed) and the validation curves."""
    fig, axes = plt.subplots(1, len(confusions), figsize=(6.2 * len(confusions), 5.6))
    fig.suptitle(f"MNIST test confusion matrices (seed {seed})")
    for ax, (variant, c) in zip(np.atleast_1d(axes), confusions.items(), strict=True):
        image = ax.imshow(np.log1p(c), cmap="Blues")
        for t in range(10):
            for p in range(10):
                ax.text(p, t, int(c[t, p]), ha="center", va="center", fontsize=6,
                        color="white" if np.log1p(c[t, p]) > np.log1p(c.max()) / 2 else "black")
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
        ax.set_title(f"{variant}: accuracy {np.trace(c) / c.sum():.4f}")
        fig.colorbar(image, ax=ax, label="log(1 + count)", shrink=0.8)
    mc.save_figure(fig, folder, "mnist_confusion.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    mc.curves(ax, epoch_table, "val_accuracy", "MNIST from scratch: validation accuracy")
    mc.save_figure(fig, folder, "mnist_scratch_curves.png")


def report_section(results_dir) -> str:
    s = mc.read_summary(results_dir, STUDY).set_index("variant")
    per_class = pd.read_csv(f"{results_dir}/{STUDY}/per_class.csv")
    rows = []
    for variant, r in s.iterrows():
        rows.append([variant, mc.fmt(r.test_accuracy_mean, r.test_accuracy_std),
                     f"{r.macro_precision_mean:.4f}", f"{r.macro_recall_mean:.4f}",
                     f"{r.macro_f1_mean:.4f}", int(r.n_seeds), f"{r.epoch_time_mean:.1f}"])
    rows.append(["source (one run)", f"{SOURCE['accuracy']:.4f}", f"{SOURCE['precision']:.4f}",
                 f"{SOURCE['recall']:.4f}", f"{SOURCE['f1']:.4f}", 1, ""])
    recall = per_class.groupby(["variant", "digit"])["recall"].mean().unstack("variant")
    weakest = recall["source"].sort_values().index[:3] if "source" in recall else []
    weak_rows = [[int(d), *(f"{recall.loc[d, v]:.4f}" for v in recall.columns),
                  f"{SOURCE_WEAKEST[d]:.4f}" if d in SOURCE_WEAKEST else "-"]
                 for d in sorted(set(weakest) | set(SOURCE_WEAKEST))]
    return "\n".join([
        "## 11. `mnist_scratch`: MNIST from scratch, the source's settings, then tuned", "",
        mc.markdown_table(["variant", "test accuracy (mean ± std)", "macro precision",
                           "macro recall", "macro F1", "seeds", "s/epoch"], rows), "",
        "Recall of the weakest digits (mean over seeds) beside the source's:", "",
        mc.markdown_table(["digit", *(f"recall, {v}" for v in recall.columns), "source"],
                          weak_rows), "",
        f"![confusion matrices](figures/{STUDY}/mnist_confusion.png)", "",
        f"![validation accuracy](figures/{STUDY}/mnist_scratch_curves.png)", "",
    ])


if __name__ == "__main__":
    main()
