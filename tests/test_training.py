"""fit / evaluate / predict and the History: the loop does what its docstring says, exactly."""

from __future__ import annotations

import json
import math
import time
from functools import partial

import numpy as np
import pytest

import minidl
from minidl import (
    MSE,
    SGD,
    Adam,
    BatchNorm1d,
    BinaryCrossEntropy,
    Dense,
    Dropout,
    History,
    Identity,
    Layer,
    RecursiveMLP,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    TrainingDiverged,
    evaluate,
    fit,
    predict,
)
from minidl.callbacks import Callback, WeightTrajectory
from minidl.metrics import accuracy

from ._fit_helpers import assert_same_arrays, assert_same_history, make_data, make_model


def qa_model(d=5, seed=3):
    return RecursiveMLP([d, 8, 1], activation=Tanh, bias=False, init="lecun_normal", rng=seed)


# ---------------------------------------------------------------------- the loop itself
def test_history_columns_and_counts():
    X, y = make_data(n=103)
    Xv, yv = make_data(n=40, seed=1)
    model = make_model()
    h = fit(model, MSE(), Adam(model.parameters(), lr=0.01), X, y, epochs=4, batch_size=32,
            validation_data=(Xv, yv), metrics=["accuracy"], verbose=0)
    assert h.keys() == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                        "lr", "steps", "time"]
    assert len(h) == 4
    assert h["epoch"].tolist() == [1, 2, 3, 4]
    assert h["steps"].tolist() == [4, 8, 12, 16]  # 103 rows = 3 full batches + 1 of 7
    assert h["steps"].dtype == np.int64
    assert np.all(h["lr"] == 0.01)
    assert np.all(np.diff(h["time"]) > 0)
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_validation_split_holds_out_the_last_rows_before_shuffling():
    """As Keras: the last floor(N * split) rows, unshuffled, are the validation data; the same
    run as fit on the first rows with validation_data=(the last rows)."""
    X, y = make_data(n=103)
    runs = []
    for kwargs in ({"validation_split": 0.25},
                   {"validation_data": (X[77:], y[77:])}):
        model = make_model()
        rows = X if "validation_split" in kwargs else X[:77]
        h = fit(model, MSE(), Adam(model.parameters(), lr=0.01), rows,
                y if "validation_split" in kwargs else y[:77], epochs=3, batch_size=16,
                seed=5, metrics=["accuracy"], verbose=0, **kwargs)
        runs.append((h, model))
    (split, split_model), (given, given_model) = runs
    for key in ("train_loss", "val_loss", "val_accuracy", "steps"):
        assert np.array_equal(split[key], given[key]), key
    assert split["steps"][0] == 5  # floor(103 * 0.75) = 77 training rows, batches of 16
    assert_same_arrays(split_model.state_dict(), given_model.state_dict())


def test_full_batch_is_gradient_descent_step_for_step():
    """batch_size=None: one step per epoch on all rows, as the study's GD (a hand loop)."""
    X, y = make_data(n=50)
    a, b = qa_model(), qa_model()
    opt_a, opt_b = SGD(a.parameters(), lr=0.1), SGD(b.parameters(), lr=0.1)
    h = fit(a, MSE(half_grad=True), opt_a, X, y, epochs=5, batch_size=None, verbose=0)
    loss = MSE(half_grad=True)
    losses = []
    for _ in range(5):
        losses.append(loss.forward(b.forward(X), y))
        b.backward(loss.backward())
        opt_b.step()
    assert_same_arrays(a.state_dict(), b.state_dict())
    assert h["train_loss"].tolist() == losses
    assert h["steps"].tolist() == [1, 2, 3, 4, 5]


def test_the_default_batch_size_is_32_as_keras():
    """Without batch_size, fit takes batches of 32 rows (Keras's default), not the whole set;
    batch_size=None, given, is still the full batch."""
    X, y = make_data(n=103)
    a, b, c = make_model(), make_model(), make_model()
    h = fit(a, MSE(), SGD(a.parameters(), lr=0.1), X, y, epochs=2, seed=3, verbose=0)
    h32 = fit(b, MSE(), SGD(b.parameters(), lr=0.1), X, y, epochs=2, batch_size=32, seed=3,
              verbose=0)
    assert h["steps"].tolist() == [4, 8]
    assert_same_history(h, h32, ignore=("time",))
    assert_same_arrays(a.state_dict(), b.state_dict())
    full = fit(c, MSE(), SGD(c.parameters(), lr=0.1), X, y, epochs=2, batch_size=None, verbose=0)
    assert full["steps"].tolist() == [1, 2]
    assert minidl.Trainer(c, MSE(), SGD(c.parameters(), lr=0.1)).batch_size == 32


