"""The shipped dataset: its shape, and that trivial cues do not give the labels away.

These tests read data/qa/{train,test,topics}.csv and fail (never skip) when they are missing.
Each baseline (experiments.qa.baselines) is fitted on the training split and scored on the test
split, one row at a time (the same task as the models: is this answer correct?). Chance is 0.5;
each must stay below 0.65, overall and on each kind of wrong answer separately, or a model's
accuracy would say more about the data than about the model.
"""

from __future__ import annotations

import numpy as np
import pytest

from experiments.qa.baselines import (
    SURFACE,
    answer_only,
    fit_threshold,
    logistic_predictions,
    scores,
    surface_predictions,
)
from experiments.qa.features import load_features
from minidl.datasets import load_splits, normalize_question

from .test_qa_features import DATA

LIMIT = 0.65
KINDS = {"fact", "non_answer", "other_answer"}


@pytest.fixture(scope="module")
def splits():
    return load_splits(DATA / "train.csv", DATA / "test.csv", strict=True,
                       topics=DATA / "topics.csv")


# ---------------------------------------------------------------------------- the dataset
def test_dataset_shape(splits):
    train, test = splits  # strict: no rejected line, no shared question, every kind listed
    for ds in (train, test):
        assert ds.rejected == []
        assert len(ds) == 2 * ds.n_questions
        by_question: dict[str, list[int]] = {}
        for q, y in zip(ds.questions, ds.labels, strict=True):
            by_question.setdefault(normalize_question(q), []).append(int(y))
        assert all(sorted(v) == [-1, 1] for v in by_question.values())
        assert set(ds.kinds) == KINDS
        for kind in KINDS:  # at least 150 questions of each kind in each split
            assert np.sum(ds.kinds == kind) >= 2 * 150, kind
    shared = ({normalize_question(q) for q in train.questions}
              & {normalize_question(q) for q in test.questions})
    assert shared == set()


# ---------------------------------------------------------------------------- the baselines
def test_threshold_learner():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert fit_threshold(x, np.array([1, 1, -1, -1])) == (2.5, -1)
    assert fit_threshold(x, np.array([-1, 1, 1, 1])) == (1.5, 1)


def test_scores_per_kind():
    kinds = np.array(["a", "a", "b", "b"])
    assert scores(np.array([1, -1, 1, 1]), np.array([1, 1, 1, -1]), kinds) == {
        "overall": 0.5, "a": 0.5, "b": 0.5}
    assert scores(np.array([1, 1]), np.array([1, 1]), None) == {"overall": 1.0}


@pytest.fixture(scope="module")
def surface(splits):
    train, test = splits
    return {name: scores(pred, test.labels, test.kinds)
            for name, pred in surface_predictions(train, test).items()}


@pytest.mark.parametrize("name", [*SURFACE, "logistic_regression"])
def test_surface_baselines_stay_near_chance_on_every_kind(surface, name):
    row = surface[name]
    assert set(row) == {"overall", *KINDS}
    for part, acc in row.items():
        assert acc < LIMIT, f"{name} reaches {acc:.3f} test accuracy ({part})"


# ---------------------------------------------------------------------------- other_answer
def test_every_other_answer_text_is_once_right_and_once_wrong(splits):
    for ds in splits:
        rows = [(a, int(y)) for a, y, k in zip(ds.answers, ds.labels, ds.kinds, strict=True)
                if k == "other_answer"]
        texts = {a for a, _ in rows}
        assert len(rows) == 2 * len(texts) >= 2 * 300
        assert sorted(rows) == sorted((a, y) for a in texts for y in (-1, 1))


def test_any_rule_reading_the_answer_alone_scores_exactly_half_on_other_answer(splits):
    _, test = splits
    other = test.kinds == "other_answer"
    lengths = np.array([len(a) for a in test.answers])  # a rule that reads the answer only
    for pred in (np.where(lengths > np.median(lengths), 1, -1),
                 np.array([1 if hash(a) % 2 else -1 for a in test.answers])):
        assert np.mean(pred[other] == test.labels[other]) == 0.5
    e5 = load_features("e5-small", announce=lambda line: None)  # the committed features
    pred = logistic_predictions(answer_only(e5.X_train), e5.y_train, answer_only(e5.X_test))
    assert scores(pred, e5.y_test, test.kinds)["other_answer"] == 0.5
