"""Study 6, deep: RecursiveMLP [d, 128, 64, 32, 1], tanh at every layer, against the TwoLayerMLP.

The source's settings: sizes [2049, 128, 64, 32, 1] (here the input has d columns), 100 epochs,
5 seeds, the study's optimizers and learning rates.
"""

from __future__ import annotations

from experiments import common

STUDY = "deep"
OPTIMIZERS = ("gd", "sgd", "adam")
VARIANTS = {"two_layer": {"hidden": (64,)}, "deep": {"hidden": (128, 64, 32)}}


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 100)
    features = common.load_features(args.features, args.data)
    runs = common.grid(VARIANTS, OPTIMIZERS, seeds, epochs)
    folder, ep, summary, _ = common.run_study(
        STUDY, args, runs, {"main": common.split(features)}, features, epochs=epochs,
        seeds=seeds, variants=VARIANTS)
    fig, axes = common.figure(1, 3, f"{STUDY}: [d, 128, 64, 32, 1] against [d, 64, 1] — derin ağ")
    deep = ep[ep["variant"] == "deep"]
    common.curves(axes[0, 0], deep, "train_loss", title="deep: training MSE",
                  ylabel="training MSE")
    common.curves(axes[0, 1], deep, "val_accuracy", title="deep: validation accuracy",
                  ylabel="validation accuracy")
    common.bars(axes[0, 2], summary, "test accuracy")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    s = common.read_summary(results, STUDY).set_index(["variant", "optimizer"])
    lines = "; ".join(
        f"{common.LABELS[o]} {s.loc[('deep', o), 'test_accuracy_mean']:.3f} (training "
        f"{s.loc[('deep', o), 'train_accuracy_mean']:.3f}) vs "
        f"{s.loc[('two_layer', o), 'test_accuracy_mean']:.3f}" for o in OPTIMIZERS)
    return f"""## 6. `deep`: four layers

![deep](figures/{STUDY}/{STUDY}.png)

{common.source_table(s.reset_index())}

Test accuracy, deep vs two-layer: {lines}. The source gave no number for the deep model.
"""