def test_minibatches_follow_a_fresh_seeded_permutation_and_keep_the_last_batch():
    """The batching contract, against a hand loop: default_rng(seed).permutation(N) each epoch,
    batches in that order, the last partial batch kept, train_loss the row-weighted mean."""
    X, y = make_data(n=103)
    a, b = make_model(), make_model()
    opt_a, opt_b = Adam(a.parameters(), lr=0.01), Adam(b.parameters(), lr=0.01)
    h = fit(a, MSE(), opt_a, X, y, epochs=3, batch_size=32, seed=11, verbose=0)
    rng = np.random.default_rng(11)
    loss = MSE()
    epoch_losses = []
    sizes = []
    for _ in range(3):
        order = rng.permutation(len(X))
        total = 0.0
        for begin in range(0, len(X), 32):
            rows = order[begin:begin + 32]
            total += loss.forward(b.forward(X[rows]), y[rows]) * len(rows)
            b.backward(loss.backward())
            opt_b.step()
            sizes.append(len(rows))
        epoch_losses.append(total / len(X))
    assert sizes[:4] == [32, 32, 32, 7]
    assert_same_arrays(a.state_dict(), b.state_dict())
    assert a.rng_state() == b.rng_state()  # the same dropout masks were drawn
    assert h["train_loss"].tolist() == epoch_losses


def test_no_shuffle_keeps_the_data_order():
    X, y = make_data(n=20)
    a, b = qa_model(), qa_model()
    opt_a, opt_b = SGD(a.parameters(), lr=0.05), SGD(b.parameters(), lr=0.05)
    fit(a, MSE(), opt_a, X, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    loss = MSE()
    for _ in range(2):
        for begin in range(0, 20, 8):
            loss.forward(b.forward(X[begin:begin + 8]), y[begin:begin + 8])
            b.backward(loss.backward())
            opt_b.step()
    assert_same_arrays(a.state_dict(), b.state_dict())


def test_same_seed_gives_identical_history_and_weights():
    X, y = make_data()
    Xv, yv = make_data(n=30, seed=5)
    runs = []
    for seed in (7, 7, 8):
        model = make_model()
        opt = Adam(model.parameters(), lr=0.01)
        h = fit(model, MSE(), opt, X, y, epochs=4, batch_size=16, seed=seed,
                validation_data=(Xv, yv), metrics=["accuracy", "f1"], verbose=0)
        runs.append((h, model.state_dict()))
    assert_same_history(runs[0][0], runs[1][0])
    assert_same_arrays(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1]["0.weight"], runs[2][1]["0.weight"])


def test_trainer_fit_again_continues_the_same_run():
    """epochs counts the whole run: fit(3) then fit(6) equals fit(6) in one go."""
    X, y = make_data()
    a, b = make_model(), make_model()
    ta = Trainer(a, MSE(), Adam(a.parameters(), lr=0.01), batch_size=16, seed=2, verbose=0)
    ta.fit(X, y, epochs=3)
    h_a = ta.fit(X, y, epochs=6)
    tb = Trainer(b, MSE(), Adam(b.parameters(), lr=0.01), batch_size=16, seed=2, verbose=0)
    h_b = tb.fit(X, y, epochs=6)
    assert_same_arrays(a.state_dict(), b.state_dict())
    assert_same_history(h_a, h_b)
    assert ta.fit(X, y, epochs=6) is ta.history and len(ta.history) == 6  # nothing left to do


def test_wall_time_excludes_evaluation():
    X, y = make_data(n=40)

    def slow_metric(y_true, y_pred):
        time.sleep(0.05)
        return 0.0

    model = qa_model()
    start = time.perf_counter()
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.01), X, y, epochs=3,
            validation_data=(X, y), metrics=[slow_metric], verbose=0)
    total = time.perf_counter() - start
    assert total > 0.3  # six slow evaluations happened...
    assert h["time"][-1] < 0.1 * total  # ...and none of them is in the time column
    assert np.all(np.diff(h["time"]) > 0)


def test_validation_runs_in_eval_mode_and_training_mode_returns():
    X, y = make_data(n=60)
    model = make_model(p=0.5)
    opt = Adam(model.parameters(), lr=0.01)
    h = fit(model, MSE(), opt, X, y, epochs=2, batch_size=16, validation_data=(X, y),
            metrics=["accuracy"], verbose=0)
    assert model.training and all(layer.training for _, layer in model.named_layers())
    scores = evaluate(model, MSE(), X, y, metrics=["accuracy"])  # eval mode: deterministic
    assert scores["loss"] == h["val_loss"][-1]
    assert scores["accuracy"] == h["val_accuracy"][-1]
    assert model.training
    model.eval()
    predict(model, X)
    assert not model.training


class ModeProbe(Layer):
    """Identity that records the mode of every layer of ``owner[0]`` at each forward pass."""

    def __init__(self, owner: list):
        super().__init__()
        self.owner = owner  # a list, so the model is not registered as a sub-layer
        self.seen = []

    def forward(self, x):
        self.seen.append([layer.training for _, layer in self.owner[0].named_layers()])
        return x

    def backward(self, grad_out):
        return grad_out


