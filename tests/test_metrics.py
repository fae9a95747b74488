"""Metrics against scikit-learn on random data: accuracy, precision, recall, F1 (per class,
macro, weighted) and the confusion matrix, for +-1 scores, class scores and labels."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.errors import ShapeError
from minidl.metrics import (
    METRICS,
    accuracy,
    confusion_matrix,
    f1_score,
    get_metrics,
    precision,
    precision_recall_f1,
    recall,
)

try:
    import sklearn.metrics as sk
except ImportError:  # only the comparisons with scikit-learn need it
    sk = None
needs_sklearn = pytest.mark.skipif(sk is None, reason="scikit-learn is not installed")

# scikit-learn warns when one label covers everything; random small samples do that
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found")

sizes = st.integers(min_value=1, max_value=60)
n_classes = st.integers(min_value=2, max_value=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def assert_matches_sklearn(true_labels, pred_labels, y_true, y_pred, **kwargs):
    """Every metric of ours on (y_true, y_pred) equals scikit-learn's on the labels."""
    args = (true_labels, pred_labels)
    assert accuracy(y_true, y_pred, **kwargs) == sk.accuracy_score(*args)
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, **kwargs),
                                  sk.confusion_matrix(*args))
    assert_prf_matches(args, (y_true, y_pred), kwargs, {})


def assert_prf_matches(sk_args, our_args, our_kwargs, sk_kwargs):
    for average in (None, "macro", "weighted"):
        expected = sk.precision_recall_fscore_support(*sk_args, average=average,
                                                      zero_division=0, **sk_kwargs)[:3]
        for ours, theirs in zip((precision, recall, f1_score), expected, strict=True):
            np.testing.assert_allclose(
                ours(*our_args, average=average, **our_kwargs), theirs, rtol=1e-12, atol=1e-15,
                err_msg=f"{ours.__name__} average={average}",
            )


@needs_sklearn
@given(n=sizes, seed=seeds)
def test_plus_minus_one_scores_thresholded_at_zero(n, seed):
    """The QA study: tanh outputs, +1 if y_hat > 0 else -1, against +-1 targets."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice([-1.0, 1.0], size=(n, 1))
    scores = rng.uniform(-1, 1, size=(n, 1))
    scores[rng.random((n, 1)) < 0.1] = 0.0  # exactly 0 is a -1 prediction
    pred_labels = np.where(scores > 0, 1, -1).ravel()
    assert_matches_sklearn(y_true.ravel(), pred_labels, y_true, scores)


@needs_sklearn
@given(n=sizes, seed=seeds)
def test_probabilities_with_zero_one_targets(n, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, size=n)
    probs = rng.random(n)
    assert_matches_sklearn(y_true, (probs > 0.5).astype(int), y_true, probs, threshold=0.5)


@needs_sklearn
@given(n=sizes, c=n_classes, seed=seeds, one_hot=st.booleans())
def test_class_scores_by_argmax(n, c, seed, one_hot):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    scores = rng.standard_normal((n, c))
    y_true = np.eye(c)[labels] if one_hot else labels
    assert_matches_sklearn(labels, scores.argmax(axis=1), y_true, scores)


@needs_sklearn
@given(n=sizes, c=n_classes, seed=seeds)
def test_integer_labels_as_given(n, c, seed):
    rng = np.random.default_rng(seed)
    values = rng.choice(np.arange(-3, 10), size=c, replace=False)  # any label values
    y_true = rng.choice(values, size=n)
    y_pred = rng.choice(values, size=n)
    assert_matches_sklearn(y_true, y_pred, y_true, y_pred)


@needs_sklearn
@given(n=sizes, c=n_classes, seed=seeds, subset=st.booleans())
def test_explicit_labels(n, c, seed, subset):
    """labels= in any order, with classes that never occur, and (subset=True) leaving out
    classes that do occur: each listed class is still counted over all the samples."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, c, size=n)
    y_pred = rng.integers(0, c, size=n)
    labels = rng.permutation(c + 1)  # includes a class that never occurs, in any order
    if subset:  # any non-empty subset of 0..c+1: present classes left out, absent ones added
        labels = rng.permutation(c + 2)[: rng.integers(1, c + 3)]
    if np.isin(labels, y_true).any():  # otherwise scikit-learn refuses to build the matrix
        np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, labels=labels),
                                      sk.confusion_matrix(y_true, y_pred, labels=labels))
    assert_prf_matches((y_true, y_pred), (y_true, y_pred), {"labels": labels},
                       {"labels": labels})


