"""scikit-learn's own estimator checks on minidl.sklearn's estimators.

The checks that are expected to fail (none at present) are listed with their reason in
``minidl.sklearn.EXPECTED_FAILED_CHECKS`` and handed to ``parametrize_with_checks``, so a check
listed there that starts passing, or a check not listed that fails, is reported. The estimators
are small (8 hidden units, 40 epochs) to keep the checks quick; they still pass the checks
that demand a reasonable score.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks

from minidl.sklearn import EXPECTED_FAILED_CHECKS, MLPClassifier, MLPRegressor

ESTIMATORS = [
    MLPClassifier(hidden_layer_sizes=(8,), epochs=40, learning_rate=0.01, random_state=0),
    MLPRegressor(hidden_layer_sizes=(8,), epochs=40, learning_rate=0.01, random_state=0),
]


@parametrize_with_checks(ESTIMATORS,
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
