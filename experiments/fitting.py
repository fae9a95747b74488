"""Study 7, fitting: overfitting and underfitting on purpose.

The source's settings. Overfitting: hidden 1024, only the first 50 training rows, 300 epochs,
GD lr 0.5, SGD lr 0.1, Adam lr 0.001; it reported training accuracy 1.0 with test near 0.8.
Underfitting: hidden 1, 10 epochs, lr 0.001 for GD and SGD, 0.0001 for Adam; accuracy near 0.5.
"""

from __future__ import annotations

from experiments import common

STUDY = "fitting"
OPTIMIZERS = ("gd", "sgd", "adam")
REGIMES = {  # hidden, epochs, training rows, learning rate per optimizer
    "overfit": ((1024,), 300, 50, {"gd": 0.5, "sgd": 0.1, "adam": 0.001}),
    "underfit": ((1,), 10, None, {"gd": 0.001, "sgd": 0.001, "adam": 0.0001}),
}
SOURCE = {("overfit", o): "train 1.0, test ≈ 0.8" for o in OPTIMIZERS} | {
    ("underfit", o): "≈ 0.5" for o in OPTIMIZERS}


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    features = common.load_features(args.features, args.data)
    runs = []
    for regime, (hidden, epochs, rows, lrs) in REGIMES.items():
        epochs, seeds = common.settings(args, epochs)
        runs += [common.Run(regime, o, s, epochs, hidden=hidden, lr=lrs[o], train_rows=rows)
                 for o in OPTIMIZERS for s in seeds]
    folder, ep, _, _ = common.run_study(STUDY, args, runs, {"main": common.split(features)},
                                        features, seeds=seeds, regimes=REGIMES)
    fig, axes = common.figure(2, 2, f"{STUDY}: over- and underfitting — aşırı/eksik öğrenme")
    for row, regime in enumerate(REGIMES):
        part = ep[ep["variant"] == regime]
        for col, split in enumerate(("train", "val")):
            common.curves(axes[row, col], part, f"{split}_accuracy",
                          title=f"{regime}: {split} accuracy",
                          ylabel=f"{'training' if split == 'train' else 'validation'} accuracy")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    s = common.read_summary(results, STUDY).set_index(["variant", "optimizer"])
    text = {regime: "; ".join(
        f"{common.LABELS[o]} training {s.loc[(regime, o), 'train_accuracy_mean']:.3f}, test "
        f"{s.loc[(regime, o), 'test_accuracy_mean']:.3f}" for o in OPTIMIZERS)
        for regime in REGIMES}
    return f"""## 7. `fitting`: overfitting and underfitting

![fitting](figures/{STUDY}/{STUDY}.png)

{common.source_table(s.reset_index(), SOURCE)}

Overfitting (1024 hidden units, 50 training rows): {text['overfit']}. Underfitting (one hidden
unit, 10 epochs, tiny learning rates): {text['underfit']}. The training column is the accuracy
of the last epoch's training pass (in training mode, while the weights still move). The source
reported training accuracy 1.0 with test near 0.8 for the overfit model; the test column shows
how much of what 50 memorised rows teach carries over to new questions here.
"""
