"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

Every metric takes ``(y_true, y_pred)`` and reads ``y_pred`` the way a model outputs it:

- **class scores**, shape (N, C) with C > 1 (logits, probabilities): the predicted class is the
  argmax; ``y_true`` holds class labels 0 .. C-1, shape (N,), or one-hot rows (N, C) (any
  other label could never be predicted, and is refused).
- **binary scores**, floats of shape (N,) or (N, 1): the predicted class is positive where
  ``y_pred > threshold``. Without ``threshold`` it is read from the values, never guessed:
  scores split at 0 (the QA study's ``+1 if y_hat > 0 else -1`` for tanh
  outputs), 0/1 targets with scores all in [0, 1] at 0.5 (probabilities), anything else
  (logits, tanh outputs) at 0. Pass ``threshold=`` to say it yourself. ``y_true`` is read
  the same way (``y_true > threshold``), so with any threshold in [0, 1) targets in
  {-1, +1} and in {0, 1} both work; the classes are then 0 (negative) and 1 (positive).
  Targets that are not two classes on either side of the threshold (labels 0, 1, 2) are
  refused, as is a threshold that is not a finite number.
- **labels**, integers of shape (N,): compared as they are, as scikit-learn does.

Per-class results follow the sorted labels present in ``y_true`` or ``y_pred`` (scikit-learn's
rule), unless ``labels=`` lists them. A ratio with a zero denominator is 0 (scikit-learn's
``zero_division=0``, without the warning). ``average`` is ``None`` (one value per class),
``"macro"`` (plain mean over classes) or ``"weighted"`` (mean weighted by each class's support,
its number of true samples).

:func:`minidl.fit` accepts metric names, which become History columns ``train_<name>`` and
``val_<name>``: ``"accuracy"``, ``"precision"``, ``"recall"``, ``"f1"`` (macro averages, as the
MNIST study reports them) and ``"weighted_precision"``, ``"weighted_recall"``,
``"weighted_f1"``. Metrics given by name split binary scores at the loss's
``decision_threshold`` (0 for MSE and logits, 0.5 for ``BinaryCrossEntropy()``'s
probabilities); a function or ``functools.partial`` you pass keeps its own threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from .errors import ShapeError
from .validation import check_number

Metric = Callable[[np.ndarray, np.ndarray], float]


