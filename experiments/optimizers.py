"""Study 1, optimizers: GD vs SGD vs Adam on the TwoLayerMLP, y = tanh(tanh(X W1) W2).

The source's settings: hidden 64, MSE (half gradient), GD full batch lr 0.01, SGD batch 32
lr 0.1, Adam batch 32 lr 0.001; 100 epochs; 5 seeds. It reported test accuracy GD about 0.62, SGD
about 0.80, Adam about 0.98. Beside it, what the data allows: ``experiments.qa.baselines``.
"""

from __future__ import annotations

import pandas as pd

from experiments import common, plots, report
from experiments.qa import baselines

STUDY = "optimizers"
OPTIMIZERS = ("gd", "sgd", "adam")
SOURCE = {("two_layer", "gd"): "≈ 0.62", ("two_layer", "sgd"): "≈ 0.80",
          ("two_layer", "adam"): "≈ 0.98"}


def main(argv=None, study=STUDY, optimizers=OPTIMIZERS, doc=__doc__):
    args = common.parser(doc).parse_args(argv)
    epochs, seeds = common.settings(args, 100)
    features = common.load_features(args.features, args.data)
    runs = common.grid({"two_layer": {}}, optimizers, seeds, epochs)
    folder, ep, _, _ = common.run_study(study, args, runs, {"main": common.split(features)},
                                        features, epochs=epochs, seeds=seeds)
    fig = plots.four_panels(ep, f"{study}: TwoLayerMLP, {len(seeds)} seeds — soru/cevap doğruluğu")
    plots.save_figure(fig, folder, f"{study}.png")
    if study == STUDY:
        baseline_table(args.data, args.quick).to_csv(folder / "baselines.csv", index=False)


def baseline_table(data, quick: bool) -> pd.DataFrame:
    """experiments.qa.baselines' test accuracies, overall and per kind, one row per baseline."""
    if quick:
        train, test = baselines.load_data(data)
        table = {f"surface: {name}": baselines.scores(p, test.labels, test.kinds)
                 for name, p in baselines.surface_predictions(train, test).items()}
        cos = baselines.cosine_rule_predictions(common.load_features("e5-small", data))
        table["zero-shot e5-small cosine (per pair)"] = baselines.scores(cos, test.labels,
                                                                        test.kinds)
    else:
        table = baselines.all_baselines(data, announce=lambda line: None)
    return pd.DataFrame([{"baseline": k, **v} for k, v in table.items()])


def headline(results):
    return report.headline(results, STUDY, "two_layer", "adam", "≈ 0.98")


def report_section(results) -> str:
    s = report.read_summary(results, STUDY)
    base = pd.read_csv(results / STUDY / "baselines.csv").set_index("baseline")
    adam = s[s["optimizer"] == "adam"].iloc[0]
    verdicts = "; ".join(
        f"{plots.LABELS[r.optimizer]} {r.test_accuracy_mean:.3f} "
        f"({report.chance_verdict(r.test_accuracy_mean, r.test_accuracy_std, r.n_test)})"
        for r in s.itertuples())
    surface = base[base.index.str.startswith("surface")]["overall"]
    cos = base.loc["zero-shot e5-small cosine (per pair)"]
    if "non_answer" in base.columns and "test_accuracy_non_answer" in s.columns:
        kinds = f"""
Per kind of pair: Adam scores {report.fmt(adam.test_accuracy_fact, adam.test_accuracy_fact_std)}
on the `fact` pairs (one fact swapped: telling them apart needs world knowledge the features
barely carry; the zero-shot cosine rule gets {cos.fact:.3f}) and
{report.fmt(adam.test_accuracy_non_answer, adam.test_accuracy_non_answer_std)} on the
`non_answer` pairs (a true statement that does not answer the question: the signal the embeddings
carry, which the zero-shot cosine rule turns into {cos.non_answer:.3f} without any training).
Our trained model reaches {adam.test_accuracy_non_answer:.3f} of that {cos.non_answer:.3f}: the
rule compares a question's two answers; the model scores each row alone and must learn it."""
    else:
        kinds = "\nThis data has no kinds of pairs, so there is no per-kind split."
    return f"""## 1. `optimizers`: GD, SGD and Adam

![optimizers](figures/{STUDY}/{STUDY}.png)

{report.source_table(s, SOURCE)}

Test accuracy after {int(adam.epoch_mean)} epochs: {verdicts}. The source reported about 0.98
for Adam; ours is {report.fmt(adam.test_accuracy_mean, adam.test_accuracy_std)}, with
{adam.train_accuracy_mean:.3f} training accuracy in the last epoch.{kinds}

**What the data allows** (the baselines of `python -m experiments.qa.baselines`, computed in this
run on the same test split; chance is 0.5):

{report.markdown_table(base.reset_index())}

**Why we do not reach 0.98.** On the source's kind of data (an LLM asked for one good and one
bad answer per question) the two answers differ on the surface, and answer length alone is a
strong cue. Ours were written so that no surface cue is left, and that is measured: the best
surface baseline scores {surface.max():.3f} (answer length
{base.loc['surface: answer_length', 'overall']:.3f}, word count
{base.loc['surface: answer_words', 'overall']:.3f}). What remains is fact recall and answer
relevance, which the sentence embeddings have to carry. The source's data was never published,
so the strength of its cue cannot be measured here, and 0.98 on its 50 test questions is a claim
we cannot check (a classmate's similar pipeline reported 0.55-0.56). Curves: validation
accuracy; the diamonds: the test split, scored once per run.
"""
