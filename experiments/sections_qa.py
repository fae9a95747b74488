"""The report's sections of the QA studies 3 to 10 (``optimizers`` and ``adaptive``, the
report's opening, are in :mod:`experiments.report`): the prose lives here, beside the report,
and reads each study's results folder.

:data:`SECTIONS` maps a study's name to ``(section, headline)``: ``section(results) -> str``, a
markdown section whose figures are ``figures/<study>/<file>.png``; ``headline(results) ->
dict`` (:func:`experiments.report.headline`), its row in the table of headline numbers, or
None. A comparison within the seeds' noise (:func:`experiments.report.separated`) gets one
line instead of a page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from experiments import report
from experiments.plots import LABELS

#: The columns that name a run set besides its ``variant`` (model, fraction, feature set, ...).
SETTING = ("inputs", "trained_on", "optimizer")


def n_test(s: pd.DataFrame):
    return s["n_test"].iloc[0] if "n_test" in s else None


def acc(row, n, kind: str = "") -> str:
    """A summary row's test accuracy (of ``kind``: its rows only), mean ± std over seeds."""
    column = f"test_accuracy_{kind}" if kind else "test_accuracy"
    return report.fmt(row[f"{column}_mean"], row[f"{column}_std"], n)


def where(row) -> str:
    """``pairs inputs, trained on all``: a summary row's training set."""
    return f"{row['inputs']} inputs, trained on {row['trained_on']}"


def name(row) -> str:
    return LABELS.get(row["optimizer"], row["optimizer"])


def per_training_set(rows, text) -> str:
    """``text(row)`` of every row, the rows of one training set after its name:
    ``pairs inputs, trained on all: GD ..., SGD ...; source inputs, ...``."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(where(row), []).append(f"{name(row)} {text(row)}")
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items())


def pairs_of(s: pd.DataFrame, a: str, b: str):
    """``(row of variant a, row of variant b)`` for every optimizer and training set."""
    keyed = s.set_index(["variant", *SETTING])
    for key in s[s["variant"] == a][list(SETTING)].itertuples(index=False):
        if (b, *key) in keyed.index:
            yield keyed.loc[(a, *key)].to_dict() | dict(zip(SETTING, key, strict=True)), \
                keyed.loc[(b, *key)].to_dict()


def compare(s: pd.DataFrame, a: str, b: str) -> tuple[str, bool]:
    """``pairs inputs, trained on all: GD 0.512 ± 0.010 vs 0.530 ± 0.012, ...`` (test accuracy
    of variant a vs b over seeds), and whether any pair differs beyond the seeds' noise."""
    n, found = n_test(s), list(pairs_of(s, a, b))
    text = per_training_set([ra | {"other": acc(rb, n)} for ra, rb in found],
                            lambda r: f"{acc(r, n)} vs {r['other']}")
    return text, any(report.separated(ra, rb) for ra, rb in found)


def within_noise(number: int, study: str, title: str, what: str, numbers: str) -> str:
    """The one-line section of a study whose comparison is within the seeds' noise."""
    return (f"## {number}. `{study}`: {title}\n\nWithin noise ([figure](figures/{study}/"
            f"{study}.png)): {what} differ by less than two standard errors over seeds "
            f"(test accuracy, {numbers}).\n\n{report.caption(study)}")


# ---------------------------------------------------------------------------- 3. train_size
def train_size_headline(results) -> dict:
    return report.headline(results, "train_size", {"variant": "1", "optimizer": "adam"}, "none")


def train_size_section(results) -> str:
    s = report.read_summary(results, "train_size")
    fractions = sorted(s["variant"].astype(float).unique())
    low, high = f"{fractions[0]:g}", f"{fractions[-1]:g}"
    change, apart = compare(s, low, high)
    if not apart:
        return within_noise(3, "train_size", "how much data",
                            f"fractions {low} and {high} of the training questions", change)
    return f"""## 3. `train_size`: how much data

{report.image("train_size")}

{report.source_table(s)}

Test accuracy from {low} of the training questions to all of them: {change}. The source gave no
numbers for this study. More data helps a model only where there is something general to
learn: where the curves stay flat near 0.5, the features do not carry what the task needs, and
more rows of the same kind will not fix that.
"""


# ---------------------------------------------------------------------------- 4. features
def features_headline(results) -> dict:
    return report.headline(results, "features", {"optimizer": "adam"}, "none")


