"""Arguments a careless or hostile user passes: each is refused with an error naming the argument
and its owner, never accepted silently nor left to fail later with a raw Python or NumPy error.
(Issue 12's wider search: the same classes of defect as its examples, elsewhere.)"""

from __future__ import annotations

import numpy as np
import pytest

import minidl as md
from minidl import init
from minidl.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar, WeightTrajectory
from minidl.schedules import ReduceLROnPlateau

NOT_BOOLS = ["no", "yes", None, 1, 0.0, float("nan"), [True]]


def params():
    return [md.Parameter(np.ones(2))]


# ------------------------------------------------------------------ flags that must be bools
FLAG_OWNERS = [
    ("SGD", "nesterov", lambda v: md.SGD(params(), lr=0.1, momentum=0.9, nesterov=v)),
    ("Adam", "amsgrad", lambda v: md.Adam(params(), amsgrad=v)),
    ("AdamW", "amsgrad", lambda v: md.AdamW(params(), amsgrad=v)),
    ("RMSprop", "centered", lambda v: md.RMSprop(params(), centered=v)),
    ("Adam", "foreach", lambda v: md.Adam(params(), foreach=v)),
    ("SGD", "fused", lambda v: md.SGD(params(), fused=v)),
    ("EarlyStopping", "restore_best_weights", lambda v: EarlyStopping(restore_best_weights=v)),
    ("ModelCheckpoint", "save_best_only",
     lambda v: ModelCheckpoint("m.npz", monitor="val_loss", save_best_only=v)),
    ("ProgressBar", "lines", lambda v: ProgressBar(lines=v)),
    ("WeightTrajectory", "include_initial", lambda v: WeightTrajectory(include_initial=v)),
    ("Dense", "bias", lambda v: md.Dense(2, 2, bias=v, rng=0)),
    ("RecursiveMLP", "bias", lambda v: md.RecursiveMLP([2, 2], bias=v, rng=0)),
    # issue 19's sweep: every flag of the layers, losses and fit
    ("Conv2D", "bias", lambda v: md.Conv2D(1, 1, 2, bias=v, rng=0)),
    ("BatchNorm1d", "affine", lambda v: md.BatchNorm1d(2, affine=v)),
    ("MSE", "half_grad", lambda v: md.MSE(half_grad=v)),
    ("BinaryCrossEntropy", "from_logits", lambda v: md.BinaryCrossEntropy(from_logits=v)),
    ("fit", "shuffle", lambda v: _trainer(shuffle=v)),
]


def _trainer(**kwargs):
    model = md.Dense(2, 1, rng=0)
    return md.Trainer(model, md.MSE(), md.SGD(model.parameters()), **kwargs)


@pytest.mark.parametrize("value", NOT_BOOLS, ids=repr)
@pytest.mark.parametrize(("owner", "name", "build"), FLAG_OWNERS,
                         ids=[f"{o}.{n}" for o, n, _ in FLAG_OWNERS])
def test_a_flag_must_be_a_bool(owner, name, build, value):
    if value is None and name in ("foreach", "fused"):
        return  # None is their documented default ("choose for me")
    with pytest.raises(ValueError, match=rf"{owner}: {name} must be True or False( \(or None\))?, "
                                         rf"got "):
        build(value)


@pytest.mark.parametrize(("owner", "name", "build"), FLAG_OWNERS,
                         ids=[f"{o}.{n}" for o, n, _ in FLAG_OWNERS])
def test_a_flag_accepts_numpy_bools(owner, name, build):
    if name == "fused" and not md.optim.fused.HAVE_NUMBA:
        return
    build(np.bool_(True))
    build(False)


@pytest.mark.parametrize("dampening", [-0.5, 1.5])
def test_sgd_dampening_lies_in_0_1(dampening):
    with pytest.raises(ValueError, match=r"SGD: dampening must (be >= 0.0|lie in \[0.0, 1.0\])"):
        md.SGD(params(), lr=0.1, momentum=0.9, dampening=dampening)


@pytest.mark.parametrize("dtype", ["bogus", "int32", np.complex128, str])
def test_layers_refuse_a_dtype_that_is_not_floating(dtype):
    with pytest.raises(ValueError, match=r"Dense: dtype must be a floating dtype"):
        md.Dense(2, 2, rng=0, dtype=dtype)
    with pytest.raises(ValueError, match=r"RecursiveMLP: dtype must be a floating dtype"):
        md.RecursiveMLP([2, 2], rng=0, dtype=dtype)


