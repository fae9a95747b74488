"""Study 7, fitting: overfitting and underfitting on purpose.

The source's settings (``experiments.settings``). Overfitting: hidden 1024, only the first 50
training rows, 300 epochs, GD lr 0.5, SGD lr 0.1, Adam lr 0.001; it reported training accuracy
1.0 with test near 0.8. Underfitting: hidden 1, 10 epochs, lr 0.001 for GD and SGD, 0.0001 for
Adam; accuracy near 0.5. Here on the pair features, trained on all kinds (``--inputs``,
``--kinds``: others), scored per kind.
"""

from __future__ import annotations

import minidl as md
from experiments import common, plots
from experiments.settings import FITTING, MAIN_INPUTS, MAIN_TRAINED_ON, OPTIMIZERS, THREE

STUDY = "fitting"


def train(data: common.QAData, optimizer: str, seed: int, epochs: int, hidden: tuple[int, ...],
          lr: dict, rows: int | None) -> dict:
    """``tanh`` MLP ``[d, *hidden, 1]`` without biases on the first ``rows`` training rows
    (None: all), at the regime's learning rate ``lr[optimizer]``."""
    setting = OPTIMIZERS[optimizer]
    model = md.RecursiveMLP([data.dim, *hidden, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True),
                     setting.build(model.parameters(), lr=lr[optimizer]), data.X[:rows],
                     data.y[:rows], epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], verbose=0)
    return common.result(history, model, data)


def figure(per_epoch, summary):
    """Training and validation accuracy against epochs, one row per regime."""
    inputs, on = common.headline_variant(summary)
    fig, axes = plots.figure(2, 2, f"{STUDY}: over- and underfitting, {inputs} inputs, trained "
                             f"on {on}")
    runs = common.headline_runs(per_epoch, summary)
    for row, regime in enumerate(FITTING):
        part = runs[runs["variant"] == regime]
        for col, split in enumerate(("train", "val")):
            what = "training" if split == "train" else "validation"
            plots.curves(axes[row, col], part, f"{split}_accuracy",
                         title=f"{regime}: {what} accuracy", ylabel=f"{what} accuracy")
    return fig


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    features = common.load_features(args.features, args.data)
    variants = common.qa_variants(args, features, inputs=(MAIN_INPUTS,),
                                  trained_on=(MAIN_TRAINED_ON,))
    regimes = {k: {**s, "epochs": common.settings(args, s["epochs"])[0]}  # after --quick
               for k, s in FITTING.items()}
    seeds = common.settings(args, 0)[1]  # the epochs are per regime, above
    tasks = [({"variant": regime, **ids}, {**kwargs, "hidden": s["hidden"], "lr": s["lr"],
                                           "rows": s["rows"]})
             for regime, s in regimes.items()
             for ids, kwargs in common.grid(variants, THREE, seeds, epochs=s["epochs"])]
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [ids for ids, _ in tasks], results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  seeds=seeds, regimes=regimes, variants=list(variants),
                                  features_name=args.features)
    plots.save_figure(figure(per_epoch, summary), folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
