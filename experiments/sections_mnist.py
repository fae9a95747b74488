"""The report's sections of the MNIST studies: the prose lives here, beside the report, and
reads each study's results folder.

:data:`SECTIONS` maps a study's name to ``(section, headline)``: ``section(results) -> str``, a
markdown section whose figures are ``figures/<study>/<file>.png``; ``headline(results) ->
dict``, its row in the table of headline numbers, or None (the MNIST studies have none: the
table is the question/answer study's, per kind of pair).

Accuracies are rounded by :func:`experiments.report.decimals` of the test images (4 decimals for
MNIST's 10,000).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from experiments.mnist_common import label
from experiments.report import decimals, fmt, markdown_table, read_summary, separated
from experiments.settings import MNIST_PIPELINE_OPTIMIZERS

#: The source's one run of ``mnist_scratch`` (source settings): test accuracy and macro scores,
#: and its three lowest per-digit recalls.
SCRATCH_SOURCE = {"accuracy": 0.9350, "precision": 0.9346, "recall": 0.9340, "f1": 0.9340}
SCRATCH_WEAKEST = {5: 0.8767, 9: 0.9058, 8: 0.9076}
#: The Keras examples' test accuracies: the CNN and the MLP.
KERAS_CNN, KERAS_MLP = 0.9925, 0.9840


def n_test(results, study: str, summary: pd.DataFrame) -> int:
    """The study's test images: the summary's ``n_test``, else (results written before it was a
    column) config.json's sizes."""
    if "n_test" in summary:
        return int(summary["n_test"].iloc[0])
    return json.loads((Path(results) / study / "config.json").read_text())["sizes"]["test"]


def table(head: list[str], rows: list[list]) -> str:
    return markdown_table(pd.DataFrame(rows, columns=head))


def scratch_section(results) -> str:
    study = "mnist_scratch"
    s = read_summary(results, study)
    n = n_test(results, study, s)
    per_class = pd.read_csv(Path(results) / study / "per_class.csv", dtype={"variant": str})
    rows = [[r.variant, fmt(r.test_accuracy_mean, r.test_accuracy_std, n),
             *(fmt(r[f"macro_{k}_mean"], n_test=n) for k in ("precision", "recall", "f1")),
             int(r.n_seeds), f"{r.epoch_time_mean:.1f}"] for _, r in s.iterrows()]
    rows.append(["source (one run)", *(fmt(SCRATCH_SOURCE[k], n_test=n) for k in
                                       ("accuracy", "precision", "recall", "f1")), 1, ""])
    recall = per_class.groupby(["variant", "digit"])["recall"].mean().unstack("variant")
    weakest = recall["source"].sort_values().index[:3] if "source" in recall else []
    weak_rows = [[int(d), *(fmt(recall.loc[d, v], n_test=n) for v in recall.columns),
                  fmt(SCRATCH_WEAKEST[d], n_test=n) if d in SCRATCH_WEAKEST else "-"]
                 for d in sorted(set(weakest) | set(SCRATCH_WEAKEST))]
    return "\n".join([
        f"## 11. `{study}`: MNIST from scratch, the source's settings, then tuned", "",
        table(["variant", "test accuracy (mean ± std)", "macro precision", "macro recall",
               "macro F1", "seeds", "s/epoch"], rows), "",
        "Recall of the weakest digits (mean over seeds) beside the source's:", "",
        table(["digit", *(f"recall, {v}" for v in recall.columns), "source"], weak_rows), "",
        f"![confusion matrices](figures/{study}/mnist_confusion.png)", "",
        f"![validation accuracy](figures/{study}/mnist_scratch_curves.png)", "",
    ])


def pipeline_section(results) -> str:
    study = "mnist_pipeline"
    s = read_summary(results, study)
    n = n_test(results, study, s)
    rows = [[r.variant, label(MNIST_PIPELINE_OPTIMIZERS[r.optimizer]),
             fmt(r.test_accuracy_mean, r.test_accuracy_std, n),
             fmt(r.source_test_accuracy, n_test=n),
             f"{r.test_accuracy_mean - r.source_test_accuracy:+.{decimals(n)}f}", int(r.n_seeds),
             f"{r.epoch_time_mean:.1f}"] for r in s.itertuples()]
    return "\n".join([
        f"## 12. `{study}`: the source's five Keras variants", "",
        table(["variant", "optimizer", "test accuracy (ours, mean ± std)", "source (one run)",
               "difference", "seeds", "s/epoch"], rows), "",
        f"![pipeline variants](figures/{study}/mnist_pipeline.png)", "",
    ])