def class_labels(y_true, y_pred, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(true, pred)`` as 1-D label arrays, following the rules in the module docstring."""
    if threshold is not None:
        check_number("metrics", "threshold", threshold)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim == 0 or y_pred.ndim == 0 or len(y_true) != len(y_pred):
        raise ShapeError(
            f"metrics: y_true and y_pred must hold the same number of samples, got shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    if len(y_pred) == 0:
        raise ValueError("metrics: got no samples")
    _check_values(y_true, "y_true")
    _check_values(y_pred, "y_pred")
    kinds = ["strings" if y.dtype.kind in "US" else "numbers" for y in (y_true, y_pred)]
    if kinds[0] != kinds[1]:  # "1" == 1 is never true: every sample would count as wrong
        raise ValueError(f"metrics: y_true holds {kinds[0]} and y_pred {kinds[1]}; labels must "
                         f"be of one kind")
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        pred = y_pred.argmax(axis=1)
        if y_true.ndim == 2 and y_true.shape == y_pred.shape:
            return y_true.argmax(axis=1), pred
        true = _single_column(y_true, "y_true", y_pred.shape)
        _check_class_labels(true, y_pred.shape[1])
        return true, pred
    pred = _single_column(y_pred, "y_pred", y_pred.shape)
    true = _single_column(y_true, "y_true", y_pred.shape)
    if pred.dtype.kind == "f":
        if threshold is None:
            threshold = _infer_threshold(true, pred)
        binary = (true > threshold).astype(np.int64)
        _check_binary_targets(true, binary, threshold)
        return binary, (pred > threshold).astype(np.int64)
    return true, pred


def _check_class_labels(true: np.ndarray, n_classes: int) -> None:
    """Class scores of C columns predict the labels 0 .. C-1: a true label outside them (a -1
    of +-1 targets, a 1-based label, 2.5) could never be predicted, and every such sample
    would silently count as wrong."""
    bad = (true < 0) | (true >= n_classes) | (true != np.round(true))
    if bad.any():
        raise ValueError(
            f"metrics: y_pred holds class scores of {n_classes} columns, which predict the "
            f"labels 0 .. {n_classes - 1}, but y_true holds {_some(true[bad])} (at index "
            f"{int(np.argmax(bad))}); pass y_true as labels 0 .. {n_classes - 1} or one-hot rows"
        )


def _check_binary_targets(true: np.ndarray, binary: np.ndarray, threshold: float) -> None:
    """Binary scores split the targets at ``threshold`` too: class labels of more than two
    values (0, 1, 2), or two on the same side of it, would be merged into one class and the
    predictions judged against the merge. Soft targets (probabilities such as 0.1, 0.9, 0.8)
    are split at the threshold, as the docstring says."""
    values = np.unique(true)
    labels = len(values) > 2 and bool(np.all(values == np.round(values)))
    if labels or (len(values) == 2 and binary.min() == binary.max()):
        raise ValueError(
            f"metrics: y_pred holds binary scores (floats of shape (N,) or (N, 1)), read as "
            f"class 1 where > {threshold}, but y_true holds the values {_some(values)}, which "
            f"are not two classes on either side of {threshold}; for class labels pass "
            f"integer predictions or class scores of shape (N, C)"
        )


def _some(values: np.ndarray) -> str:
    values = np.unique(values)
    shown = ", ".join(str(v) for v in values[:5].tolist())
    return f"[{shown}{', ...' if len(values) > 5 else ''}]"


def _check_values(y: np.ndarray, name: str) -> None:
    """Refuse what the metrics would misread: complex or object arrays (compared or sorted
    wrongly, or not at all) and NaN (``NaN > t`` is False: a NaN score would silently be a
    negative prediction, and a NaN label a class of its own)."""
    if y.dtype.kind not in "biufUS":
        raise ValueError(f"metrics: {name} has dtype {y.dtype}; labels and scores must be real "
                         f"numbers, bools or strings")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"metrics: {name} holds NaN (at index "
                         f"{np.argwhere(np.isnan(y))[0].tolist()}); a NaN score or label has "
                         f"no class")


def _infer_threshold(true: np.ndarray, pred: np.ndarray) -> float:
    """Where binary scores split, read from the values: 0/1 targets with scores all in
    [0, 1] are probabilities (split at 0.5); anything else (+-1 targets, tanh outputs, logits,
    which may be negative) splits at 0."""
    if np.all((true == 0) | (true == 1)) and np.all((pred >= 0) & (pred <= 1)):
        return 0.5
    return 0.0


def _single_column(y: np.ndarray, name: str, pred_shape: tuple) -> np.ndarray:
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        return y.reshape(-1)
    raise ShapeError(
        f"metrics: {name} has shape {y.shape}, which does not fit predictions of shape "
        f"{pred_shape}: expected (N,), (N, 1) or, with class scores, one-hot rows"
    )


def accuracy(y_true, y_pred, threshold: float | None = None) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    true, pred = class_labels(y_true, y_pred, threshold)
    return float(np.mean(true == pred))


def confusion_matrix(y_true, y_pred, *, labels=None, threshold: float | None = None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``labels[i]`` predicted as ``labels[j]``.

    Samples whose true or predicted label is not in ``labels`` are not counted (as in
    scikit-learn).
    """
    true, pred = class_labels(y_true, y_pred, threshold)
    return _confusion(true, pred, labels)


def _label_positions(true, pred, labels) -> tuple[np.ndarray, tuple, tuple]:
    """``labels`` (checked; by default the sorted labels present) and, for ``true`` and
    ``pred``, each sample's position in ``labels`` with a mask of the samples whose label is
    listed."""
    labels = np.asarray(np.union1d(true, pred) if labels is None else labels)
    if labels.ndim != 1 or len(labels) == 0 or len(np.unique(labels)) != len(labels):
        raise ValueError(f"metrics: labels must be distinct values, got {labels!r}")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    k = len(labels)

    def index(y):
        pos = np.clip(np.searchsorted(sorted_labels, y), 0, k - 1)
        return order[pos], sorted_labels[pos] == y

    return labels, index(true), index(pred)


def _confusion(true, pred, labels) -> np.ndarray:
    labels, (ti, t_ok), (pi, p_ok) = _label_positions(true, pred, labels)
    k = len(labels)
    keep = t_ok & p_ok
    return np.bincount(ti[keep] * k + pi[keep], minlength=k * k).reshape(k, k)


def precision_recall_f1(y_true, y_pred, *, labels=None, threshold: float | None = None) -> dict:
    """Per-class ``precision``, ``recall``, ``f1`` and ``support``, with their ``labels``::

        precision = tp / (tp + fp)    recall = tp / (tp + fn)    f1 = 2 tp / (2 tp + fp + fn)

    Each class is counted over all the samples, as scikit-learn does: with ``labels=``, a
    sample whose other label is not listed still counts (predicting a listed class for an
    unlisted true class is a false positive of that class). A listed class that occurs
    nowhere gets 0s (``zero_division=0``).
    """
    true, pred = class_labels(y_true, y_pred, threshold)
    labels, (ti, t_ok), (pi, p_ok) = _label_positions(true, pred, labels)
    k = len(labels)
    hit = t_ok & p_ok & (ti == pi)
    tp = np.bincount(ti[hit], minlength=k).astype(np.float64)
    predicted = np.bincount(pi[p_ok], minlength=k)
    support = np.bincount(ti[t_ok], minlength=k)
    return {
        "labels": labels,
        "precision": _ratio(tp, predicted),
        "recall": _ratio(tp, support),
        "f1": _ratio(2 * tp, predicted + support),
        "support": support,
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _average(values: np.ndarray, support: np.ndarray, average):
    if average is None:
        return values
    if average == "macro":
        return float(np.mean(values))
    if average == "weighted":
        total = support.sum()
        return float(np.dot(values, support) / total) if total > 0 else 0.0
    raise ValueError(f"metrics: average must be None, 'macro' or 'weighted', got {average!r}")


def precision(y_true, y_pred, *, average="macro", labels=None, threshold: float | None = None):
    """Precision per class (``average=None``), or its macro / weighted average."""
    r = precision_recall_f1(y_true, y_pred, labels=labels, threshold=threshold)
    return _average(r["precision"], r["support"], average)


def recall(y_true, y_pred, *, average="macro", labels=None, threshold: float | None = None):
    """Recall per class (``average=None``), or its macro / weighted average."""
    r = precision_recall_f1(y_true, y_pred, labels=labels, threshold=threshold)
    return _average(r["recall"], r["support"], average)


def f1_score(y_true, y_pred, *, average="macro", labels=None, threshold: float | None = None):
    """F1 per class (``average=None``), or its macro / weighted average."""
    r = precision_recall_f1(y_true, y_pred, labels=labels, threshold=threshold)
    return _average(r["f1"], r["support"], average)


class _NamedMetric:
    """``func`` with ``keywords`` bound, named ``name`` (as on a ``functools.partial``, so a
    threshold can be bound on top)."""

    def __init__(self, name: str, func: Callable, **keywords) -> None:
        self.func = func
        self.keywords = keywords
        self.__name__ = name
        args = "".join(f", {k}={v!r}" for k, v in keywords.items())
        self.__doc__ = f"{func.__name__}(y_true, y_pred{args})"

    def __call__(self, y_true, y_pred):
        return self.func(y_true, y_pred, **self.keywords)


#: Metrics :func:`minidl.fit` knows by name, with the metrics' default ``threshold`` (None)
#: (``fit`` binds its loss's ``decision_threshold`` on top, see :func:`get_metrics`).
METRICS: dict[str, _NamedMetric] = {
    "accuracy": _NamedMetric("accuracy", accuracy),
    "precision": _NamedMetric("precision", precision, average="macro"),
    "recall": _NamedMetric("recall", recall, average="macro"),
    "f1": _NamedMetric("f1", f1_score, average="macro"),
    "weighted_precision": _NamedMetric("weighted_precision", precision, average="weighted"),
    "weighted_recall": _NamedMetric("weighted_recall", recall, average="weighted"),
    "weighted_f1": _NamedMetric("weighted_f1", f1_score, average="weighted"),
}


#: Names a metric cannot take: its columns would overwrite the loss's.
RESERVED_NAMES = frozenset({"loss"})


#: scikit-learn's name for :func:`accuracy`.
accuracy_score = accuracy


def classification_report(y_true, y_pred, *, labels=None, threshold: float | None = None,
                          digits: int = 2) -> str:
    """A text table of precision, recall, F1 and support per class, with the macro and
    weighted averages, laid out as scikit-learn's ``classification_report``."""
    r = precision_recall_f1(y_true, y_pred, labels=labels, threshold=threshold)
    names = [str(label) for label in r["labels"]]
    width = max(len("weighted avg"), *(len(n) for n in names))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for i, name in enumerate(names):
        lines.append(f"{name:>{width}} {r['precision'][i]:>9.{digits}f} "
                     f"{r['recall'][i]:>9.{digits}f} {r['f1'][i]:>9.{digits}f} "
                     f"{r['support'][i]:>9}")
    total = int(r["support"].sum())
    lines.append("")
    for avg in ("macro", "weighted"):
        p, rc, f = (_average(r[k], r["support"], avg) for k in ("precision", "recall", "f1"))
        lines.append(f"{avg + ' avg':>{width}} {p:>9.{digits}f} {rc:>9.{digits}f} "
                     f"{f:>9.{digits}f} {total:>9}")
    return "\n".join(lines)


def get_metrics(metrics: Iterable | Mapping | None, *,
                threshold: float | None = None) -> dict[str, Metric]:
    """Resolve what ``fit(metrics=...)`` received into ``{name: function}``.

    Accepts names from :data:`METRICS`, named functions ``f(y_true, y_pred) -> float`` (the
    column is the function's ``__name__``), or a dict ``{name: function}`` (for a lambda or a
    ``functools.partial``, e.g. ``{"accuracy": partial(accuracy, threshold=0.5)}``).

    ``threshold``: where metrics given *by name* split single-output scores (and the targets)
    into the two classes; :func:`minidl.fit` and :func:`minidl.evaluate` pass their loss's
    ``decision_threshold`` (0 for MSE on +-1 targets and for logits, 0.5 for the probabilities
    of ``BinaryCrossEntropy()``). None keeps the metrics' default, 0. A function or partial
    given by the caller keeps its own threshold.

    A metric cannot be named ``"loss"`` (:data:`RESERVED_NAMES`): its columns would overwrite
    the loss's.
    """
    if threshold is not None:
        check_number("get_metrics", "threshold", threshold)
    if metrics is None:
        return {}
    if isinstance(metrics, (str, bytes)) or callable(metrics):
        metrics = [metrics]
    items = metrics.items() if isinstance(metrics, Mapping) else [
        (None, m) for m in metrics
    ]
    resolved: dict[str, Metric] = {}
    for name, metric in items:
        if isinstance(metric, str):
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
            name = name or metric
            metric = METRICS[metric]
            if threshold is not None:
                metric = _NamedMetric(name, metric.func, **metric.keywords,
                                threshold=float(threshold))
        elif not callable(metric):
            raise TypeError(f"a metric must be a name or a function, got {metric!r}")
        if name is None:
            name = getattr(metric, "__name__", None)
            if not name or name == "<lambda>":
                raise ValueError(
                    f"cannot name the metric {metric!r}: pass a dict, e.g. "
                    f"metrics={{'my_metric': fn}}"
                )
        if not name.isidentifier():
            raise ValueError(f"metric names must be identifiers, got {name!r}")
        if name in resolved:
            raise ValueError(f"metric {name!r} given twice")
        if name in RESERVED_NAMES:
            raise ValueError(
                f"metric name {name!r} is taken: fit logs the loss as train_loss and val_loss "
                f"(evaluate as 'loss'), which a metric of that name would overwrite; name it "
                f"otherwise, e.g. metrics={{'my_{name}': fn}}"
            )
        resolved[name] = metric
    return resolved


__all__ = [
    "METRICS",
    "accuracy",
    "accuracy_score",
    "class_labels",
    "classification_report",
    "confusion_matrix",
    "f1_score",
    "get_metrics",
    "precision",
    "precision_recall_f1",
    "recall",
]
