"""The README's main job, ``python -m experiments.demo``, runs and learns."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import demo
from experiments.qa.features import DATA
from minidl.datasets import load_qa


def test_demo_on_the_shipped_qa_features_runs_every_optimizer(capsys):
    results = demo.main(["--epochs", "2", "--seeds", "42", "7"])
    assert list(results) == ["gd", "sgd", "adam"]
    for runs in results.values():
        assert len(runs) == 2
        for history, test in runs:
            assert len(history) == 2
            assert set(test) == {"accuracy", "accuracy_fact", "accuracy_non_answer"}
            assert all(0.0 <= v <= 1.0 for v in test.values())
    (X, y), (X_val, _), (X_test, _), kinds = demo.qa_data()
    assert X.shape[1] == X_test.shape[1] == 769 and np.all(X[:, -1] == 1)
    assert len(X) + len(X_val) == len(load_qa(DATA / "train.csv"))
    assert set(np.unique(y)) == {-1.0, 1.0} and set(kinds) == {"fact", "non_answer"}
    out = capsys.readouterr().out
    assert "summary (qa, e5-small features, 2 epochs, seeds 42 7" in out
    assert "accuracy_non_answer" in out


def test_demo_learns_the_synthetic_problem():
    (history, test), = demo.main(["--data", "synthetic", "--optimizer", "adam",
                                  "--seeds", "0"])["adam"]
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert test == {"accuracy": test["accuracy"]} and test["accuracy"] > 0.7


def test_demo_refuses_bad_arguments(capsys, tmp_path):
    with pytest.raises(SystemExit):
        demo.main(["--data", str(tmp_path / "nowhere")])
    assert "not 'qa', 'synthetic' or a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main(["--epochs", "0"])
    with pytest.raises(SystemExit) as info:
        demo.main(["--data", str(tmp_path)])  # a folder without the splits
    assert info.value.code == 2 and "expected train.csv and test.csv" in capsys.readouterr().err