def test_labels_subset_counts_samples_of_other_classes():
    """The reviewer's cases: a sample of an unlisted class still counts against a listed one."""
    # three class-0 samples predicted as 1 are false positives of class 1
    assert precision([0, 1, 0, 0], [1, 1, 1, 1], labels=[1], average=None).tolist() == [0.25]
    assert f1_score([0, 1, 0, 0], [1, 1, 1, 1], labels=[1]) == 0.4
    # a class-1 sample predicted as (unlisted) 0 is a false negative of class 1
    assert recall([1, 1], [0, 1], labels=[1], average=None).tolist() == [0.5]
    r = precision_recall_f1([0, 1, 2, 2], [1, 1, 0, 2], labels=[2, 1, 5])
    assert r["labels"].tolist() == [2, 1, 5]
    assert r["precision"].tolist() == [1.0, 0.5, 0.0]
    assert r["recall"].tolist() == [0.5, 1.0, 0.0]
    assert r["support"].tolist() == [2, 1, 0]


def test_precision_recall_f1_report():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    r = precision_recall_f1(y_true, y_pred)
    assert r["labels"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(r["precision"], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(r["recall"], [1 / 2, 1.0, 2 / 3])
    np.testing.assert_allclose(r["f1"], [1 / 2, 4 / 5, 4 / 5])
    assert r["support"].tolist() == [2, 2, 3]


def test_zero_division_gives_zero():
    y_true = np.array([1, 1, 1])
    y_pred = np.array([0, 0, 0])
    assert precision(y_true, y_pred, average=None).tolist() == [0.0, 0.0]
    assert f1_score(y_true, y_pred) == 0.0


def test_named_metrics_for_fit():
    y_true = np.array([0, 1, 2, 2])
    scores = np.eye(3)[[0, 2, 2, 2]]
    assert METRICS["accuracy"](y_true, scores) == 0.75
    assert METRICS["f1"](y_true, scores) == f1_score(y_true, scores, average="macro")
    assert METRICS["weighted_recall"](y_true, scores) == recall(y_true, scores,
                                                               average="weighted")
    assert list(get_metrics({"acc50": partial(accuracy, threshold=0.5)})) == ["acc50"]
    assert list(get_metrics("f1")) == ["f1"]
    with pytest.raises(ValueError, match="given twice"):
        get_metrics(["accuracy", accuracy])
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        get_metrics(["auc"])
    with pytest.raises(TypeError, match="must be a name or a function"):
        get_metrics([3])


def test_named_metrics_take_the_threshold_given_to_get_metrics():
    """fit passes loss.decision_threshold: names get it, the caller's own functions do not."""
    y_true = np.array([[0.0], [1.0], [0.0], [1.0]])
    probs = np.array([[0.2], [0.9], [0.4], [0.6]])  # all right at 0.5, all "positive" at 0
    at_half = get_metrics(["accuracy", "f1", "weighted_recall"], threshold=0.5)
    assert at_half["accuracy"](y_true, probs) == 1.0
    assert at_half["f1"](y_true, probs) == 1.0
    assert at_half["weighted_recall"](y_true, probs) == 1.0
    at_zero = get_metrics(["accuracy", "f1"], threshold=0.0)
    assert at_zero["accuracy"](y_true, probs) == 0.5
    # without a threshold, 0/1 targets and scores in [0, 1] are read as probabilities (issue 8:
    # threshold 0 was applied to them silently)
    assert get_metrics("accuracy")["accuracy"](y_true, probs) == 1.0
    own = get_metrics({"acc0": partial(accuracy, threshold=0.0), "plain": accuracy,
                       "named": "accuracy"}, threshold=0.5)
    assert own["acc0"](y_true, probs) == 0.5  # a partial keeps its threshold
    assert own["plain"] is accuracy  # a function is used as given (its default, 0)
    assert own["named"](y_true, probs) == 1.0  # a name inside a dict gets the threshold
    # the targets are read at the same threshold: +-1 targets at 0 and at 0.5 alike
    pm = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    assert get_metrics("accuracy", threshold=0.5)["accuracy"](pm, probs) == 1.0
    tanh_out = np.array([[-0.3], [0.8], [-0.1], [0.2]])
    assert get_metrics("accuracy", threshold=0.0)["accuracy"](pm, tanh_out) == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "error", "match"),
    [
        (np.ones(3), np.ones(4), ShapeError, "same number of samples"),
        (np.ones((3, 2)), np.ones((3, 1)), ShapeError, "y_true has shape"),
        (np.ones(0), np.ones(0), ValueError, "no samples"),
    ],
)
def test_metric_errors(y_true, y_pred, error, match):
    with pytest.raises(error, match=match):
        accuracy(y_true, y_pred)


