"""Study 4, features: TF-IDF against sentence embeddings, as the pair features.

The source compared TF-IDF (max_features=1024) with turkish-e5-large and a smaller multilingual
sentence model, with the same model and optimizers. Here: every feature set that exists on this
machine (e5-small, turkish-e5-large, MiniLM, TF-IDF), each as the sentence-pair features
[q | a | q*a | |q-a| | 1], trained on all kinds (``--inputs``, ``--kinds``: others); the
TwoLayerMLP with GD, SGD and Adam, 100 epochs, 5 seeds. (``--features`` does not apply: this
study compares them all.)
"""

from __future__ import annotations

import minidl as md
from experiments import common, plots
from experiments.qa.embedders import FEATURE_NAMES, ModelUnavailableError
from experiments.settings import EPOCHS, HIDDEN, MAIN_INPUTS, MAIN_TRAINED_ON, OPTIMIZERS, THREE

STUDY = "features"


def train(data: common.QAData, optimizer: str, seed: int, epochs: int) -> dict:
    """The TwoLayerMLP of `optimizers`, on one feature set."""
    setting = OPTIMIZERS[optimizer]
    model = md.RecursiveMLP([data.dim, HIDDEN, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True), setting.build(model.parameters()),
                     data.X, data.y, epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], verbose=0)
    return common.result(history, model, data)


def feature_sets(args) -> tuple[dict, dict, object]:
    """``{name: qa_variants}`` of every feature set this machine has, ``{name: why not}`` of
    the others, and the first one's features (for config.json's data hash)."""
    sets, skipped, first = {}, {}, None
    for name in (n for n in FEATURE_NAMES if n != "study"):  # study: one of the others
        try:
            features = common.load_features(name, args.data)
        except ModelUnavailableError as exc:
            skipped[name] = str(exc)
            continue
        first = first or features
        sets[name] = common.qa_variants(args, features, inputs=(MAIN_INPUTS,),
                                        trained_on=(MAIN_TRAINED_ON,))
    return sets, skipped, first


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, EPOCHS)
    sets, skipped, features = feature_sets(args)
    tasks = [({"variant": name, **ids}, kwargs) for name, variants in sets.items()
             for ids, kwargs in common.grid(variants, THREE, seeds, epochs=epochs)]
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [ids for ids, _ in tasks], results)
    columns = {f"{name} {inputs}": data.dim for name, variants in sets.items()
               for (inputs, _), data in variants.items()}
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=seeds, skipped=skipped, columns=columns,
                                  features_name="all")
    inputs, on = common.headline_variant(summary)
    fig, axes = plots.figure(1, 1, f"{STUDY}: TwoLayerMLP, {len(seeds)} seeds, per feature set",
                             size=(max(6.4, 1.6 * len(sets)), 4.4))
    plots.bars(axes[0, 0], common.headline_runs(summary, summary),
               f"{inputs} inputs, trained on {on}", group="variant")
    axes[0, 0].set_xlabel("feature set")
    plots.save_figure(fig, folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
