"""Study 1, optimizers: GD vs SGD vs Adam on the TwoLayerMLP, y = tanh(tanh(X W1) W2).

The source's settings (``experiments.settings``): hidden 64, MSE with the half gradient, GD full
batch lr 0.01, SGD batch 32 lr 0.1, Adam batch 32 lr 0.001, 100 epochs, 5 seeds. It reported
test accuracy GD about 0.62, SGD about 0.80, Adam about 0.98. Here every run is repeated on the
source's inputs ``[q | a | 1]`` and on the pair features ``[q | a | q*a | |q-a| | 1]``, trained
on all kinds of wrong answer together (the source's setting) and on each kind alone, and scored
on the whole test split per kind. Beside it, what the data allows: ``experiments.qa.baselines``.
"""

from __future__ import annotations

import minidl as md
from experiments import common, files, plots
from experiments.qa import baselines
from experiments.settings import EPOCHS, HIDDEN, OPTIMIZERS, THREE

STUDY = "optimizers"


def train(data: common.QAData, optimizer: str, seed: int, epochs: int) -> dict:
    """One run of the source's TwoLayerMLP: ``tanh`` at both layers, no biases (the input's 1
    column is the bias), LeCun-normal weights, MSE with the half gradient."""
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
    tasks = common.grid(variants, THREE, seeds, epochs=epochs)
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [ids for ids, _ in tasks], results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=seeds, variants=list(variants))
    plots.save_figure(plots.by_kind(summary, f"{STUDY}: question/answer test accuracy, "
                                    f"TwoLayerMLP, {len(seeds)} seeds"), folder, f"{STUDY}.png")
    plots.save_figure(plots.headline_curves(per_epoch, summary, STUDY), folder,
                      f"{STUDY}_curves.png")
    baselines.frame(args.data, quick=args.quick).pipe(files.write_csv, folder / "baselines.csv")


if __name__ == "__main__":
    main()