def features_section(results) -> str:
    s = report.read_summary(results, "features")
    settings = json.loads((Path(results) / "features" / "config.json").read_text())["settings"]
    adam = s[s["optimizer"] == "adam"] if "adam" in set(s["optimizer"]) else s
    n, best = n_test(s), adam.loc[adam["val_accuracy_mean"].idxmax()]  # the sets compared by
    # the optimizer that learns most here: GD stays at chance on every one of them
    missing = "".join(f"\n- `{k}` not run: {v}" for k, v in settings.get("skipped", {}).items())
    sizes = ", ".join(f"{k} {v}" for k, v in settings.get("columns", {}).items())
    kinds = "".join(f", {k} {acc(best, n, k)}" for k in report.kinds(s))
    others = s[(s["variant"] != best["variant"]) & (s["optimizer"] == best["optimizer"])
               & (s["inputs"] == best["inputs"]) & (s["trained_on"] == best["trained_on"])]
    line = (f"the best on validation, {best['variant']} ({where(best)}, {name(best)}: "
            f"{acc(best, n)}{kinds}), and "
            + ", ".join(f"{r['variant']} {acc(r, n)}" for _, r in others.iterrows()))
    same = adam[(adam["inputs"] == best["inputs"]) & (adam["trained_on"] == best["trained_on"])]
    verdicts = ", ".join(f"{r['variant']} " + report.chance_verdict(
        r["test_accuracy_mean"], r["test_accuracy_std"], n) for _, r in same.iterrows())
    if len(others) and not any(report.separated(best, r) for _, r in others.iterrows()):
        return within_noise(4, "features", "TF-IDF, sentence embeddings, pair features",
                            "the feature sets", line) + missing
    return f"""## 4. `features`: TF-IDF, sentence embeddings, pair features

{report.image("features")}

{report.source_table(s)}

Input columns: {sizes}.{missing}

Test accuracy of {line}. Each feature set's {name(best)} against chance: {verdicts}. The pair
features [q | a | q*a | |q-a| | 1] let even a linear layer compare the answer with the question
coordinate by coordinate. The source gave no numbers for this comparison.
"""


# ---------------------------------------------------------------------------- 5, 6. models
def one_layer_headline(results) -> dict:
    return report.headline(results, "one_layer", {"variant": "one_layer", "optimizer": "adam"},
                           "none")


def one_layer_section(results) -> str:
    s = report.read_summary(results, "one_layer")
    lines, apart = compare(s, "one_layer", "two_layer")
    if not apart:
        return within_noise(5, "one_layer", "no hidden layer",
                            "one layer, tanh(X W), and the TwoLayerMLP", lines)
    return f"""## 5. `one_layer`: no hidden layer

{report.image("one_layer")}

{report.source_table(s)}

Test accuracy, one layer vs two: {lines}. The source gave no number for the one-layer model.
A hidden layer adds capacity to fit the training rows; it cannot add information the features
do not hold.
"""


def deep_headline(results) -> dict:
    return report.headline(results, "deep", {"variant": "deep", "optimizer": "adam"}, "none")


def deep_section(results) -> str:
    s = report.read_summary(results, "deep")
    lines, apart = compare(s, "deep", "two_layer")
    n = n_test(s)
    if not apart:
        return within_noise(6, "deep", "four layers", "the four-layer model and the "
                            "TwoLayerMLP", lines)
    train = per_training_set([r for _, r in s[s["variant"] == "deep"].iterrows()],
                             lambda r: report.fmt(r["train_accuracy_mean"], n_test=n))
    return f"""## 6. `deep`: four layers

{report.image("deep")}

{report.source_table(s)}

Test accuracy, deep vs two-layer: {lines}. The deep model's training accuracy (last epoch):
{train}. The source gave no number for the deep model.
"""


# ---------------------------------------------------------------------------- 7. fitting
def fitting_source(s: pd.DataFrame) -> dict:
    """The source's numbers by the rows' ids (``report.IDS``)."""
    said = {"overfit": "train 1.0, test ≈ 0.8", "underfit": "≈ 0.5"}
    ids = [c for c in report.IDS if c in s.columns]
    return {tuple(r[c] for c in ids): said.get(r["variant"], "") for _, r in s.iterrows()}


def fitting_headline(results) -> dict:
    s = report.read_summary(results, "fitting")
    return report.headline(results, "fitting", {"variant": "overfit", "optimizer": "adam"},
                           fitting_source(s))


def fitting_section(results) -> str:
    s = report.read_summary(results, "fitting")
    regimes = json.loads((Path(results) / "fitting" / "config.json").read_text())["settings"][
        "regimes"]  # as run: --quick and --epochs change the epochs
    n, over, under = n_test(s), regimes["overfit"], regimes["underfit"]
    text = {regime: per_training_set(
        [r for _, r in s[s["variant"] == regime].iterrows()],
        lambda r: f"training {report.fmt(r['train_accuracy_mean'], n_test=n)}, test {acc(r, n)}")
        for regime in ("overfit", "underfit")}
    return f"""## 7. `fitting`: overfitting and underfitting

{report.image("fitting")}

{report.source_table(s, fitting_source(s))}

Overfitting ({over['hidden'][0]} hidden units, the first {over['rows']} training rows in file
order, as the source took them: here `fact` pairs only, whatever the training set says,
{over['epochs']} epochs): {text['overfit']}. Underfitting ({under['hidden'][0]} hidden unit,
{under['epochs']} epochs, learning rates {min(under['lr'].values()):g} to
{max(under['lr'].values()):g}): {text['underfit']}. The training column is the accuracy
of the last epoch's training pass (in training mode, while the weights still move). The source
reported training accuracy 1.0 with test near 0.8 for the overfit model; the test column shows
how much of what {over['rows']} memorised rows teach carries over to new questions here.
"""


