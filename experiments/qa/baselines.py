"""The honest ceiling of the QA data: what trivial cues and simple models reach on the test split.

    python -m experiments.qa.baselines            # a Markdown table, overall and per kind

Each learned baseline is fitted on the training split and scored on the test split, one row at a
time (the models' task: is this answer correct?); chance is 0.5.

- surface cues, each alone with the best threshold and direction on train: answer length in
  characters, in words, answer/question length ratio, word overlap with the question, a
  negation or limiting word; and logistic regression on all of them;
- the zero-shot e5 rule: the answer of a pair whose multilingual-e5-small passage embedding is
  closer (cosine) to the question's query embedding is the right one (scored per pair, as the
  fraction of test rows it labels correctly; no training);
- the same cosine, one row at a time: +1 where it is above a threshold learned on the training
  rows (what a classifier that scores each row alone can take from it);
- answer only: logistic regression on the e5-small embedding of the answer alone. Any rule
  that reads only the answer scores exactly 0.5 on ``other_answer`` pairs, whose every answer
  text is once right (for its own question) and once wrong (for another);
- logistic regression on the pair features ``[q | a | 1]`` of TF-IDF, MiniLM (where its
  committed features match the data, or sentence-transformers is installed) and e5-small, and
  on e5-small's sentence-pair features ``[q | a | q*a | |q-a|]``.

``quick=True`` (the studies' ``--quick``) computes the surface, answer-only and zero-shot rows
only.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from minidl.datasets import QADataset, normalize_text

from .embedders import ModelUnavailableError
from .features import load_data, load_features

CUES = ("değil", "sadece", "yalnızca", "yalnız", "asla", "hiç", "hiçbir", "yok", "yoktur",
        "hayır", "olmaz", "her zaman", "daima", "tamamen", "kesinlikle", "mutlaka")
SURFACE = ("answer_length", "answer_words", "length_ratio", "overlap", "cue_word")


def words(text: str) -> list[str]:
    return re.findall(r"\w+", normalize_text(text))


def cue_flags(answer: str) -> list[float]:
    text = f" {' '.join(words(answer))} "
    return [float(f" {normalize_text(c)} " in text) for c in CUES]


def surface_features(ds: QADataset) -> dict[str, np.ndarray]:
    """Per-row cues a model could exploit without understanding anything."""
    a_len = np.array([len(a) for a in ds.answers], dtype=float)
    q_len = np.array([len(q) for q in ds.questions], dtype=float)
    overlap = []
    for q, a in zip(ds.questions, ds.answers, strict=True):
        aw, qw = words(a), set(words(q))
        overlap.append(sum(w in qw for w in aw) / max(len(aw), 1))
    flags = np.array([cue_flags(a) for a in ds.answers]).reshape(len(ds), len(CUES))
    return {
        "answer_length": a_len,
        "answer_words": np.array([len(words(a)) for a in ds.answers], dtype=float),
        "length_ratio": a_len / q_len,
        "overlap": np.array(overlap),
        "cue_word": flags.max(axis=1),
        "cue_flags": flags,
    }


def fit_threshold(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """The threshold and sign of ``sign * (x > t)`` with the best training accuracy."""
    values = np.unique(x)
    cuts = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])
    best = (-1.0, 0.0, 1)
    for t in cuts:
        pred = np.where(x > t, 1, -1)
        for sign in (1, -1):
            acc = float(np.mean(sign * pred == y))
            if acc > best[0]:
                best = (acc, float(t), sign)
    return best[1], best[2]


def surface_matrix(ds: QADataset) -> np.ndarray:
    f = surface_features(ds)
    return np.hstack([*(f[k][:, None] for k in SURFACE), f["cue_flags"]])


def logistic_predictions(X_train, y_train, X_test) -> np.ndarray:
    """+1/-1 predictions of a standardised logistic regression fitted on the training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return model.fit(X_train, y_train).predict(X_test)


def surface_predictions(train: QADataset, test: QADataset) -> dict[str, np.ndarray]:
    """Each surface baseline's +1/-1 predictions on the test rows."""
    f_train, f_test = surface_features(train), surface_features(test)
    out = {}
    for name in SURFACE:
        t, sign = fit_threshold(f_train[name], train.labels)
        out[name] = sign * np.where(f_test[name] > t, 1, -1)
    out["logistic_regression"] = logistic_predictions(surface_matrix(train), train.labels,
                                                      surface_matrix(test))
    return out


def cosines(X: np.ndarray, d: int) -> np.ndarray:
    """The cosine of each ``[q | a | ...]`` row's question and answer embeddings."""
    q, a = X[:, :d], X[:, d:2 * d]
    return np.sum(q * a, axis=1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(a, axis=1))


