"""MNIST pipeline: the source's five Keras variants, batch 128, 6 epochs, 3 seeds each.

The source trained each variant once and used the test set as its validation set; here the
validation split is separate (48,000 / 12,000 of the training images) and the test set is scored
once per run. Keras defaults are kept where the source relied on them: Glorot-uniform weights,
Adam and RMSprop with eps 1e-7, RMSprop rho 0.9, BatchNormalization momentum 0.99 (minidl's
momentum 0.01) and epsilon 1e-3; the training rows are reshuffled every epoch.

    python -m experiments.mnist_pipeline                  # 5 variants x 3 seeds x 6 epochs
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from minidl import SGD, Adam, BatchNorm1d, Dense, Dropout, ReLU, RMSProp, Sequential

from . import mnist_common as mc

STUDY = "mnist_pipeline"
EPOCHS, BATCH = 6, 128

#: variant -> (layers after the input: widths, "bn" and dropout rates; optimizer; source's result)
VARIANTS = {
    "128 ReLU": ([128], "adam", 0.9764),
    "128 ReLU (SGD)": ([128], "sgd", 0.9100),
    "128 ReLU, Dropout 0.5": ([128, 0.5], "adam", 0.9701),
    "128 ReLU, BN": ([128, "bn"], "rmsprop", 0.9770),
    "128-BN-Drop0.3-64-BN-Drop0.2": ([128, "bn", 0.3, 64, "bn", 0.2], "rmsprop", 0.9768),
}
OPTIMIZERS = {
    "adam": lambda params: Adam(params, lr=0.001, eps=1e-7),
    "sgd": lambda params: SGD(params, lr=0.01),
    "rmsprop": lambda params: RMSProp(params, lr=0.001, alpha=0.9, eps=1e-7),
}
LABELS = {"adam": "Adam 0.001", "sgd": "SGD 0.01", "rmsprop": "RMSprop 0.001"}


def model(spec, seed: int) -> Sequential:
    """``spec``: hidden widths (each followed by ReLU), ``"bn"`` and dropout rates, in order."""
    rng = np.random.default_rng(seed)
    layers, width = [], 784
    for item in spec:
        if item == "bn":
            layers.append(BatchNorm1d(width, eps=1e-3, momentum=0.01))
        elif isinstance(item, float):
            layers.append(Dropout(item, rng=rng))
        else:
            layers += [Dense(width, item, rng=rng), ReLU()]
            width = item
    return Sequential(*layers, Dense(width, 10, rng=rng)).astype(np.float32)


def main(argv=None) -> None:
    args = mc.parser(__doc__, EPOCHS).parse_args(argv)
    epochs, seeds = mc.settings(args, EPOCHS)
    data = mc.load_data(args)
    runs = []
    for variant, (spec, opt, _) in VARIANTS.items():
        for seed in seeds:
            net = model(spec, seed)
            result = mc.train(net, OPTIMIZERS[opt](net.parameters()), data, epochs=epochs,
                              batch_size=BATCH, seed=seed)
            runs.append({"variant": variant, "optimizer": opt, "seed": seed, "result": result})
            print(f"{variant} / {opt} / seed {seed}: {result['test_accuracy']:.4f}",
                  file=sys.stderr)
    epoch_table, summary = mc.tables(STUDY, runs)
    summary["source_test_accuracy"] = [VARIANTS[v][2] for v in summary["variant"]]
    folder = mc.write_results(args, STUDY, epoch_table, summary, data, epochs=epochs,
                              batch_size=BATCH, seeds=seeds,
                              variants={v: {"layers": s, "optimizer": LABELS[o]}
                                        for v, (s, o, _) in VARIANTS.items()}, dtype="float32")
    figure(folder, summary, epoch_table, len(seeds), args.protocol)


def figure(folder, summary, epoch_table, n_seeds: int, protocol: str = "split") -> None:
    """Test accuracy per variant (mean ± std, beside the source's run) and validation curves."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), width_ratios=(1, 1.1))
    how = ("48,000 training images, 12,000 for validation" if protocol == "split" else
           "the source's protocol: 60,000 training images, the test set as validation")
    fig.suptitle(f"MNIST pipeline variants, batch {BATCH}, mean ± std over {n_seeds} seed(s); "
                 f"{how}")
    y = np.arange(len(summary))[::-1]
    axes[0].errorbar(summary["test_accuracy_mean"], y, xerr=summary["test_accuracy_std"].fillna(0),
                     fmt="o", capsize=4, color="tab:blue", label="minidl (mean ± std)")
    axes[0].scatter(summary["source_test_accuracy"], y, color="tab:red", marker="D", zorder=3,
                    label="source (one Keras run)")
    axes[0].set_yticks(y, [f"{v}\n{LABELS[o]}" for v, o in
                           zip(summary["variant"], summary["optimizer"], strict=True)],
                       fontsize=8)
    axes[0].set_xlabel("test accuracy")
    axes[0].set_ylabel("variant")
    axes[0].set_title("test accuracy after the last epoch")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="lower center")
    mc.curves(axes[1], epoch_table, "val_accuracy", "validation accuracy per epoch")
    name = "mnist_pipeline.png" if protocol == "split" else "mnist_pipeline_source_protocol.png"
    mc.save_figure(fig, folder, name)


def report_section(results_dir) -> str:
    s = mc.read_summary(results_dir, STUDY)
    rows = [[r.variant, LABELS[r.optimizer], mc.fmt(r.test_accuracy_mean, r.test_accuracy_std),
             f"{r.source_test_accuracy:.4f}",
             f"{r.test_accuracy_mean - r.source_test_accuracy:+.4f}", int(r.n_seeds),
             f"{r.epoch_time_mean:.1f}"] for r in s.itertuples()]
    return "\n".join([
        "## 12. `mnist_pipeline`: the source's five Keras variants", "",
        mc.markdown_table(["variant", "optimizer", "test accuracy (ours, mean ± std)",
                           "source (one run)", "difference", "seeds", "s/epoch"], rows), "",
        f"![pipeline variants](figures/{STUDY}/mnist_pipeline.png)", "",
    ])


if __name__ == "__main__":
    main()
