"""MNIST, the Keras examples on their own protocol: the MLP and the CNN, 3 seeds each.

The two networks Keras published as its MNIST examples, trained the way those examples were:
all 60,000 training images, a fixed number of epochs, no early stopping and nothing else
chosen on the test set; the 10,000 test images are scored after every epoch for the curves (as
the examples' ``validation_data`` did) and the last epoch's score is the result.

- ``Keras MLP``: 784 -> 512 ReLU -> Dropout 0.2 -> 512 ReLU -> Dropout 0.2 -> 10 (the network
  of ``mnist_improvements``), RMSprop lr 0.001 (rho 0.9, eps 1e-7), batch 128, 20 epochs;
  Keras reports 98.40%.
- ``Keras CNN``: ``mnist_cnn``'s network, Adam lr 0.001, batch 128, 12 epochs; Keras reports
  99.25% (its example used Adadelta; ``mnist_cnn`` and this study use Adam, as the study
  did).

``--protocol split`` trains the same way on 48,000 images and scores the 12,000 held out after
each epoch instead (the test set once, at the end). Settings: ``experiments.settings``.

    python -m experiments.mnist_keras                      # both networks, 3 seeds
    python -m experiments.mnist_keras --models mlp         # the MLP alone
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import minidl as md
from experiments import common, plots
from experiments import mnist_common as mc
from experiments.mnist_cnn import QUICK_WIDTH, WIDTH
from experiments.mnist_cnn import model as cnn
from experiments.mnist_improvements import mlp
from experiments.settings import (
    MNIST_CNN_OPTIMIZER,
    MNIST_KERAS_CNN_EPOCHS,
    MNIST_KERAS_MLP_EPOCHS,
    MNIST_KERAS_MLP_OPTIMIZER,
)

STUDY = "mnist_keras"
#: ``--models`` name -> (the run's name, its optimizer setting, epochs, Keras's test accuracy)
MODELS = {
    "mlp": ("Keras MLP", MNIST_KERAS_MLP_OPTIMIZER, MNIST_KERAS_MLP_EPOCHS, 0.9840),
    "cnn": ("Keras CNN", MNIST_CNN_OPTIMIZER, MNIST_KERAS_CNN_EPOCHS, 0.9925),
}


def network(name: str, seed: int, quick: bool) -> md.Sequential:
    if name == "cnn":
        return cnn(seed, QUICK_WIDTH if quick else WIDTH)
    return mlp(seed, 512, 0.2, depth=2)


def train(name: str, data: dict[str, mc.Data], seed: int, epochs: int, quick: bool) -> dict:
    """One network for a fixed number of epochs; ``data`` by input shape (rows or images)."""
    _, setting, _, _ = MODELS[name]
    net = network(name, seed, quick)
    rows = data["images" if name == "cnn" else "rows"]
    history = md.fit(net, md.SoftmaxCrossEntropy(), setting.build(net.parameters()),
                     rows.X_train, rows.y_train, epochs=epochs, batch_size=setting.batch_size,
                     seed=seed, validation_data=rows.val, metrics=["accuracy"], verbose=2)
    return mc.result(history, net, rows)


def main(argv=None) -> None:
    p = mc.parser(__doc__)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                   help="the networks to train")
    p.set_defaults(protocol="source")
    args = p.parse_args(argv)
    _, seeds = mc.settings(args, 0)
    data = {"rows": mc.load_data(args), "images": mc.load_data(args, images=True)}
    tasks = [({"variant": MODELS[m][0], "optimizer": MODELS[m][1].cls.__name__.lower(),
               "seed": s},
              {"name": m, "data": data, "seed": s, "quick": args.quick,
               "epochs": args.epochs or (1 if args.quick else MODELS[m][2])})
             for m in args.models for s in seeds]
    results = mc.run_all(train, tasks, STUDY)
    per_epoch, summary = mc.tables(STUDY, [i for i, _ in tasks], results)
    keras = {MODELS[m][0]: MODELS[m][3] for m in MODELS}
    summary["keras_test_accuracy"] = summary["variant"].map(keras)
    summary["met"] = summary["test_accuracy_mean"] >= summary["keras_test_accuracy"]
    folder = common.write_results(
        args.out, STUDY, args, per_epoch, summary, data["rows"], seeds=seeds, dtype="float32",
        models={MODELS[m][0]: {"epochs": MODELS[m][2], "keras_test_accuracy": MODELS[m][3],
                               **MODELS[m][1].describe(),
                               "layers": md.layer_config(network(m, 0, args.quick))}
                for m in args.models})
    tests = {v: [r["test"]["test_accuracy"] for (i, _), r in zip(tasks, results, strict=True)
                 if i["variant"] == v] for v in summary["variant"]}
    figure(folder, summary, per_epoch, tests, args.protocol, len(data["rows"].X_train))


def figure(folder, summary, per_epoch, tests: dict[str, list[float]], protocol: str,
           n_train: int) -> None:
    """Test accuracy of each network (``tests``: its seeds', and their mean) beside Keras's,
    and the accuracy after each epoch."""
    scored = "test" if protocol == "source" else "validation"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), width_ratios=(1, 1.3))
    fig.suptitle(f"MNIST, the Keras examples: {n_train:,} training images, fixed epochs, "
                 + ("the test set scored after each" if protocol == "source" else
                    "a held-out split scored after each"))
    for y, r in enumerate(summary.itertuples()):
        axes[0].scatter(tests[r.variant], np.full(len(tests[r.variant]), y), color="grey",
                        s=18, zorder=2, label="one seed" if y == 0 else None)
        axes[0].errorbar(r.test_accuracy_mean, y, xerr=0 if np.isnan(r.test_accuracy_std)
                         else r.test_accuracy_std, fmt="o", color="tab:blue", capsize=4,
                         zorder=3, label="mean ± std over seeds" if y == 0 else None)
        axes[0].scatter(r.keras_test_accuracy, y, marker="D", color="tab:red", zorder=3,
                        label="Keras's reported accuracy" if y == 0 else None)
    axes[0].set_yticks(range(len(summary)),
                       [f"{v}\n{int(n)} seeds" for v, n in zip(summary["variant"],
                                                              summary["n_seeds"], strict=True)])
    axes[0].set(xlabel="test accuracy after the last epoch", ylabel="network",
                title="test accuracy")
    axes[0].grid(alpha=0.3)
    axes[0].set_ylim(-0.6, len(summary) - 0.4)
    axes[0].legend(fontsize="small", loc="best")
    plots.curves(axes[1], per_epoch, "val_accuracy", by="variant", marker="o",
                 title=f"{scored} accuracy after each epoch")
    axes[1].set_ylabel(f"{scored} accuracy")
    plots.save_figure(fig, folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
