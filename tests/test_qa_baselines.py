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

from experiments.qa.baselines import SURFACE, fit_threshold, scores, surface_predictions
from minidl.datasets import load_splits, normalize_question

from .test_qa_features import DATA

LIMIT = 0.65
KINDS = {"fact", "non_answer"}


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
