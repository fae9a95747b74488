"""Study 2, adaptive: AdaGrad and RMSProp beside GD, SGD and Adam, on the TwoLayerMLP.

The source's settings (``experiments.settings``): AdaGrad batch 32 lr 0.01 eps 1e-8; RMSProp
batch 32 lr 0.01 decay 0.9 eps 1e-8; the other three as in `optimizers`; 100 epochs, 5 seeds.
The source gave numbers for GD, SGD and Adam only. Inputs, kinds and scoring as in `optimizers`.
"""

from __future__ import annotations

import minidl as md
from experiments import common, plots
from experiments.settings import EPOCHS, FIVE, HIDDEN, OPTIMIZERS

STUDY = "adaptive"


def train(data: common.QAData, optimizer: str, seed: int, epochs: int) -> dict:
    """The TwoLayerMLP of `optimizers`, trained with one of the five optimizers."""
    setting = OPTIMIZERS[optimizer]
    model = md.RecursiveMLP([data.dim, HIDDEN, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True), setting.build(model.parameters()),
                     data.X, data.y, epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], verbose=0)
    return common.result(history, model, data)


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, EPOCHS)
    features = common.load_features(args.features, args.data)
    variants = common.qa_variants(args, features)
    tasks = common.grid(variants, FIVE, seeds, epochs=epochs)
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [ids for ids, _ in tasks], results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=seeds, variants=list(variants))
    plots.save_figure(plots.by_kind(summary, f"{STUDY}: test accuracy of the five "
                                    f"optimizers, {len(seeds)} seeds"), folder, f"{STUDY}.png")
    plots.save_figure(plots.headline_curves(per_epoch, summary, STUDY), folder,
                      f"{STUDY}_curves.png")


if __name__ == "__main__":
    main()
