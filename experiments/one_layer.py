"""Study 5, one_layer: no hidden layer, y = tanh(X W), against the TwoLayerMLP.

The source's settings: W of shape (2049, 1) (here (d, 1)), the same loss, optimizers, learning
rates, 100 epochs and 5 seeds as `optimizers`.
"""

from __future__ import annotations

from experiments import common

STUDY = "one_layer"
OPTIMIZERS = ("gd", "sgd", "adam")
VARIANTS = {"one_layer": {"hidden": ()}, "two_layer": {"hidden": (64,)}}


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 100)
    features = common.load_features(args.features, args.data)
    runs = common.grid(VARIANTS, OPTIMIZERS, seeds, epochs)
    folder, ep, summary, _ = common.run_study(
        STUDY, args, runs, {"main": common.split(features)}, features, epochs=epochs,
        seeds=seeds, variants=VARIANTS)
    fig, axes = common.figure(1, 3, f"{STUDY}: tanh(XW) against the TwoLayerMLP — tek katman")
    for ax, (variant, group) in zip(axes[0], ep.groupby("variant", sort=False), strict=False):
        common.curves(ax, group, "train_loss", title=f"{variant}: training MSE",
                      ylabel="training MSE")
    common.bars(axes[0, 2], summary, "test accuracy")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    s = common.read_summary(results, STUDY).set_index(["variant", "optimizer"])
    lines = "; ".join(
        f"{common.LABELS[o]} {s.loc[('one_layer', o), 'test_accuracy_mean']:.3f} vs "
        f"{s.loc[('two_layer', o), 'test_accuracy_mean']:.3f}" for o in OPTIMIZERS)
    return f"""## 5. `one_layer`: no hidden layer

![one_layer](figures/{STUDY}/{STUDY}.png)

{common.source_table(s.reset_index())}

Test accuracy, one layer vs two: {lines}. The source gave no number for the one-layer model.
A hidden layer adds capacity to fit the training rows; it cannot add information the features
do not hold.
"""