def test_predict_and_evaluate_restore_each_layers_own_mode():
    """A model may mix modes (a frozen BatchNorm in a model that trains): predict and evaluate
    switch every layer to eval and then put each one back as it was."""
    X = np.random.default_rng(0).standard_normal((6, 3))
    owner = []
    probe = ModeProbe(owner)
    model = Sequential(Dense(3, 4, rng=0), BatchNorm1d(4), Dropout(0.5, rng=1), Dense(4, 1, rng=2),
                       probe)
    owner.append(model)
    model[1].eval()  # freeze the BatchNorm statistics, keep Dropout on
    before = [(path, layer.training) for path, layer in model.named_layers()]
    assert [t for _, t in before] == [True, True, False, True, True, True]

    predict(model, X)
    assert [(p, layer.training) for p, layer in model.named_layers()] == before
    evaluate(model, MSE(), X, np.zeros((6, 1)), metrics=["accuracy"])
    assert [(p, layer.training) for p, layer in model.named_layers()] == before
    assert probe.seen == [[False] * len(before)] * 2  # both ran in eval mode throughout
    model.eval()
    model[2].train()  # the opposite mix
    before = [(path, layer.training) for path, layer in model.named_layers()]
    predict(model, X, batch_size=4)
    assert [(p, layer.training) for p, layer in model.named_layers()] == before


def test_float32_model_trains_in_float32():
    X, y = make_data()
    model = make_model().astype(np.float32)
    opt = Adam(model.parameters(), lr=0.01)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, step, logs=None):
            seen.append(self.model[0]._x.dtype)

    h = fit(model, MSE(), opt, X.astype(np.float64), y, epochs=2, batch_size=32,
            callbacks=[Spy()], verbose=0)
    assert set(seen) == {np.dtype(np.float32)}
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(v.dtype == np.float32 for st in opt.state.values() for v in st.values()
               if isinstance(v, np.ndarray))
    assert predict(model, X).dtype == np.float32
    assert np.all(np.isfinite(h["train_loss"]))


def test_class_scores_with_integer_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)  # classes 0, 1, 2
    model = Sequential(Dense(4, 3, rng=0))
    h = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.05), X, y, epochs=20,
            batch_size=30, metrics=["accuracy", "f1"], verbose=0)
    assert h["train_accuracy"][-1] > 0.8
    assert evaluate(model, SoftmaxCrossEntropy(), X, y, metrics=["accuracy"])["accuracy"] > 0.8


# ---------------------------------------------------------------------- metric thresholds
def sklearn_metrics():
    return pytest.importorskip("sklearn.metrics")


def binary_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, X[:, :1] + 0.3 * X[:, 1:] > 0


def assert_scores_match(sk, h, prefix, y_true, y_pred):
    """History scores equal scikit-learn's on boolean labels (zero_division=0)."""
    assert h[f"{prefix}accuracy"][-1] == sk.accuracy_score(y_true, y_pred)
    for name, fn in (("f1", sk.f1_score), ("precision", sk.precision_score),
                     ("recall", sk.recall_score)):
        expected = fn(y_true, y_pred, average="macro", zero_division=0)
        assert h[f"{prefix}{name}"][-1] == pytest.approx(expected, rel=1e-12), name


def test_sigmoid_bce_metrics_split_probabilities_at_one_half():
    """Sigmoid + BinaryCrossEntropy(), targets in {0, 1}: the metrics read p > 0.5 (the loss's
    decision_threshold), not p > 0 (true of every sigmoid output)."""
    sk = sklearn_metrics()
    X, positive = binary_data()
    y = positive.astype(np.float64)  # (N, 1) of 0.0 / 1.0
    Xv, yv = X[:80], y[:80]
    model = Sequential(Dense(2, 1, rng=0), Sigmoid())
    loss = BinaryCrossEntropy()
    h = fit(model, loss, Adam(model.parameters(), lr=0.1), X[80:], y[80:], epochs=40,
            metrics=["accuracy", "f1", "precision", "recall"], validation_data=(Xv, yv),
            verbose=0)
    p = predict(model, Xv)
    assert np.all(p > 0)  # at threshold 0 every sample would count as positive
    assert h["val_accuracy"][-1] > 0.9
    assert_scores_match(sk, h, "val_", yv.ravel() > 0.5, p.ravel() > 0.5)
    scores = evaluate(model, loss, Xv, yv, metrics=["accuracy", "f1"])
    assert scores["accuracy"] == h["val_accuracy"][-1]
    assert scores["f1"] == h["val_f1"][-1]
    # integer {0, 1} targets are read the same way
    assert evaluate(model, loss, Xv, yv.astype(np.int64), metrics=["accuracy"])["accuracy"] == \
        scores["accuracy"]
    # a metric passed as a partial keeps its own threshold
    own = evaluate(model, loss, Xv, yv, metrics={"acc0": partial(accuracy, threshold=0.0)})
    assert own["acc0"] == np.mean(yv > 0.5)  # everything predicted positive


def test_bce_on_logits_splits_at_zero():
    sk = sklearn_metrics()
    X, positive = binary_data(seed=1)
    y = positive.astype(np.int64)
    model = Sequential(Dense(2, 1, rng=0))
    loss = BinaryCrossEntropy(from_logits=True)
    h = fit(model, loss, Adam(model.parameters(), lr=0.1), X, y, epochs=40,
            metrics=["accuracy", "f1", "precision", "recall"], validation_data=(X, y),
            verbose=0)
    z = predict(model, X)
    assert h["val_accuracy"][-1] > 0.9
    assert_scores_match(sk, h, "val_", y.ravel() == 1, z.ravel() > 0)