def cnn_section(results) -> str:
    study = "mnist_cnn"
    s = read_summary(results, study)
    n = n_test(results, study, s)
    r = s.iloc[0]
    rows = [["CNN (conv32-conv64-pool-drop-128-drop-10), Adam",
             fmt(r.test_accuracy_mean, r.test_accuracy_std, n), fmt(KERAS_CNN, n_test=n),
             f"{r.test_accuracy_mean - KERAS_CNN:+.{decimals(n)}f}", int(r.n_seeds),
             f"{r.epoch_mean:.0f} (best {r.best_epoch_mean:.0f})", f"{r.epoch_time_mean:.0f}"]]
    return "\n".join([
        f"## 13. `{study}`: the Keras CNN example", "",
        table(["model", "test accuracy (ours)", "Keras example", "difference", "seeds",
               "epochs run", "s/epoch"], rows), "",
        f"![CNN training curves](figures/{study}/mnist_cnn_curves.png)", "",
    ])


def improvements_section(results) -> str:
    study = "mnist_improvements"
    s = read_summary(results, study)
    n = n_test(results, study, s)
    d = decimals(n)
    gains = pd.read_csv(Path(results) / study / "gains.csv")
    rows = [[g.improvement, fmt(g.baseline, n_test=n), fmt(g.with_, g.with_std, n),
             f"{g.gain:+.{d}f}", int(g.n_seeds), f"{g.epochs:.1f}"]
            for g in gains.rename(columns={"with": "with_"}).itertuples()]
    times = [[r.variant, fmt(r.test_accuracy_mean, r.test_accuracy_std, n), int(r.n_seeds),
              f"{r.epoch_time_mean:.1f}"] for _, r in s.iterrows()]
    return "\n".join([
        f"## 14. `{study}`: what the source proposed, built", "",
        table(["improvement", "its baseline", "with it (mean ± std)", "gain", "seeds",
               "epochs run"], rows), "",
        noise_line(s), "",
        table(["run", "test accuracy", "seeds", "s/epoch"], times), "",
        f"The Keras MLP example's reference is {fmt(KERAS_MLP, n_test=n)}.", "",
        f"![improvements](figures/{study}/mnist_improvements.png)", "",
    ])


def keras_section(results) -> str:
    study = "mnist_keras"
    s = read_summary(results, study)
    n = n_test(results, study, s)
    config = json.loads((Path(results) / study / "config.json").read_text())
    models = config["settings"]["models"]
    source = config["argv"].get("protocol", "source") == "source"
    rows = [[r.variant, f"{models[r.variant]['class']} {models[r.variant]['lr']:g}, batch "
             f"{models[r.variant]['batch_size']}", int(r.epoch_mean),
             fmt(r.test_accuracy_mean, r.test_accuracy_std, n),
             fmt(r.keras_test_accuracy, n_test=n),
             f"{r.test_accuracy_mean - r.keras_test_accuracy:+.{decimals(n)}f}",
             "yes" if r.test_accuracy_mean >= r.keras_test_accuracy else "no", int(r.n_seeds),
             f"{r.epoch_time_mean:.1f}"] for r in s.itertuples()]
    how = ("all 60,000 training images, a fixed number of epochs, no early stopping; the test "
           "set is scored after each epoch for the curves, as the examples did, and never "
           "used to choose anything" if source else
           "48,000 training images, 12,000 held out and scored after each epoch; the test set "
           "once, at the end")
    return "\n".join([
        f"## 15. `{study}`: the Keras examples on their own protocol", "",
        f"Trained as Keras trained them: {how}.", "",
        table(["network", "optimizer", "epochs", "test accuracy (mean ± std)", "Keras",
               "difference", "met?", "seeds", "s/epoch"], rows), "",
        f"![Keras examples](figures/{study}/mnist_keras.png)", "",
    ])


def noise_line(s: pd.DataFrame) -> str:
    """Which improvements run on several seeds differ from the baseline beyond the seeds'
    noise (:func:`experiments.report.separated`)."""
    rows = s.set_index("variant")
    if "baseline" not in rows.index:
        return ""
    several = [v for v in rows.index if v != "baseline" and rows.loc[v, "n_seeds"] > 1]
    beyond = [v for v in several if separated(rows.loc["baseline"], rows.loc[v])]
    single = [v for v in rows.index if v != "baseline" and rows.loc[v, "n_seeds"] == 1]
    return (f"Against the baseline's {int(rows.loc['baseline', 'n_seeds'])} seeds, beyond the "
            f"seeds' noise: {', '.join(beyond) or 'none'}; within it: "
            f"{', '.join(v for v in several if v not in beyond) or 'none'}"
            + (f"; one seed, no spread to judge by: {', '.join(single)}" if single else "") + ".")


SECTIONS: dict = {
    "mnist_scratch": (scratch_section, None),
    "mnist_pipeline": (pipeline_section, None),
    "mnist_cnn": (cnn_section, None),
    "mnist_improvements": (improvements_section, None),
    "mnist_keras": (keras_section, None),
}
