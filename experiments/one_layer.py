"""Study 5, one_layer: no hidden layer, y = tanh(X W), against the TwoLayerMLP.

The source's settings (``experiments.settings``): W of shape (2049, 1) (here (d, 1)), the same
loss, optimizers, learning rates, 100 epochs and 5 seeds as `optimizers`. Here on the pair
features, trained on all kinds (``--inputs``, ``--kinds``: others), scored per kind.
"""

from __future__ import annotations

import minidl as md
from experiments import common, plots
from experiments.settings import (
    EPOCHS,
    HIDDEN,
    MAIN_INPUTS,
    MAIN_TRAINED_ON,
    ONE_LAYER,
    OPTIMIZERS,
    THREE,
)

STUDY = "one_layer"
MODELS = {"one_layer": ONE_LAYER, "two_layer": (HIDDEN,)}  # hidden widths


def train(data: common.QAData, optimizer: str, seed: int, epochs: int,
          hidden: tuple[int, ...]) -> dict:
    """``tanh`` MLP ``[d, *hidden, 1]`` (``()``: tanh(X W)), no biases, as in `optimizers`."""
    setting = OPTIMIZERS[optimizer]
    model = md.RecursiveMLP([data.dim, *hidden, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True), setting.build(model.parameters()),
                     data.X, data.y, epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], verbose=0)
    return common.result(history, model, data)


def figure(per_epoch, summary):
    """Training MSE of each model, and test accuracy per model and optimizer."""
    inputs, on = common.headline_variant(summary)
    fig, axes = plots.figure(1, 3, f"{STUDY}: tanh(XW) against the TwoLayerMLP, {inputs} "
                             f"inputs, trained on {on}")
    runs = common.headline_runs(per_epoch, summary)
    for ax, (model, group) in zip(axes[0], runs.groupby("variant", sort=False), strict=False):
        plots.curves(ax, group, "train_loss", title=f"{model}: training MSE",
                     ylabel="training MSE")
    plots.bars(axes[0, 2], common.headline_runs(summary, summary), "test accuracy")
    axes[0, 2].set_xlabel("model")
    return fig


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, EPOCHS)
    features = common.load_features(args.features, args.data)
    variants = common.qa_variants(args, features, inputs=(MAIN_INPUTS,),
                                  trained_on=(MAIN_TRAINED_ON,))
    tasks = [({"variant": name, **ids}, {**kwargs, "hidden": hidden})
             for name, hidden in MODELS.items()
             for ids, kwargs in common.grid(variants, THREE, seeds, epochs=epochs)]
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [ids for ids, _ in tasks], results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=seeds, models=MODELS,
                                  variants=list(variants), features_name=args.features)
    plots.save_figure(figure(per_epoch, summary), folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