def test_average_must_be_known():
    with pytest.raises(ValueError, match="average must be None, 'macro' or 'weighted'"):
        f1_score([0, 1], [0, 1], average="micro")


def test_accuracy_never_applies_threshold_0_to_probabilities():
    from minidl.metrics import accuracy_score, classification_report

    assert accuracy([[0], [1], [1], [0]], [[.2], [.8], [.6], [.1]]) == 1.0  # the case
    assert accuracy([[-1], [1], [1], [-1]], [[-.2], [.8], [.6], [-.1]]) == 1.0  # tanh, +-1
    assert accuracy([0, 1, 1, 0], [-2.0, 3.0, 0.5, -1.0]) == 1.0  # logits split at 0
    assert accuracy([[0], [1]], [[.2], [.8]], threshold=0) == 0.5  # given: used as given
    assert accuracy_score is accuracy
    report = classification_report([0, 1, 1, 2], [0, 1, 2, 2])
    assert report.splitlines()[2].split() == ["0", "1.00", "1.00", "1.00", "1"]
    assert report.splitlines()[-1].split()[:2] == ["weighted", "avg"]


def test_torch_named_aliases():
    import minidl

    assert minidl.Linear is minidl.Dense and minidl.CrossEntropyLoss is minidl.SoftmaxCrossEntropy


@pytest.mark.parametrize(("y_true", "y_pred", "match"), [
    # issue 19: one of three right, and accuracy said 1.0 (both read as > 0)
    ([0, 1, 2], [0.0, 2.0, 1.0], r"y_true holds the values \[0, 1, 2\], which are not two"),
    ([1, 2, 1], [0.3, 0.6, 0.2], r"y_true holds the values \[1, 2\]"),  # both > 0: one class
    ([-1, 1], [[0.1, 0.9], [0.8, 0.2]], r"class scores of 2 columns, .* y_true holds \[-1\]"),
    ([1, 3], [[0.1, 0.9, 0.0], [0.8, 0.2, 0.0]], r"labels 0 \.\. 2, but y_true holds \[3\]"),
    ([0.5, 1.0], [[0.1, 0.9], [0.8, 0.2]], r"y_true holds \[0\.5\]"),
])
def test_labels_that_are_not_the_predictions_convention_are_refused(y_true, y_pred, match):
    for metric in (accuracy, f1_score, precision_recall_f1, confusion_matrix):
        with pytest.raises(ValueError, match=match):
            metric(y_true, y_pred)


def test_labels_in_the_convention_still_work():
    assert accuracy([1, 1, 1], [0.3, 0.6, 0.2]) == pytest.approx(1 / 3)  # one class present
    assert accuracy([[0, 1], [1, 0]], [[0.1, 0.9], [0.8, 0.2]]) == 1.0  # one-hot rows
    assert accuracy([True, False], [[0.1, 0.9], [0.8, 0.2]]) == 1.0
    assert accuracy([1.0, 0.0], [[0.1, 0.9], [0.8, 0.2]]) == 1.0  # whole floats are labels


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), -float("inf"), "0.5", True])
def test_a_threshold_must_be_a_finite_number(threshold):
    # issue 19: NaN or inf gave 1.0 (every sample on one side, targets and predictions alike)
    with pytest.raises(ValueError, match=r"metrics: threshold must be a finite number"):
        accuracy([0, 1, 0], [0.2, 0.8, 0.7], threshold=threshold)
    with pytest.raises(ValueError, match=r"get_metrics: threshold must be a finite number"):
        get_metrics("accuracy", threshold=threshold)


@pytest.mark.parametrize("metrics", [{"loss": accuracy}, ["loss"], {"loss": "accuracy"}])
def test_a_metric_cannot_be_named_loss(metrics):
    with pytest.raises((ValueError, TypeError), match=r"(metric name 'loss' is taken|unknown)"):
        get_metrics(metrics)
    def loss(y_true, y_pred):
        return 0.0
    with pytest.raises(ValueError, match=r"metric name 'loss' is taken: fit logs the loss"):
        get_metrics([loss])


def test_soft_targets_are_split_at_the_threshold_as_documented():
    """The review of issue 19's label check: probabilities as targets (three or more distinct
    values, not class labels) are read as y_true > threshold, as the docstring says."""
    assert accuracy([0.1, 0.9, 0.8], [0.2, 0.7, 0.9], threshold=0.5) == 1.0
    assert accuracy([0.1, 0.9, 0.8], [0.2, 0.7, 0.4], threshold=0.5) == pytest.approx(2 / 3)