# ---------------------------------------------------------------------------- 8. hyperparams
def hyperparams_headline(results) -> dict:
    return report.headline(results, "hyperparams",
                           source="lr 0.01 / 0.001, hidden 32 / 64 best")


def hyperparams_section(results) -> str:
    run = json.loads((Path(results) / "hyperparams" / "config.json").read_text())["settings"]
    best = pd.read_csv(Path(results) / "hyperparams" / "strategies.csv")
    best.insert(best.columns.get_loc("strategy") + 1, "best on validation",
                [f"hidden {h}, lr {lr:.2g}" for h, lr in
                 zip(best.pop("hidden"), best.pop("lr"), strict=True)])
    return f"""## 8. `hyperparams`: grid, random search, Bayesian optimisation, pruning

{report.image("hyperparams")}

{report.markdown_table(best.rename(columns=lambda c: c.replace("_", " ")))}

The source found lr 0.01 / 0.001 with 32 / 64 hidden units best on its grid. Each strategy had
the same budget of trials, one seed ({run['seeds'][0]}), on {run['inputs']} inputs trained on
{run['trained_on']}; the searches asked {run['batch']} at a time, each batch once the one
before was told, and ran them in parallel. "Train seconds to best" adds up the training time of
a strategy's trials until its best one. With {run['n_val']} validation rows, validation
accuracy moves in steps of {1 / run['n_val']:.4f} and many configurations tie: any strategy's
"best" is partly luck, and its test accuracy is the number.
"""


# ---------------------------------------------------------------------------- 9. trajectories
def trajectories_headline(results) -> dict:
    return report.headline(results, "trajectories", {"optimizer": "adam"}, "none")


def trajectories_section(results) -> str:
    s = report.read_summary(results, "trajectories")
    d = pd.read_csv(Path(results) / "trajectories" / "distances.csv").groupby(
        ["inputs", "trained_on", "optimizer"], sort=False)[
        ["distance_start_to_end", "path_length"]].mean()
    moves = "; ".join(f"{LABELS.get(o, o)} {r.distance_start_to_end:.2f} (path "
                      f"{r.path_length:.2f})" for (_, _, o), r in d.iterrows())
    return f"""## 9. `trajectories`: where the weights go

{report.image("trajectories")}

{report.source_table(s)}

Distance in weight space from the start to the end of training, mean over seeds (and the length
of the path travelled): {moves}. Runs with the same seed start from the same weights, so each
seed has one star, its optimizers' paths leaving from it. t-SNE places each path among its
neighbours: it shows which runs stay close to each other and how far each wanders locally, but
distances between far-apart clusters, and the size of a cluster, mean nothing; the PCA panels
keep those proportions (on their two directions only), one panel per optimizer on one basis
fitted on all the paths, so directions compare across panels but each has its own scale. The
source gave no numbers for this study.
"""


# ---------------------------------------------------------------------------- 10. quadratic
def quadratic_headline(results) -> dict:
    s = report.read_summary(results, "quadratic").set_index("optimizer").loc["sgd"]
    return {"study": "quadratic",
            "what": "SGD lr 0.1: distance to the minimum, last iterate / mean",
            "overall": f"{s.last_distance_mean:.3f} / {s.mean_distance_mean:.3f}",
            "source": "0.423 / 0.127 (one run)"}


def quadratic_section(results) -> str:
    s = report.read_summary(results, "quadratic")
    ep = pd.read_csv(Path(results) / "quadratic" / "epochs.csv")
    sgd = ep[(ep["optimizer"] == "sgd") & (ep["seed"] == ep["seed"].iloc[0])].iloc[-1]
    closer = "; ".join(f"{r.optimizer}: the mean is " + ("closer" if r.mean_distance_mean <
                       r.last_distance_mean else "farther") for r in s.itertuples())
    table = s[["optimizer", "n_seeds", *(f"{c}_distance_{m}" for c in ("last", "mean")
                                          for m in ("mean", "std"))]]
    return f"""## 10. `quadratic`: noisy SGD on x₁² + 2x₂²

{report.image("quadratic")}

{report.markdown_table(table)}

Distance to the minimum after {int(sgd.epoch)} steps, over seeds. SGD, seed {int(sgd.seed)}: last
x = [{sgd.x1:.4f}, {sgd.x2:.4f}], mean = [{sgd.mean_x1:.4f}, {sgd.mean_x2:.4f}]; the source's: last
[-0.2692, 0.3260], mean [-0.1192, 0.0452] (norms 0.423, 0.127; its start, noise, steps unrecorded:
only distances over seeds compare). A constant step leaves noisy SGD jittering in a ball around
the minimum, growing with lr and noise; averaging the iterates damps it. Over seeds: {closer}.
"""


SECTIONS: dict = {
    "train_size": (train_size_section, train_size_headline),
    "features": (features_section, features_headline),
    "one_layer": (one_layer_section, one_layer_headline),
    "deep": (deep_section, deep_headline),
    "fitting": (fitting_section, fitting_headline),
    "hyperparams": (hyperparams_section, hyperparams_headline),
    "trajectories": (trajectories_section, trajectories_headline),
    "quadratic": (quadratic_section, quadratic_headline),
}