@pytest.mark.parametrize("sizes", [3, "32", None])
def test_recursive_mlp_layer_sizes_is_a_list(sizes):
    with pytest.raises(ValueError, match=r"RecursiveMLP: layer_sizes must be a list of positive "
                                         r"ints"):
        md.RecursiveMLP(sizes, rng=0)


# ------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize(("kw", "message"), [
    ({"eps": 0}, r"gradcheck: eps must be > 0, got 0"),
    ({"eps": -1e-6}, r"gradcheck: eps must be > 0"),
    ({"eps": True}, r"gradcheck: eps must be a finite number, got True"),
    ({"eps": "1e-6"}, r"gradcheck: eps must be a finite number"),
    ({"eps": float("nan")}, r"gradcheck: eps must be a finite number"),
    ({"atol": -1}, r"gradcheck: atol must be >= 0"),
    ({"atol": float("nan")}, r"gradcheck: atol must be a finite number"),
    ({"rtol": float("nan")}, r"gradcheck: rtol must be a finite number"),
    ({"rtol": -1}, r"gradcheck: rtol must be >= 0"),
    ({"n_directions": 0}, r"gradcheck: n_directions must be a positive int"),
    ({"n_directions": True}, r"gradcheck: n_directions must be a positive int"),
    ({"seed": "x"}, r"gradcheck: seed must be an int"),
])
def test_gradcheck_arguments(kw, message):
    model = md.Dense(3, 2, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match=message):
        md.gradcheck(model, x, **kw)


@pytest.mark.parametrize(("x", "message"), [
    (np.zeros((0, 3)), r"gradcheck: the input is empty \(shape \(0, 3\)\), so nothing would be "
                       r"checked"),
    (np.ones((2, 3)) + 1j, r"gradcheck: the input must be real numbers, got dtype complex128"),
    (np.array([["a", "b", "c"]]), r"gradcheck: the input must be real numbers, got dtype <U1"),
])
def test_gradcheck_refuses_inputs_it_cannot_check(x, message):
    with pytest.raises(ValueError, match=message):
        md.gradcheck(md.Dense(3, 2, rng=0), x)


def test_gradcheck_refuses_an_empty_loss_input():
    with pytest.raises(ValueError, match=r"gradcheck: the input is empty"):
        md.gradcheck(md.MSE(), (np.zeros((0, 1)), np.zeros((0, 1))))


# ------------------------------------------------------------------ initialisers
FAN_INITS = ["lecun_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal"]


@pytest.mark.parametrize("name", FAN_INITS)
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (-1, 3), (2.5, 3), ("a", 3), (True, 3), None])
def test_initialiser_refuses_a_bad_shape(name, shape):
    with pytest.raises(ValueError, match=rf"{name}: shape must be a tuple of at least 2 positive "
                                         rf"ints, got {shape!r}".replace("(", r"\(")
                       .replace(")", r"\)")):
        init.INITIALIZERS[name](shape, np.random.default_rng(0))


@pytest.mark.parametrize("name", FAN_INITS)
@pytest.mark.parametrize("rng", [None, 5, "x"])
def test_initialiser_refuses_what_is_not_a_generator(name, rng):
    with pytest.raises(ValueError, match=rf"{name}: rng must be a numpy.random.Generator"):
        init.INITIALIZERS[name]((2, 2), rng)


def test_initialisers_accept_numpy_ints():
    w = init.glorot_uniform((np.int64(3), 2), np.random.default_rng(0))
    assert w.shape == (3, 2)


@pytest.mark.parametrize("std", [float("inf"), True, "1", float("nan"), -1.0])
def test_normal_std_is_a_finite_number(std):
    with pytest.raises(ValueError, match=r"normal: std must be"):
        init.normal(std)


# ------------------------------------------------------------------ schedules and callbacks
@pytest.mark.parametrize("metric", ["x", None, np.array([1.0, 2.0]), True, [0.5]])
def test_reduce_lr_on_plateau_step_takes_a_number(metric):
    sched = ReduceLROnPlateau(md.SGD(params(), lr=0.1))
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau.step: the monitored value must be "
                                         r"a real number"):
        sched.step(metric)


