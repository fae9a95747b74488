"""The shipped dataset: its shape, and that trivial cues do not give the labels away.

These tests read data/qa/train.csv and data/qa/test.csv and fail (never skip) when they are
missing. Each baseline is fitted on the training split and scored on the test split, one row at a
time (the same task as the models: is this answer correct?). Chance is 0.5; each must stay below
0.65, or a model's accuracy would say more about the data than about the model.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from minidl.datasets import load_splits, normalize_question, normalize_text

DATA = Path(__file__).resolve().parent.parent / "data" / "qa"
LIMIT = 0.65
CUES = ("değil", "sadece", "yalnızca", "yalnız", "asla", "hiç", "hiçbir", "yok", "yoktur",
        "hayır", "olmaz", "her zaman", "daima", "tamamen", "kesinlikle", "mutlaka")


@pytest.fixture(scope="module")
def splits():
    return load_splits(DATA / "train.csv", DATA / "test.csv", strict=True)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", normalize_text(text))


def cue_flags(answer: str) -> list[float]:
    text = f" {' '.join(words(answer))} "
    return [float(f" {normalize_text(c)} " in text) for c in CUES]


def features(ds) -> dict[str, np.ndarray]:
    """Per-row cues a model could exploit without understanding anything."""
    a_len = np.array([len(a) for a in ds.answers], dtype=float)
    q_len = np.array([len(q) for q in ds.questions], dtype=float)
    overlap = []
    for q, a in zip(ds.questions, ds.answers, strict=True):
        aw, qw = words(a), set(words(q))
        overlap.append(sum(w in qw for w in aw) / max(len(aw), 1))
    flags = np.array([cue_flags(a) for a in ds.answers])
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


def threshold_accuracy(name: str, train, test) -> float:
    x_train, x_test = features(train)[name], features(test)[name]
    t, sign = fit_threshold(x_train, train.labels)
    return float(np.mean(sign * np.where(x_test > t, 1, -1) == test.labels))


def logistic_accuracy(train, test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def matrix(ds):
        f = features(ds)
        cols = [f[k][:, None] for k in ("answer_length", "answer_words", "length_ratio",
                                         "overlap", "cue_word")]
        return np.hstack([*cols, f["cue_flags"]])

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(matrix(train), train.labels)
    return float(model.score(matrix(test), test.labels))


def baseline_accuracies(train, test) -> dict[str, float]:
    out = {name: threshold_accuracy(name, train, test)
           for name in ("answer_length", "answer_words", "length_ratio", "overlap", "cue_word")}
    out["logistic_regression"] = logistic_accuracy(train, test)
    return out


# ---------------------------------------------------------------------------- the dataset
def test_dataset_shape(splits):
    train, test = splits  # strict: no rejected line, no shared question
    for ds in (train, test):
        assert ds.rejected == []
        assert ds.n_questions >= 150
        assert len(ds) == 2 * ds.n_questions
        by_question: dict[str, list[int]] = {}
        for q, y in zip(ds.questions, ds.labels, strict=True):
            by_question.setdefault(normalize_question(q), []).append(int(y))
        assert all(sorted(v) == [-1, 1] for v in by_question.values())
    shared = ({normalize_question(q) for q in train.questions}
              & {normalize_question(q) for q in test.questions})
    assert shared == set()


# ---------------------------------------------------------------------------- the baselines
def test_threshold_learner():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert fit_threshold(x, np.array([1, 1, -1, -1])) == (2.5, -1)
    assert fit_threshold(x, np.array([-1, 1, 1, 1])) == (1.5, 1)


@pytest.mark.parametrize("name", ["answer_length", "answer_words", "length_ratio", "overlap",
                                  "cue_word"])
def test_single_cue_baselines_stay_near_chance(splits, name):
    acc = threshold_accuracy(name, *splits)
    assert acc < LIMIT, f"{name} alone reaches {acc:.3f} test accuracy"


def test_logistic_regression_on_all_cues_stays_near_chance(splits):
    acc = logistic_accuracy(*splits)
    assert acc < LIMIT, f"logistic regression on the trivial cues reaches {acc:.3f}"