def test_tanh_mse_plus_minus_one_targets_split_at_zero():
    """The QA study's setup: tanh outputs, MSE, targets in {-1, +1}: +1 if y_hat > 0."""
    sk = sklearn_metrics()
    X, y = make_data(n=120)
    model = qa_model()
    h = fit(model, MSE(half_grad=True), Adam(model.parameters(), lr=0.01), X[:80], y[:80],
            epochs=30, batch_size=16, metrics=["accuracy", "f1", "precision", "recall"],
            validation_data=(X[80:], y[80:]), verbose=0)
    pred = np.where(predict(model, X[80:]) > 0, 1, -1).ravel()
    assert h["val_accuracy"][-1] > 0.8
    assert_scores_match(sk, h, "val_", y[80:].ravel().astype(int), pred)


# ---------------------------------------------------------------------- divergence
def diverging_setup():
    X, y = make_data(n=64)
    model = Sequential(Dense(5, 8, rng=0), Identity(), Dense(8, 1, rng=1))
    return model, SGD(model.parameters(), lr=5.0), X, y


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_raises_naming_epoch_and_step():
    model, opt, X, y = diverging_setup()
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch (\d+), step (\d+)") as info:
        fit(model, MSE(), opt, X, y, epochs=100, batch_size=16, verbose=0)
    err = info.value
    assert err.step == opt.step_count + 1  # the step that was about to run
    assert err.epoch == (err.step - 1) // 4 + 1  # 64 rows / 16 = 4 steps per epoch
    assert f"epoch {err.epoch}, step {err.step}" in str(err)
    assert "on_nonfinite='stop'" in str(err)
    assert isinstance(err, RuntimeError)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_stop_records_the_event_and_returns_the_history():
    model, opt, X, y = diverging_setup()
    with pytest.raises(TrainingDiverged) as info:
        fit(model, MSE(), opt, X, y, epochs=100, batch_size=16, verbose=0)
    model, opt, X, y = diverging_setup()
    ended = []

    class End(Callback):
        def on_train_end(self, logs=None):
            ended.append(True)

    traj = WeightTrajectory()
    h = fit(model, MSE(), opt, X, y, epochs=100, batch_size=16, on_nonfinite="stop",
            callbacks=[End(), traj], verbose=0)
    assert h.diverged and ended == [True]
    assert len(h) == info.value.epoch - 1  # the epochs completed before the bad step
    assert np.all(np.isfinite(h["train_loss"]))
    # model and optimizer are back at the end of the last completed epoch, usable
    flat = np.concatenate([p.data.ravel() for p in model.parameters()])
    assert np.array_equal(flat, traj.weights[-1]) and np.all(np.isfinite(flat))
    assert opt.step_count == h["steps"][-1]
    assert np.isfinite(evaluate(model, MSE(), X, y)["loss"])
    (event,) = h.events
    assert event["event"] == "nonfinite"
    assert (event["epoch"], event["step"]) == (info.value.epoch, info.value.step)
    assert "[nonfinite]" in str(h)


def test_a_non_finite_loss_value_also_stops_training():
    class Flaky(MSE):
        calls = 0

        def value(self, pred, target):
            Flaky.calls += 1
            return math.inf if Flaky.calls == 6 else super().value(pred, target)

    X, y = make_data(n=40)
    model = qa_model()
    with pytest.raises(TrainingDiverged, match="epoch 2, step 6: the loss is inf"):
        fit(model, Flaky(), SGD(model.parameters(), lr=0.01), X, y, epochs=3, batch_size=8,
            verbose=0)