def test_reduce_lr_on_plateau_step_takes_numpy_scalars():
    sched = ReduceLROnPlateau(md.SGD(params(), lr=0.1))
    sched.step(np.float32(0.5))
    sched.step(np.array(0.25))
    assert sched.best == 0.25


@pytest.mark.parametrize("filepath", [3, None, "", b"m.npz"])
def test_model_checkpoint_filepath_is_a_path(filepath):
    with pytest.raises((TypeError, ValueError), match=r"ModelCheckpoint: filepath must be"):
        ModelCheckpoint(filepath)


@pytest.mark.parametrize("file", [3, "out.txt"])
def test_progress_bar_file_must_be_writable(file):
    with pytest.raises(TypeError, match=r"ProgressBar: file must be a text stream with a "
                                        r"write\(\) method"):
        ProgressBar(file=file)


# ------------------------------------------------------------------ metrics
METRICS = [md.metrics.accuracy, md.metrics.precision, md.metrics.recall, md.metrics.f1_score,
           md.metrics.confusion_matrix, md.metrics.precision_recall_f1,
           md.metrics.classification_report]


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.__name__)
@pytest.mark.parametrize(("y_true", "y_pred", "message"), [
    ([0, 1], [np.nan, 0.3], r"metrics: y_pred holds NaN"),
    ([0, 1], [[np.nan, 0.0], [0.0, 1.0]], r"metrics: y_pred holds NaN"),
    ([0.0, np.nan], [0.2, 0.9], r"metrics: y_true holds NaN"),
    ([1 + 1j, 0], [1 + 1j, 0], r"metrics: y_true has dtype complex128; labels and scores must "
                               r"be real numbers, bools or strings"),
    ([0, 1], np.array([None, 1], dtype=object), r"metrics: y_pred has dtype object"),
    (["a", "b"], [0, 1], r"metrics: y_true holds strings and y_pred numbers"),
    ([0, 1], ["a", "b"], r"metrics: y_true holds numbers and y_pred strings"),
])
def test_metrics_refuse_labels_they_would_misread(metric, y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metric(y_true, y_pred)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.__name__)
def test_metrics_keep_reading_bools_strings_and_infinite_scores(metric):
    metric(np.array([True, False]), np.array([True, True]))
    metric(np.array(["a", "b"]), np.array(["a", "a"]))
    metric(np.array([0, 1]), np.array([[np.inf, 0.0], [0.0, 1.0]]))


# ------------------------------------------------------------------ History.from_json
@pytest.mark.parametrize(("text", "message"), [
    ("", r"History.from_json: not JSON"),
    ("{", r"History.from_json: not JSON"),
    ("[]", r"History.from_json: expected an object with 'columns' and 'events', got list"),
    ("3", r"History.from_json: expected an object with 'columns' and 'events', got int"),
    ('{"a": [1, 2]}', r"History.from_json: unknown keys \['a'\]; expected 'columns' and "
                      r"'events'"),
    ('{"columns": null}', r"History.from_json: 'columns' must be an object of lists, got None"),
    ('{"columns": {"a": 3}}', r"History.from_json: column 'a' must be a list, got 3"),
    ('{"columns": {}, "events": 3}', r"History.from_json: 'events' must be a list of objects, "
                                     r"got 3"),
    ('{"columns": {}, "events": [3]}', r"History.from_json: 'events' must be a list of objects"),
])
def test_history_from_json_refuses_what_is_not_a_history(text, message):
    with pytest.raises(ValueError, match=message):
        md.History.from_json(text)


def test_history_from_json_round_trip_still_works():
    h = md.History({"a": [1.0, float("nan")]}, [{"event": "x"}])
    back = md.History.from_json(h.to_json())
    assert back.keys() == ["a"] and back.events == [{"event": "x"}]


# ------------------------------------------------------------------ checkpoints
def test_loading_a_corrupt_checkpoint_closes_the_file(tmp_path, recwarn):
    import gc

    good = tmp_path / "good.npz"
    md.save(good, md.Dense(2, 2, rng=0))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:100])
    with pytest.raises(md.errors.CheckpointError, match=r"truncated or corrupt checkpoint"):
        md.load(bad)
    gc.collect()
    leaks = [w for w in recwarn.list if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]
