"""Study 3, train_size: test accuracy against the fraction of training questions used.

The source's settings (``experiments.settings``): fractions 0.1, 0.25, 0.5, 0.75 and 1.0 of the
training rows, 50 epochs, the TwoLayerMLP with GD, SGD and Adam at their study learning rates.
Here a fraction keeps that share of the training questions (with all their answers), drawn with
the run's seed; the inputs are the pair features, trained on all kinds (``--inputs``,
``--kinds``: others), and the test split is scored whole, per kind.
"""

from __future__ import annotations

import numpy as np

import minidl as md
from experiments import common, plots
from experiments.settings import (
    HIDDEN,
    MAIN_INPUTS,
    MAIN_TRAINED_ON,
    OPTIMIZERS,
    THREE,
    TRAIN_FRACTIONS,
    TRAIN_SIZE_EPOCHS,
)

STUDY = "train_size"


def subset(data: common.QAData, fraction: float, seed: int):
    """The training rows of ``fraction`` of the training question groups (a question, or the
    questions that share their answers), drawn with ``seed``."""
    rows = common.held_out(data.groups, np.ones(len(data.groups), dtype=bool), fraction, seed)
    return data.X[rows], data.y[rows]


def train(data: common.QAData, optimizer: str, seed: int, epochs: int, fraction: float) -> dict:
    """The TwoLayerMLP of `optimizers`, trained on a fraction of the training questions."""
    setting = OPTIMIZERS[optimizer]
    X, y = subset(data, fraction, seed)
    model = md.RecursiveMLP([data.dim, HIDDEN, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True), setting.build(model.parameters()), X, y,
                     epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], verbose=0)
    return common.result(history, model, data)


def figure(summary, epochs: int, seeds: list[int]):
    """Test accuracy overall and per kind, and the last epoch's training accuracy, against the
    fraction of training questions (mean ± std over seeds), for the headline inputs."""
    rows = common.headline_runs(summary, summary)
    columns = [c[:-len("_mean")] for c in rows if c.startswith("test_accuracy")
               and c.endswith("_mean")] + ["train_accuracy"]
    inputs, on = common.headline_variant(summary)
    fig, axes = plots.figure(1, len(columns), f"{STUDY}: TwoLayerMLP, {inputs} inputs, trained "
                             f"on {on}, {epochs} epochs, {len(seeds)} seeds, per fraction of "
                             "the training data", size=(4.6, 4.0))
    for ax, column in zip(axes[0], columns, strict=True):
        label = ("training accuracy (last epoch)" if column == "train_accuracy" else
                 "test accuracy" + column[len("test_accuracy"):].replace("_", ": ", 1))
        for opt, group in rows.groupby("optimizer", sort=False):
            ax.errorbar(group["variant"].astype(float), group[f"{column}_mean"],
                        yerr=group[f"{column}_std"].fillna(0), marker="o", capsize=3,
                        color=plots.COLORS[opt], label=plots.LABELS[opt])
        ax.axhline(0.5, ls="--", color="grey", lw=1, label="chance (0.5)")
        ax.set(xlabel="fraction of training questions", ylabel=label, ylim=(0, 1.05),
               title=label)
        ax.legend(fontsize="small")
    return fig


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, TRAIN_SIZE_EPOCHS)
    features = common.load_features(args.features, args.data)
    variants = common.qa_variants(args, features, inputs=(MAIN_INPUTS,),
                                  trained_on=(MAIN_TRAINED_ON,))
    tasks = [({"variant": f"{f:g}", **ids}, {**kwargs, "fraction": f}) for f in TRAIN_FRACTIONS
             for ids, kwargs in common.grid(variants, THREE, seeds, epochs=epochs)]
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [ids for ids, _ in tasks], results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=seeds, fractions=TRAIN_FRACTIONS,
                                  variants=list(variants), features_name=args.features)
    plots.save_figure(figure(summary, epochs, seeds), folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
