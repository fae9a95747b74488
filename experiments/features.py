"""Study 4, features: TF-IDF against sentence embeddings, and pair features beyond the source.

The source compared TF-IDF (max_features=1024) with turkish-e5-large and a smaller multilingual
sentence model, with the same model and optimizers. Here: every feature set that exists on this
machine (TF-IDF, MiniLM, e5-small, turkish-e5-large), each embedding also as the classic
sentence-pair features [q, a, q*a, |q-a|, 1]; the TwoLayerMLP with GD, SGD and Adam, 100 epochs,
5 seeds. (``--features`` does not apply: this study compares them all.)
"""

from __future__ import annotations

import pandas as pd

from experiments import common

STUDY = "features"
OPTIMIZERS = ("gd", "sgd", "adam")


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 100)
    data, skipped, main_features = {}, {}, None
    for name in common.FEATURES:
        try:
            features = common.load_features(name, args.data)
        except (common.FeaturesUnavailable, FileNotFoundError, ImportError) as exc:
            skipped[name] = str(exc)
            continue
        main_features = main_features or features
        data[name] = common.split(features)
        if name != "tfidf":
            data[f"{name} pairs"] = common.split(features, transform=common.interaction)
    variants = {name: {"data": name} for name in data}
    runs = common.grid(variants, OPTIMIZERS, seeds, epochs)
    folder, _, summary, _ = common.run_study(
        STUDY, args, runs, data, main_features, epochs=epochs, seeds=seeds, skipped=skipped,
        columns={name: split.X.shape[1] for name, split in data.items()})
    fig, axes = common.figure(1, 1, f"{STUDY}: TwoLayerMLP, {len(seeds)} seeds — öznitelikler",
                              size=(max(6.0, 1.6 * len(data)), 4.2))
    common.bars(axes[0, 0], summary, "test accuracy per feature set", group="variant")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    s = common.read_summary(results, STUDY)
    config = pd.read_json(results / STUDY / "config.json", typ="series")
    skipped = config["settings"].get("skipped", {})
    columns = config["settings"].get("columns", {})
    best = s.loc[s["test_accuracy_mean"].idxmax()]
    missing = "".join(f"\n- `{k}` not run: {v}" for k, v in skipped.items())
    sizes = ", ".join(f"{k} {v}" for k, v in columns.items())
    return f"""## 4. `features`: TF-IDF, sentence embeddings, pair features

![features](figures/{STUDY}/{STUDY}.png)

{common.source_table(s)}

Input columns: {sizes}.{missing}

Best: {best.variant} with {common.LABELS[best.optimizer]},
{common.fmt(best.test_accuracy_mean, best.test_accuracy_std)}
({common.chance_verdict(best.test_accuracy_mean, best.test_accuracy_std, best.n_test)}).
"pairs" is [q, a, q*a, |q-a|, 1], the classic sentence-pair recipe, which lets even a linear
layer compare the answer with the question coordinate by coordinate. The source gave no numbers
for this comparison.
"""