def test_divergence_on_validation_data_is_caught_too():
    class ValOnly(MSE):
        def value(self, pred, target):
            return math.nan if len(pred) == 7 else super().value(pred, target)

    X, y = make_data(n=20)
    model = qa_model()
    h = fit(model, ValOnly(), SGD(model.parameters(), lr=0.01), X, y, epochs=3,
            validation_data=(X[:7], y[:7]), verbose=0, on_nonfinite="stop")
    assert len(h) == 0 and h.events[0]["phase"] == "validation"


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"batch_size": 2.5}, ValueError, "batch_size must be a positive int"),
        ({"epochs": -1}, ValueError, "epochs must be an int >= 0"),
        ({"on_nonfinite": "ignore"}, ValueError, "on_nonfinite must be 'raise' or 'stop'"),
        ({"verbose": 3}, ValueError, "verbose must be 0, 1 or 2"),
        ({"seed": -1}, ValueError, "seed must be an int >= 0"),
        ({"metrics": ["acc"]}, ValueError, "unknown metric 'acc'"),
        ({"metrics": [lambda t, p: 0.0]}, ValueError, "cannot name the metric"),
        ({"callbacks": [Callback]}, TypeError, "pass an instance, not the class"),
        ({"validation_data": np.zeros((3, 5))}, ValueError, "must be a pair"),
        ({"X": np.full((10, 5), np.nan)}, ValueError, "X contains 50 non-finite"),
        # the sum of these values overflows, one is infinite: still found, and counted
        ({"X": np.where(np.eye(10, 5) > 0, np.inf, 1e308)}, ValueError,
         "X contains 5 non-finite"),
        ({"y": np.r_[np.ones(9), -np.inf][:, None]}, ValueError, "y contains 1 non-finite"),
        ({"y": np.ones((9, 1))}, ValueError, "X has 10 samples but y has shape"),
        ({"X": np.array([["a"] * 5] * 10)}, ValueError, "X must be a numeric array"),
        ({"y": np.array([["yes"]] * 10)}, ValueError, "y must be a numeric array, got dtype <U3"),
        ({"y": [["1"], [2.0]] * 5}, ValueError, "y must be a numeric array, got dtype <U32"),
        ({"y": np.array([["a"]] * 10, dtype=object)}, ValueError,
         "y must be a numeric array, got dtype object"),
        ({"X": [[1.0] * 5, [1.0]] * 5}, ValueError, "X cannot be read as an array"),
        ({"validation_data": (np.ones((4, 5)), np.array([["no"]] * 4))}, ValueError,
         "y_val must be a numeric array, got dtype <U2"),
        ({"validation_data": (np.array([["x"] * 5] * 4), np.ones((4, 1)))}, ValueError,
         "X_val must be a numeric array, got dtype <U1"),
        ({"validation_split": 0.2, "validation_data": (np.ones((4, 5)), np.ones((4, 1)))},
         ValueError, "pass validation_data or validation_split, not both"),
        ({"validation_split": 1.0}, ValueError, r"validation_split must lie in \[0.0, 1.0\)"),
        ({"validation_split": -0.1}, ValueError, "validation_split must be >= 0.0"),
        ({"validation_split": "0.2"}, ValueError, "validation_split must be a finite number"),
        ({"validation_split": True}, ValueError, "validation_split must be a finite number"),
        ({"validation_split": 0.0}, ValueError, "validation_split=0.0 of 10 samples leaves no "
                                                "validation samples"),
        ({"validation_split": 1e-17}, ValueError, "leaves no validation samples"),
        ({"validation_split": 0.95}, ValueError, "leaves no training samples"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    model = qa_model()
    args = {"X": np.ones((10, 5)), "y": np.ones((10, 1)), "epochs": 1, "verbose": 0}
    args.update(kwargs)
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(error, match=match):
        fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, **args)


def test_numeric_object_arrays_are_accepted():
    """An object array of numbers (e.g. a pandas object column) is read as numbers."""
    model = qa_model()
    y = np.ones((10, 1)).astype(object)
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), np.ones((10, 5)), y, epochs=1,
            verbose=0)
    assert len(h) == 1
    with pytest.raises(ValueError, match="y must be a numeric array"):
        evaluate(model, MSE(), np.ones((2, 5)), np.array([["a"], ["b"]]))


def test_fit_rejects_swapped_arguments():
    model = qa_model()
    with pytest.raises(TypeError, match="loss must be a Loss"):
        fit(model, SGD(model.parameters(), lr=0.1), MSE(), np.ones((4, 5)), np.ones((4, 1)),
            epochs=1)


# ---------------------------------------------------------------------- evaluate, predict
def test_evaluate_and_predict():
    X, y = make_data(n=50)
    model = make_model()
    fit(model, MSE(), Adam(model.parameters(), lr=0.01), X, y, epochs=2, verbose=0)
    pred = predict(model, X)
    assert pred.shape == (50, 1)
    np.testing.assert_allclose(predict(model, X, batch_size=7), pred, rtol=1e-12)
    scores = evaluate(model, MSE(), X, y, metrics=["accuracy"])
    assert scores == {"loss": MSE().forward(pred, y), "accuracy": accuracy(y, pred)}
    assert predict(model, X.tolist()).shape == (50, 1)


# ---------------------------------------------------------------------- metrics and callbacks
def test_metrics_by_name_function_and_dict():
    X, y = make_data(n=40)

    def hits(y_true, y_pred):
        return float(np.sum((y_pred > 0) == (y_true > 0)))

    model = qa_model()
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=2,
            metrics={"acc": accuracy, "n": hits}, validation_data=(X, y), verbose=0)
    assert {"train_acc", "train_n", "val_acc", "val_n"} <= set(h.keys())
    np.testing.assert_allclose(h["val_acc"] * 40, h["val_n"])
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, metrics=hits,
            verbose=0)
    assert "train_hits" in h


def test_training_metrics_use_the_epochs_own_predictions():
    """train_accuracy is computed on the predictions made during the epoch (before each
    step's update): for full-batch GD that is the accuracy of the weights at epoch start."""
    X, y = make_data(n=50)
    a = qa_model()
    b = qa_model()
    h = fit(a, MSE(), SGD(a.parameters(), lr=0.5), X, y, epochs=1, batch_size=None,
            metrics=["accuracy"], verbose=0)
    assert h["train_accuracy"][0] == accuracy(y, b.forward(X))