def cosine_threshold_predictions(features) -> np.ndarray:
    """Per row: +1 where the question-answer cosine is above the threshold (and direction)
    with the best training accuracy."""
    t, sign = fit_threshold(cosines(features.X_train, features.dim), features.y_train)
    return sign * np.where(cosines(features.X_test, features.dim) > t, 1, -1)


def cosine_rule_predictions(features) -> np.ndarray:
    """Zero-shot: within each test pair, +1 for the answer closer to the question (cosine)."""
    cos = cosines(features.X_test, features.dim)
    pred = np.empty(len(cos), dtype=int)
    questions = features.texts["test"][0]
    rows: dict[str, list[int]] = {}
    for i, question in enumerate(questions):
        rows.setdefault(question, []).append(i)
    for idx in rows.values():
        best = max(idx, key=lambda i: cos[i])
        for i in idx:
            pred[i] = 1 if i == best else -1
    return pred


def interactions(X: np.ndarray) -> np.ndarray:
    """``[q | a | 1]`` rows to the sentence-pair recipe ``[q | a | q*a | |q-a|]``."""
    d = (X.shape[1] - 1) // 2
    q, a = X[:, :d], X[:, d:2 * d]
    return np.hstack([q, a, q * a, np.abs(q - a)])


def scores(pred: np.ndarray, y: np.ndarray, kinds: np.ndarray | None) -> dict[str, float]:
    """Accuracy overall and per kind."""
    correct = np.asarray(pred).reshape(-1) == np.asarray(y).reshape(-1)
    out = {"overall": float(correct.mean())}
    if kinds is not None:
        for kind in sorted(set(kinds)):
            out[kind] = float(correct[kinds == kind].mean())
    return out


ANSWER_ONLY = "answer only: logistic regression on e5-small [a | 1]"
COSINE = "zero-shot e5-small cosine (per pair)"
COSINE_ROW = "e5-small cosine, per row, threshold learned on train"


def answer_only(X: np.ndarray) -> np.ndarray:
    """``[q | a | 1]`` rows to ``[a | 1]``: the answer's embedding alone."""
    d = (X.shape[1] - 1) // 2
    return X[:, d:]


def all_baselines(data=None, announce=print, quick: bool = False) -> dict[str, dict[str, float]]:
    """Every baseline's test accuracy, overall and per kind, by name (``quick``: the surface,
    answer-only and zero-shot ones only)."""
    train, test = load_data(data)
    table = {f"surface: {name}": scores(p, test.labels, test.kinds)
             for name, p in surface_predictions(train, test).items()}
    e5 = load_features("e5-small", data, announce=announce)
    pred = logistic_predictions(answer_only(e5.X_train), e5.y_train, answer_only(e5.X_test))
    table[ANSWER_ONLY] = scores(pred, e5.y_test, test.kinds)
    table[COSINE] = scores(cosine_rule_predictions(e5), test.labels, test.kinds)
    table[COSINE_ROW] = scores(cosine_threshold_predictions(e5), test.labels, test.kinds)
    if quick:
        return table
    for name in ("tfidf", "minilm", "e5-small"):
        try:
            f = e5 if name == "e5-small" else load_features(name, data, announce=announce)
        except ModelUnavailableError as exc:  # minilm needs torch unless its file is current
            announce(f"skipping logistic regression on {name}: {exc}")
            continue
        pred = logistic_predictions(f.X_train, f.y_train, f.X_test)
        table[f"logistic regression on {name} [q | a | 1]"] = scores(pred, f.y_test, test.kinds)
    pred = logistic_predictions(interactions(e5.X_train), e5.y_train, interactions(e5.X_test))
    table["logistic regression on e5-small [q | a | q*a | |q-a|]"] = scores(pred, e5.y_test,
                                                                           test.kinds)
    return table


def frame(data=None, quick: bool = False):
    """:func:`all_baselines` as a pandas DataFrame, one row per baseline (column
    ``baseline``), its test accuracy overall and per kind."""
    import pandas as pd

    found = all_baselines(data, announce=lambda line: None, quick=quick)
    return pd.DataFrame([{"baseline": k, **v} for k, v in found.items()])


def markdown(table: dict[str, dict[str, float]]) -> str:
    columns = list(next(iter(table.values())))
    lines = ["| baseline | " + " | ".join(columns) + " |",
             "| --- | " + " | ".join("---" for _ in columns) + " |"]
    lines += [f"| {name.replace('|', chr(92) + '|')} | "  # a | in a cell would split it
              + " | ".join(f"{row[c]:.3f}" for c in columns) + " |"
              for name, row in table.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.qa.baselines",
                                description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="a folder with train.csv and test.csv "
                                                "(default: the shipped data/qa)")
    args = p.parse_args(argv)
    print(markdown(all_baselines(args.data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
