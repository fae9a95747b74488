"""The README's main job, ``python -m experiments.demo``, runs and learns."""

from __future__ import annotations

import numpy as np

from experiments import demo


def test_demo_on_the_shipped_qa_features_runs_every_optimizer(capsys):
    results = demo.main(["--epochs", "2"])
    assert list(results) == ["gd", "sgd", "adam"]
    for history, test in results.values():
        assert len(history) == 2 and 0.0 <= test["accuracy"] <= 1.0
    (X, y), (X_val, _), (X_test, _) = demo.qa_data()
    assert X.shape[1] == X_test.shape[1] == 769 and np.all(X[:, -1] == 1)
    assert len(X) + len(X_val) == 398 and set(np.unique(y)) == {-1.0, 1.0}
    assert "summary (qa data" in capsys.readouterr().out


def test_demo_learns_the_synthetic_problem():
    history, test = demo.main(["--data", "synthetic", "--optimizer", "adam"])["adam"]
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert test["accuracy"] > 0.7