def test_callback_hooks_run_in_order_and_can_stop_training():
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            calls.append(f"batch {batch} {logs['batch_size']} {logs['step']}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end {epoch} {logs['epoch']}")
            if epoch == 1:
                self.run.stop()

        def on_train_end(self, logs=None):
            calls.append(f"train_end {logs['epoch']}")

    X, y = make_data(n=10)
    model = qa_model()
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=5, batch_size=6,
            callbacks=[Recorder()], verbose=0)
    # on_batch_end gets the batch index within the epoch (as Keras), the step in its logs
    assert calls == ["train_begin", "epoch_begin 0", "batch 0 6 1", "batch 1 4 2",
                     "epoch_end 0 1", "epoch_begin 1", "batch 0 6 3", "batch 1 4 4",
                     "epoch_end 1 2", "train_end 2"]
    assert len(h) == 2


def test_verbose_levels(capsys):
    X, y = make_data(n=10)
    model = qa_model()
    opt = SGD(model.parameters(), lr=0.1)
    fit(model, MSE(), opt, X, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")
    # a bar only on a terminal: captured output is not one, so one line per epoch, as Keras
    for verbose in (1, 2):
        fit(model, MSE(), opt, X, y, epochs=2, verbose=verbose)
        out, err = capsys.readouterr()
        lines = out.splitlines()
        assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
        assert "train_loss=" in lines[0] and err == ""


# ---------------------------------------------------------------------- History
def sample_history() -> History:
    h = History()
    h.append({"epoch": 1, "train_loss": 0.5, "lr": 0.1, "steps": 3, "time": 0.01})
    h.append({"epoch": 2, "train_loss": 0.25, "val_loss": 0.4, "lr": 0.1, "steps": 6,
              "time": 0.02})
    h.events.append({"event": "nonfinite", "epoch": 3, "step": 7, "message": "boom"})
    return h


def test_history_fills_new_and_missing_columns_with_nan():
    h = sample_history()
    assert len(h) == 2
    assert np.isnan(h["val_loss"][0]) and h["val_loss"][1] == 0.4
    assert h.last["train_loss"] == 0.25
    with pytest.raises(KeyError, match="no column 'val_accuracy'; it has"):
        h["val_accuracy"]
    with pytest.raises(TypeError, match="must be numbers"):
        h.append({"epoch": "three"})


def test_history_answers_keras_names_from_minidl_columns():
    X, y = make_data(n=40)
    model = make_model()
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=3, batch_size=8,
            validation_split=0.25, metrics=["accuracy"], verbose=0)
    for keras, ours in (("loss", "train_loss"), ("accuracy", "train_accuracy"),
                        ("val_loss", "val_loss"), ("val_accuracy", "val_accuracy")):
        assert keras in h
        assert np.array_equal(h[keras], h[ours]), keras
    assert h.keys() == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                        "lr", "steps", "time"]  # each value is stored once, under minidl's name
    assert "f1" not in h and "val_f1" not in h
    with pytest.raises(KeyError, match=r"History has no column 'f1'; it has \['epoch'"):
        h["f1"]
    h.append({"train_loss": 0.5})
    assert h["loss"][-1] == 0.5  # an alias, not a copy


def test_history_json_round_trip_is_exact_and_strict():
    h = sample_history()
    text = h.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = History.from_json(text)
    assert_same_history(h, back, ignore=())
    assert back["epoch"].dtype == np.int64


def test_history_to_dataframe():
    df = sample_history().to_dataframe()
    assert list(df.columns) == ["epoch", "train_loss", "lr", "steps", "time", "val_loss"]
    assert df["train_loss"].tolist() == [0.5, 0.25]
    assert len(df) == 2


def test_history_printout():
    h = sample_history()
    text = str(h)
    assert text.splitlines()[0].split() == ["epoch", "train_loss", "lr", "steps", "time",
                                            "val_loss"]
    assert "0.2500" in text and "[nonfinite] boom" in text
    long = History({"epoch": list(range(1, 101)), "train_loss": [1.0] * 100})
    lines = long.to_string(max_rows=6).splitlines()
    assert len(lines) == 1 + 6 + 1 and "..." in lines[4]
    assert "100 epochs" in repr(long)


def test_public_api_is_exported():
    for name in ("fit", "evaluate", "predict", "History", "Trainer", "save", "load",
                 "TrainingDiverged", "CheckpointError", "callbacks", "schedules", "metrics"):
        assert hasattr(minidl, name) and name in minidl.__all__
    assert issubclass(TrainingDiverged, minidl.MinidlError)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_non_finite_predictions_become_training_diverged():
    class Poison(Callback):
        def on_batch_end(self, batch, logs=None):
            if logs["step"] == 3:
                self.model[0].weight.data[...] = np.inf

    X, y = make_data(n=40)
    model = Sequential(Dense(5, 4, rng=0), Identity(), Dense(4, 1, rng=1))
    with pytest.raises(TrainingDiverged, match="epoch 1, step 4: non-finite predictions") as info:
        fit(model, MSE(), SGD(model.parameters(), lr=0.01), X, y, epochs=2, batch_size=8,
            callbacks=[Poison()], verbose=0)
    assert isinstance(info.value.__cause__, minidl.NonFiniteError)


