"""minidl.sklearn's estimators as a scikit-learn user meets them: in a Pipeline and a
GridSearchCV on the digits data, reproducible from random_state, with errors that name the
parameter at fault. (scikit-learn's own estimator checks are in test_sklearn_checks.py.)"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import minidl
from minidl.sklearn import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600], X[600:900], y[600:900]


def test_pipeline_on_digits(digits):
    X, y, X_test, y_test = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier((32,), epochs=15, learning_rate=0.01,
                                                       random_state=0))
    pipe.fit(X, y)
    clf = pipe[-1]
    assert clf.n_features_in_ == 64 and list(clf.classes_) == list(range(10))
    assert clf.n_iter_ == 15 and len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 5
    assert pipe.score(X_test, y_test) > 0.85
    proba = pipe.predict_proba(X_test)
    assert proba.shape == (300, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(pipe.predict(X_test), clf.classes_[proba.argmax(axis=1)])


def test_grid_search_on_digits(digits):
    X, y, X_test, y_test = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(epochs=10, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(), (24,)],
                               "mlpclassifier__learning_rate": [1e-4, 1e-2]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["mlpclassifier__learning_rate"] == 1e-2
    scores = grid.cv_results_["mean_test_score"]
    assert len(scores) == 4 and scores.max() > scores.min() + 0.1
    assert grid.score(X_test, y_test) > 0.85
    best = grid.best_estimator_[-1]
    assert best.get_params()["learning_rate"] == 1e-2 and hasattr(best, "model_")


def test_params_round_trip_and_clone():
    clf = MLPClassifier((5, 3), "tanh", optimizer="sgd", optimizer_params={"momentum": 0.9},
                        dtype="float32", random_state=3)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (5, 3) and params["optimizer_params"] == {
        "momentum": 0.9}
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    assert clf.set_params(epochs=7) is clf and clf.epochs == 7


def test_the_model_is_a_minidl_model_with_the_asked_shape_dtype_and_optimizer():
    X = np.random.default_rng(0).standard_normal((30, 4))
    y = np.array(["a", "b", "c"] * 10)
    clf = MLPClassifier((5, 3), "tanh", optimizer="SGD", optimizer_params={"momentum": 0.9},
                        dtype="float32", epochs=2, random_state=0).fit(X, y)
    assert isinstance(clf.model_, minidl.RecursiveMLP)
    assert clf.model_.layer_sizes == [4, 5, 3, 3]
    assert all(p.dtype == np.float32 for p in clf.model_.parameters())
    assert isinstance(clf.model_.act, minidl.Tanh)
    assert list(clf.classes_) == ["a", "b", "c"] and set(clf.predict(X)) <= {"a", "b", "c"}
    linear = MLPClassifier((), epochs=1, random_state=0).fit(X, y)
    assert linear.model_.layer_sizes == [4, 3]


def test_a_custom_optimizer_class_is_used():
    class SignSGD(minidl.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, lr=lr)

        def update(self, param, grad, state, lr):
            param -= lr * np.sign(grad)

    X = np.random.default_rng(0).standard_normal((20, 3))
    reg = MLPRegressor((4,), optimizer=SignSGD, learning_rate=0.5, epochs=1,
                       batch_size=None, random_state=0)
    untrained = MLPRegressor((4,), epochs=0, random_state=0).fit(X, X[:, 0])
    assert untrained.n_iter_ == 0 and untrained.loss_curve_ == []
    start = untrained.model_.state_dict()
    reg.fit(X, X[:, 0])
    moved = [np.abs(reg.model_.state_dict()[k] - start[k]) for k in start]
    assert all(np.allclose(m[m > 0], 0.5) for m in moved)  # sign steps of exactly lr
    assert any((m > 0).any() for m in moved)


def test_same_random_state_gives_the_same_model_and_others_differ():
    X = np.random.default_rng(1).standard_normal((40, 5))
    y = (X[:, 0] > 0).astype(int)
    def proba(rs):
        return MLPClassifier((6,), epochs=5, batch_size=8, random_state=rs).fit(X, y) \
            .predict_proba(X)
    assert np.array_equal(proba(0), proba(0))
    assert not np.array_equal(proba(0), proba(1))
    assert np.array_equal(proba(np.random.default_rng(5)), proba(np.random.default_rng(5)))
    assert np.array_equal(proba(np.random.RandomState(5)), proba(np.random.RandomState(5)))
    assert not np.array_equal(proba(None), proba(None))  # fresh entropy, as in scikit-learn


def test_fitting_leaves_numpy_global_random_state_alone():
    X = np.random.default_rng(1).standard_normal((20, 3))
    before = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    MLPClassifier((4,), epochs=2, random_state=None).fit(X, X[:, 0] > 0)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], before[1]) and after[2] == before[2]


def test_early_stopping_holds_out_a_stratified_fraction_and_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 6))
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    clf = MLPClassifier((32,), learning_rate=0.05, epochs=300, batch_size=10,
                        early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                        random_state=0).fit(X, y)  # labels are noise: it overfits fast
    assert clf.n_iter_ < 300
    val_loss = clf.history_["val_loss"]
    assert clf.best_validation_loss_ == pytest.approx(val_loss.min())
    assert clf.n_iter_ == int(np.argmin(val_loss)) + 1 + 3
    # the kept weights are those of the best epoch, not the last
    from minidl.sklearn import _split
    _, val = _split(np.random.default_rng(0), 100, 0.2, y, "t")
    assert np.bincount(y[val]).tolist() == [16, 4]  # 20% of each class
    X_val, y_val = X[val], y[val]
    assert minidl.evaluate(clf.model_, minidl.SoftmaxCrossEntropy(), X_val, y_val)["loss"] \
        == pytest.approx(clf.best_validation_loss_)
    assert MLPClassifier(epochs=2).fit(X, y).best_validation_loss_ is None


def test_regressor_shapes_single_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    Y = np.c_[X[:, 0] - X[:, 1], 0.5 * X[:, 2]]
    one = MLPRegressor((16,), learning_rate=0.01, epochs=100, random_state=0).fit(X, Y[:, 0])
    assert one.predict(X).shape == (60,) and one.n_outputs_ == 1
    assert one.score(X, Y[:, 0]) > 0.9
    two = MLPRegressor((16,), learning_rate=0.01, epochs=100, random_state=0).fit(X, Y)
    assert two.predict(X).shape == (60, 2) and two.score(X, Y) > 0.9


def test_not_fitted_error():
    with pytest.raises(NotFittedError, match="MLPClassifier"):
        MLPClassifier().predict(np.zeros((1, 2)))
    with pytest.raises(NotFittedError, match="MLPRegressor"):
        MLPRegressor().predict(np.zeros((1, 2)))


def test_sample_weight_and_other_fit_params_are_refused():
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(TypeError, match="MLPClassifier.fit does not support sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=np.ones(4))
    with pytest.raises(TypeError, match=r"MLPRegressor.fit got unexpected .*\['epochs'\]"):
        MLPRegressor().fit(X, y, epochs=3)


def test_input_checks_are_scikit_learns():
    clf = MLPClassifier((3,), epochs=1, random_state=0).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="4 features"):
        clf.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(np.array([[np.nan, 1.0], [0.0, 1.0]]), [0, 1])
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(np.eye(3), [0.5, 1.5, 2.5])
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier().fit(np.eye(3), [1, 1, 1])
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(np.eye(4), [7, 7, 7, 7])
    assert list(clf.classes_) == [0, 1]  # a failed fit leaves the fitted state as it was


@pytest.mark.parametrize("params, match", [
    ({"hidden_layer_sizes": (4, 0)}, r"hidden_layer_sizes\[1\] must be a positive int"),
    ({"hidden_layer_sizes": "wide"}, r"hidden_layer_sizes\[0\] must be a positive int"),
    ({"activation": "softplus"}, "activation must be one of"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of"),
    ({"optimizer": minidl.Dense}, "optimizer must be one of"),
    ({"learning_rate": -1.0}, "learning_rate must be >= 0"),
    ({"optimizer_params": {"lr": 0.1}}, ("optimizer_params must not hold 'lr'"
                                         ".*set the learning rate with learning_rate=")),
    ({"optimizer_params": [("momentum", 0.9)]}, "optimizer_params must be a dict"),
    ({"optimizer_params": {"momentun": 0.9}}, r"optimizer_params \{'momentun': 0.9\} do not "
                                              r"fit Adam"),
    ({"epochs": 2.5}, "epochs must be an int >= 0"),
    ({"batch_size": 0}, "batch_size must be a positive int or None"),
    ({"early_stopping": True, "validation_fraction": 1.0}, r"validation_fraction must lie in"),
    ({"early_stopping": True, "validation_fraction": 0.01}, ("validation_fraction=0.01 of 20 "
                                                             "samples leaves no validation")),
    ({"n_iter_no_change": 0}, "n_iter_no_change must be a positive int"),
    ({"dtype": "int32"}, "dtype must be float32 or float64, got 'int32'"),
    ({"dtype": "nonsense"}, "dtype must be float32 or float64"),
    ({"random_state": -1}, "random_state must be an int >= 0"),
    ({"random_state": 1.5}, "random_state must be an int >= 0"),
    ({"verbose": 3}, "verbose must be 0, 1 or 2"),
    ({"verbose": True}, "verbose must be 0, 1 or 2"),
    ({"activation": ["relu"]}, r"activation must be one of .*got \['relu'\]"),
    *[({"early_stopping": v}, f"early_stopping must be True or False, got {re.escape(repr(v))}")
      for v in ["False", "no", "", None, 1, 0.0, float("nan"), [True]]],
])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_bad_parameters_are_named_at_fit(cls, params, match):
    est = cls(**params)  # scikit-learn's convention: __init__ stores, fit checks
    X = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match=f"{cls.__name__}: {match}"):
        est.fit(X, np.arange(20) % 2)


def test_importing_minidl_does_not_import_sklearn():
    code = ("import sys, minidl; assert 'sklearn' not in sys.modules; "
            "import minidl.sklearn; assert 'sklearn' in sys.modules; "
            "assert minidl.sklearn.MLPClassifier")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_sklearn_the_import_error_says_what_to_install():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import minidl.sklearn\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert "pip install -e '.[sklearn]' in minidl's clone" in out


# ---------------------------------------------------------------------- promises (issue 19)
class FitSpy:
    """Stands in for ``minidl.fit`` inside minidl.sklearn: records each call's arguments and
    runs the real one."""

    def __init__(self, monkeypatch):
        import minidl.sklearn as sk
        self.calls = []
        real = sk.fit

        def spy(model, loss, opt, X, y, **kwargs):
            self.calls.append({"X": X.copy(), "y": np.array(y, copy=True), **kwargs})
            return real(model, loss, opt, X, y, **kwargs)
        monkeypatch.setattr(sk, "fit", spy)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_random_state_drives_the_shuffling_not_only_the_weights(cls, monkeypatch):
    X = np.random.default_rng(1).standard_normal((30, 3))
    y = np.arange(30) % 2
    spy = FitSpy(monkeypatch)
    for rs in (0, 0, 1, 2, np.random.default_rng(7), np.random.default_rng(7)):
        cls((4,), epochs=1, batch_size=5, random_state=rs).fit(X, y)
    seeds = [call["seed"] for call in spy.calls]
    assert all(isinstance(s, int) for s in seeds), seeds  # never None (fresh entropy)
    assert seeds[0] == seeds[1] and seeds[4] == seeds[5]  # the same state, the same order
    assert len({seeds[0], seeds[2], seeds[3], seeds[4]}) == 4  # another state, another order
    assert all(call.get("shuffle", True) is True for call in spy.calls)  # fit shuffles


def test_the_shuffling_follows_random_state_behind_identical_weights(monkeypatch):
    """Two fits whose weights start equal differ only by their batches' order: the model
    after one epoch differs when the random_state differs."""
    import minidl.sklearn as sk

    X = np.random.default_rng(1).standard_normal((40, 3))
    y = np.arange(40) % 2
    real = sk.RecursiveMLP

    def same_weights(sizes, **kwargs):  # the weights ignore random_state; the shuffling not
        return real(sizes, **{**kwargs, "rng": np.random.default_rng(123)})
    monkeypatch.setattr(sk, "RecursiveMLP", same_weights)

    def weights(rs):
        model = MLPClassifier((4,), epochs=1, batch_size=4, learning_rate=0.1,
                              random_state=rs).fit(X, y).model_
        return np.concatenate([v.ravel() for v in model.state_dict().values()])
    assert np.array_equal(weights(0), weights(0))
    assert not np.array_equal(weights(0), weights(1))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_early_stopping_never_trains_on_its_validation_rows(cls, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    X[:, 0] = np.arange(50)  # each row tells its index
    y = np.arange(50) % 2
    spy = FitSpy(monkeypatch)
    cls((3,), epochs=2, early_stopping=True, validation_fraction=0.2, random_state=0).fit(X, y)
    (call,) = spy.calls
    X_val, _ = call["validation_data"]
    train_rows, val_rows = set(call["X"][:, 0].tolist()), set(X_val[:, 0].tolist())
    assert not train_rows & val_rows
    assert train_rows | val_rows == set(range(50))
    assert len(val_rows) == 10 and len(call["X"]) == 40


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_fit_never_rewrites_a_constructor_parameter(cls):
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = np.arange(20) % 2
    opt_params = {"betas": (0.8, 0.9)}
    given = {"hidden_layer_sizes": 5, "activation": "tanh", "optimizer": "ADAM",
             "optimizer_params": opt_params, "epochs": 2, "batch_size": None,
             "early_stopping": True, "validation_fraction": 0.25, "random_state": 3,
             "dtype": np.float32}
    est = cls(**given)
    est.fit(X, y)
    params = est.get_params()
    for name, value in given.items():
        assert params[name] is value, name  # the very object given: an int stays an int
    assert opt_params == {"betas": (0.8, 0.9)}
    sizes = [5, 4]
    cls(hidden_layer_sizes=sizes, epochs=1, random_state=0).fit(X, y)
    assert sizes == [5, 4]


# ------------------------------------------------------- scikit-learn's own names (issue 20)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_scikit_learns_names_set_the_minidl_parameters(cls):
    est = cls(hidden_layer_sizes=(4,), max_iter=3, learning_rate_init=0.05, solver="sgd",
              momentum=0.5, random_state=0)
    params = est.get_params()
    assert (params["epochs"], params["learning_rate"], params["optimizer"]) == (3, 0.05, "sgd")
    assert params["optimizer_params"] == {"momentum": 0.5, "nesterov": True}
    assert "max_iter" not in params
    X = np.random.default_rng(0).standard_normal((30, 2))
    est.fit(X, np.arange(30) % 2)
    assert est.n_iter_ == 3 and type(est.model_) is minidl.RecursiveMLP
    assert clone(est).get_params() == params
    est.set_params(max_iter=2, beta_1=0.8, solver="adam")
    assert est.epochs == 2 and est.optimizer == "adam"
    assert est.optimizer_params == {"betas": (0.8, 0.999)}
    est.set_params(learning_rate_init=0.01)
    assert est.learning_rate == 0.01


def test_scikit_learns_sgd_means_its_momentum_and_adam_its_betas():
    assert MLPClassifier(solver="sgd").optimizer_params == {"momentum": 0.9, "nesterov": True}
    clf = MLPClassifier(beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    assert clf.optimizer == "adam"
    assert clf.optimizer_params == {"betas": (0.8, 0.99), "eps": 1e-7}


def test_a_grid_over_scikit_learns_names(digits):
    X, y, _, _ = digits
    grid = GridSearchCV(MLPClassifier((8,), random_state=0),
                        {"max_iter": [1, 2], "learning_rate_init": [1e-2]}, cv=2)
    grid.fit(X[:200], y[:200])
    assert grid.best_params_["max_iter"] in (1, 2)
    assert grid.best_estimator_.epochs == grid.best_params_["max_iter"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"alpha": 1e-4}, TypeError, r"alpha= is not supported.*weight_decay"),
    ({"tol": 1e-4}, TypeError, r"tol= is not supported.*early_stopping=True"),
    ({"warm_start": True}, TypeError, r"warm_start= is not supported"),
    ({"solver": "lbfgs"}, ValueError, r"solver='lbfgs' is not available.*optimizer="),
    ({"max_iter": 5, "epochs": 3}, TypeError, r"both max_iter=.*and epochs="),
    ({"learning_rate_init": 0.1, "learning_rate": 0.2}, TypeError,
     r"both learning_rate_init=.*and learning_rate="),
    ({"momentum": 0.9}, TypeError, r"momentum= belongs to scikit-learn's solver='sgd'"),
    ({"max_itr": 5}, TypeError, r"__init__\(\) got an unexpected keyword argument 'max_itr'"),
])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_scikit_learns_names_without_a_minidl_equivalent_are_clear_errors(cls, kwargs, error,
                                                                           match):
    with pytest.raises(error, match=f"^{cls.__name__}") as info:
        cls(**kwargs)
    assert re.search(match, str(info.value))
    assert "_MinidlMLP" not in str(info.value)
