"""Study 3, train_size: test accuracy against the fraction of training questions used.

The source's settings: fractions 0.1, 0.25, 0.5, 0.75 and 1.0 of the training rows, 50 epochs,
the TwoLayerMLP with GD, SGD and Adam at their study learning rates. Here a fraction keeps that
share of the training questions (with all their answers), drawn with the run's seed.
"""

from __future__ import annotations

from experiments import common

STUDY = "train_size"
FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
OPTIMIZERS = ("gd", "sgd", "adam")


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 50)
    features = common.load_features(args.features, args.data)
    variants = {f"{f:g}": {"fraction": f} for f in FRACTIONS}
    runs = common.grid(variants, OPTIMIZERS, seeds, epochs)
    folder, _, summary, _ = common.run_study(STUDY, args, runs, {"main": common.split(features)},
                                             features, epochs=epochs, seeds=seeds,
                                             fractions=FRACTIONS)
    fig, axes = common.figure(1, 2, f"{STUDY}: TwoLayerMLP, {epochs} epochs, {len(seeds)} seeds"
                                    " — eğitim verisi miktarı")
    for ax, column, label in ((axes[0, 0], "test_accuracy", "test accuracy"),
                              (axes[0, 1], "train_accuracy", "training accuracy (last epoch)")):
        for opt, group in summary.groupby("optimizer", sort=False):
            x = group["variant"].astype(float)
            y = group[f"{column}_mean"]
            err = group.get(f"{column}_std")
            ax.errorbar(x, y, yerr=None if err is None else err.fillna(0), marker="o",
                        capsize=3, color=common.COLORS[opt], label=common.LABELS[opt])
        ax.axhline(0.5, ls="--", color="grey", lw=1, label="chance (0.5)")
        ax.set(xlabel="fraction of training questions", ylabel=label, ylim=(0, 1.05),
               title=f"{label} against training-set size")
        ax.legend(fontsize="small")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    s = common.read_summary(results, STUDY)
    full, tenth = (s[s["variant"].astype(float) == f] for f in (1.0, 0.1))
    change = "; ".join(
        f"{common.LABELS[o]} {a:.3f} → {b:.3f}" for o, a, b in
        zip(full["optimizer"], tenth["test_accuracy_mean"], full["test_accuracy_mean"],
            strict=True))
    return f"""## 3. `train_size`: how much data

![train_size](figures/{STUDY}/{STUDY}.png)

{common.source_table(s)}

Test accuracy from a tenth of the training questions to all of them: {change}. The source gave
no numbers for this study. More data helps a model only where there is something general to
learn: where the curves stay flat near 0.5, the features do not carry what the task needs, and
more rows of the same kind will not fix that.
"""