def test_predict_and_evaluate_check_their_batch_size():
    model = qa_model()
    with pytest.raises(ValueError, match="predict: batch_size must be a positive int"):
        predict(model, np.ones((3, 5)), batch_size=0)
    with pytest.raises(ValueError, match="evaluate: batch_size must be a positive int"):
        evaluate(model, MSE(), np.ones((3, 5)), np.ones((3, 1)), batch_size=-2)


def test_stop_mode_does_not_change_a_healthy_run():
    """on_nonfinite="stop" snapshots state each epoch; that must not perturb anything."""
    X, y = make_data()
    runs = []
    for mode in ("raise", "stop"):
        model = make_model()
        opt = Adam(model.parameters(), lr=0.01)
        h = fit(model, MSE(), opt, X, y, epochs=3, batch_size=16, on_nonfinite=mode, verbose=0)
        runs.append((h, model.state_dict(), opt.state_dict()))
    assert_same_history(runs[0][0], runs[1][0])
    assert_same_arrays(runs[0][1], runs[1][1])


@pytest.mark.parametrize("call", [
    lambda m, X, y: minidl.evaluate(m, "mse", X, y),
    lambda m, X, y: fit(m, "mse", SGD(m.parameters(), lr=0.1), X, y, epochs=1, verbose=0),
])
def test_a_loss_given_by_name_gets_a_clear_error(call):
    X, y = make_data(n=10)
    with pytest.raises(TypeError, match=r"loss must be a Loss, got 'mse' \(losses are objects: "
                                        r"pass e.g. minidl.MSE\(\), not a name\)"):
        call(qa_model(), X, y)


def test_validation_runs_in_training_sized_batches():
    """A large validation set goes through the model in batch_size chunks (as Keras does), so a
    convolution never builds its im2col matrix for the whole set at once."""
    seen = []

    class Spy(Tanh):
        def forward(self, x):
            if not self.training:
                seen.append(len(x))
            return super().forward(x)

    X, y = make_data(n=64)
    Xv, yv = make_data(n=70, seed=1)
    model = Sequential(Dense(5, 1, rng=0), Spy())
    fit(model, MSE(), Adam(model.parameters(), lr=0.01), X, y, epochs=1, batch_size=32,
        validation_data=(Xv, yv), verbose=0)
    assert seen == [32, 32, 6]
    seen.clear()
    fit(model, MSE(), Adam(model.parameters(), lr=0.01), X, y, epochs=1, batch_size=None,
        validation_data=(Xv, yv), verbose=0)
    assert seen == [70]  # full-batch training validates in one piece


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_finite_inputs_whose_sum_overflows_are_accepted():
    """The finiteness check sums the inputs first; an overflowing sum of finite values must not
    be taken for a non-finite value."""
    X = np.full((10, 5), 1e308)
    with np.errstate(over="ignore"):
        assert np.isinf(X.sum())
    model = Sequential(Dense(5, 1, rng=0))
    history = fit(model, MSE(), SGD(model.parameters(), lr=0.0), X, np.ones((10, 1)), epochs=1,
                  verbose=0, on_nonfinite="stop")
    assert len(history) <= 1  # the inputs were accepted; what training makes of them is its own


# ------------------------------------------------------------------ issue 19: careless users
def _small_fit(**kwargs):
    X, y = make_data(20)
    model = make_model(hidden=4)
    opt = kwargs.pop("optimizer", None) or minidl.SGD(model.parameters(), lr=0.1)
    return fit(model, kwargs.pop("loss", MSE()), opt, X, y, epochs=kwargs.pop("epochs", 1),
               verbose=0, **kwargs), model


def test_a_metric_named_loss_cannot_overwrite_the_loss():
    # issue 19: fit(metrics={"loss": f}) wrote f's value over train_loss and val_loss
    X, y = make_data(20)
    with pytest.raises(ValueError, match=r"metric name 'loss' is taken"):
        _small_fit(metrics={"loss": accuracy}, validation_data=(X, y))


def test_an_optimizer_over_another_model_is_refused():
    # issue 19: trained nothing and returned a normal History
    other = make_model(hidden=4)
    with pytest.raises(ValueError, match=r"fit: the optimizer Adam updates none of the model's "
                                         r"4 parameters"):
        _small_fit(optimizer=minidl.Adam(other.parameters()))
    model = make_model(hidden=4)  # a part of the model (others frozen) is fine
    X, y = make_data(20)
    fit(model, MSE(), minidl.SGD(model[0].parameters(), lr=0.1), X, y, epochs=1,
        verbose=0)


@pytest.mark.parametrize("shuffle", ["no", "False", 0, None, np.float64(1.0)])
def test_shuffle_must_be_a_bool(shuffle):
    # issue 19: fit(shuffle="no") shuffled
    with pytest.raises(ValueError, match=r"fit: shuffle must be True or False, got "):
        _small_fit(shuffle=shuffle, batch_size=4)


