"""MNIST pipeline: the source's five Keras variants, batch 128, 6 epochs, 3 seeds each.

The source trained each variant once and used the test set as its validation set; here the
validation split is separate (48,000 / 12,000 of the training images) and the test set is scored
once per run. Keras defaults are kept where the source relied on them: Glorot-uniform weights,
Adam and RMSprop with eps 1e-7, RMSprop rho 0.9, BatchNormalization momentum 0.99 (minidl's
momentum 0.01) and epsilon 1e-3; the training rows are reshuffled every epoch. Learning rates and
batch sizes: ``experiments.settings.MNIST_PIPELINE_OPTIMIZERS``.

    python -m experiments.mnist_pipeline                  # 5 variants x 3 seeds x 6 epochs
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import minidl as md
from experiments import common, plots
from experiments import mnist_common as mc
from experiments.settings import MNIST_PIPELINE_EPOCHS, MNIST_PIPELINE_OPTIMIZERS

STUDY = "mnist_pipeline"

#: variant -> (layers after the input: widths, "bn" and dropout rates; optimizer; the source's
#: test accuracy, one Keras run)
VARIANTS = {
    "128 ReLU": ([128], "adam", 0.9764),
    "128 ReLU (SGD)": ([128], "sgd", 0.9100),
    "128 ReLU, Dropout 0.5": ([128, 0.5], "adam", 0.9701),
    "128 ReLU, BN": ([128, "bn"], "rmsprop", 0.9770),
    "128-BN-Drop0.3-64-BN-Drop0.2": ([128, "bn", 0.3, 64, "bn", 0.2], "rmsprop", 0.9768),
}


def model(spec, seed: int) -> md.Sequential:
    """``spec``: hidden widths (each followed by ReLU), ``"bn"`` and dropout rates, in order."""
    rng = np.random.default_rng(seed)
    layers, width = [], 784
    for item in spec:
        if item == "bn":
            layers.append(md.BatchNorm1d(width, eps=1e-3, momentum=0.01))
        elif isinstance(item, float):
            layers.append(md.Dropout(item, rng=rng))
        else:
            layers += [md.Dense(width, item, rng=rng), md.ReLU()]
            width = item
    return md.Sequential(*layers, md.Dense(width, 10, rng=rng)).astype(np.float32)


def train(variant: str, data: mc.Data, seed: int, epochs: int) -> dict:
    spec, optimizer, _ = VARIANTS[variant]
    setting = MNIST_PIPELINE_OPTIMIZERS[optimizer]
    net = model(spec, seed)
    history = md.fit(net, md.SoftmaxCrossEntropy(), setting.build(net.parameters()),
                     data.X_train, data.y_train, epochs=epochs, batch_size=setting.batch_size,
                     seed=seed, validation_data=data.val, metrics=["accuracy"], verbose=2)
    return mc.result(history, net, data)


def main(argv=None) -> None:
    args = mc.parser(__doc__).parse_args(argv)
    epochs, seeds = mc.settings(args, MNIST_PIPELINE_EPOCHS)
    data = mc.load_data(args)
    tasks = [({"variant": v, "optimizer": o, "seed": s},
              {"variant": v, "data": data, "seed": s, "epochs": epochs})
             for v, (_, o, _) in VARIANTS.items() for s in seeds]
    results = mc.run_all(train, tasks, STUDY)
    per_epoch, summary = mc.tables(STUDY, [i for i, _ in tasks], results)
    summary["source_test_accuracy"] = [VARIANTS[v][2] for v in summary["variant"]]
    folder = common.write_results(
        args.out, STUDY, args, per_epoch, summary, data, epochs=epochs, seeds=seeds,
        optimizers={k: s.describe() for k, s in MNIST_PIPELINE_OPTIMIZERS.items()},
        variants={v: {"layers": s, "optimizer": o} for v, (s, o, _) in VARIANTS.items()},
        dtype="float32")
    figure(folder, summary, per_epoch, len(seeds), args.protocol)


def figure(folder, summary, per_epoch, n_seeds: int, protocol: str = "split") -> None:
    """Test accuracy per variant (mean ± std, beside the source's run) and validation curves."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), width_ratios=(1, 1.1))
    how = ("48,000 training images, 12,000 for validation" if protocol == "split" else
           "the source's protocol: 60,000 training images, the test set as validation")
    batches = sorted({s.batch_size for s in MNIST_PIPELINE_OPTIMIZERS.values()})
    fig.suptitle(f"MNIST pipeline variants, batch {', '.join(map(str, batches))}, mean ± std "
                 f"over {n_seeds} seed(s); {how}")
    y = np.arange(len(summary))[::-1]
    axes[0].errorbar(summary["test_accuracy_mean"], y, xerr=summary["test_accuracy_std"].fillna(0),
                     fmt="o", capsize=4, color="tab:blue", label="minidl (mean ± std)")
    axes[0].scatter(summary["source_test_accuracy"], y, color="tab:red", marker="D", zorder=3,
                    label="source (one Keras run)")
    axes[0].set_yticks(y, [f"{v}\n{mc.label(MNIST_PIPELINE_OPTIMIZERS[o])}" for v, o in
                           zip(summary["variant"], summary["optimizer"], strict=True)],
                       fontsize=8)
    axes[0].set(xlabel="test accuracy", ylabel="variant",
                title="test accuracy after the last epoch")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="lower center")
    plots.curves(axes[1], per_epoch, "val_accuracy", by="variant", marker="o",
                 title="validation accuracy per epoch")
    name = "mnist_pipeline.png" if protocol == "split" else "mnist_pipeline_source_protocol.png"
    plots.save_figure(fig, folder, name)


if __name__ == "__main__":
    main()