class _ValueLoss(MSE):
    def __init__(self, returned):
        super().__init__()
        self.returned = returned

    def value(self, pred, target):
        return self.returned


class _ForwardLoss(MSE):
    def __init__(self, returned):
        super().__init__()
        self.returned = returned

    def forward(self, pred, target):
        super().forward(pred, target)
        return self.returned


class _GradientLoss(MSE):
    def gradient(self, pred, target):
        return None


@pytest.mark.parametrize(("loss", "match"), [
    (_ValueLoss(None), r"_ValueLoss\.value\(\) returned NoneType None; a loss returns one"),
    (_ValueLoss("0.5"), r"_ValueLoss\.value\(\) returned str '0\.5'"),
    (_ValueLoss(np.ones(3)), r"_ValueLoss\.value\(\) returned an array of shape \(3,\)"),
    (_ForwardLoss(None), r"_ForwardLoss\.forward\(\) returned NoneType None"),
    (_ForwardLoss("abc"), r"_ForwardLoss\.forward\(\) returned str 'abc'"),
    (_ForwardLoss(np.ones((2, 1))), r"_ForwardLoss\.forward\(\) returned an array of shape"),
    (_GradientLoss(), r"_GradientLoss\.gradient\(\) returned NoneType None; it must return "
                      r"dL/dpred"),
])
def test_a_loss_returning_the_wrong_type_is_named(loss, match):
    # issue 19: raw TypeError/ValueError from float() or math.isfinite, or "0.5" read as 0.5
    with pytest.raises(TypeError, match=match):
        _small_fit(loss=loss)


def test_a_zero_dimensional_loss_value_is_a_number():
    history, _ = _small_fit(loss=_ValueLoss(np.array(0.25)))
    assert history["train_loss"] == [0.25]


@pytest.mark.parametrize(("returned", "what"), [
    ("0.9", r"str '0\.9'"), (None, "NoneType None"),
    (np.ones(2), r"an array of shape \(2,\) \(dtype float64\)")])
def test_a_metric_returning_the_wrong_type_is_named(returned, what):
    def my_metric(y_true, y_pred):
        return returned
    X, y = make_data(20)
    with pytest.raises(TypeError, match=rf"the metric 'my_metric' \(.*my_metric.*\) returned "
                                        rf"{what}; a metric f\(y_true, y_pred\) returns one"):
        _small_fit(metrics=[my_metric])
    model = make_model(hidden=4)
    with pytest.raises(TypeError, match=rf"the metric 'my_metric' .* returned {what}"):
        evaluate(model, MSE(), X, y, metrics=[my_metric])


def test_inputs_too_large_for_a_float32_model_are_said_to_overflow():
    # issue 19: X of 1e300 into a float32 model was called "non-finite"
    X, y = make_data(20)
    model = make_model(hidden=4).astype(np.float32)
    X[3, 1] = 1e300
    X[5, 0] = -1e200
    with pytest.raises(ValueError, match=r"X holds 2 value\(s\) too large for the model's dtype "
                                         r"float32 \(largest magnitude 1e\+300, float32 holds up "
                                         r"to 3\.4e\+38\): they overflow"):
        fit(model, MSE(), minidl.SGD(model.parameters(), lr=0.1), X, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y holds 20 value\(s\) too large"):
        fit(model, MSE(), minidl.SGD(model.parameters(), lr=0.1), make_data(20)[0],
            np.full((20, 1), 1e39), epochs=1, verbose=0)
    X[3, 1] = np.inf  # a real infinity is still non-finite
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value\(s\)"):
        minidl.predict(make_model(hidden=4), X)


@pytest.mark.parametrize("returned", [np.True_, np.array(True), np.array(3), np.float32(0.5),
                                      np.int64(2), True])
def test_a_metric_returning_a_numpy_scalar_or_bool_is_a_number(returned):
    """The review of issue 19's check: np.True_ (what np.all returns) is no numbers.Real, and
    a metric returning it had worked before the check."""
    def my_metric(y_true, y_pred):
        return returned
    history, _ = _small_fit(metrics=[my_metric])
    assert history["train_my_metric"][-1] == float(returned)


def test_history_history_is_keras_s_dict_of_lists():
    h = History()
    h.append({"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.75, "lr": 0.1, "steps": 3})
    h.append({"epoch": 2, "train_loss": 0.25, "train_accuracy": 1.0, "val_loss": 0.4,
              "lr": 0.1, "steps": 6})
    d = h.history
    assert list(d) == ["loss", "accuracy", "lr", "steps", "val_loss"]
    assert d["loss"] == [0.5, 0.25] and d["accuracy"] == [0.75, 1.0] and d["steps"] == [3, 6]
    assert all(type(v) is list for v in d.values())
    assert math.isnan(d["val_loss"][0]) and d["val_loss"][1] == 0.4
    assert h.epoch == [0, 1]  # Keras's History.epoch: 0-based indices
    d["loss"].append(9.0)  # a copy: the History is unchanged
    assert len(h["loss"]) == 2 and h.history["loss"] == [0.5, 0.25]
