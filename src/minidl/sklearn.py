"""scikit-learn estimators on minidl: :class:`MLPClassifier` and :class:`MLPRegressor`.

Each ``fit`` builds a :class:`~minidl.RecursiveMLP` (``[n_features, *hidden_layer_sizes,
n_outputs]``, the hidden activation after every hidden layer, a linear output) and trains it
with :func:`minidl.fit`: softmax cross-entropy over the classes for the classifier, the mean
squared error for the regressor. They follow scikit-learn's conventions (``get_params`` /
``set_params``, ``clone``, ``fit`` / ``predict`` / ``score``, ``classes_``, ``n_features_in_``,
``NotFittedError``, input checks by scikit-learn's own ``validate_data``), so they work in a
``Pipeline`` and a ``GridSearchCV``::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from minidl.sklearn import MLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier((32,), epochs=30, random_state=0))

Randomness: every draw (initial weights, the shuffling of each epoch, the early-stopping split)
comes from one ``numpy.random.Generator`` made from ``random_state`` (an int, a Generator, a
legacy ``RandomState`` that a seed is drawn from, or None for fresh entropy), so a fixed int
gives the same model bit for bit.

scikit-learn's own ``MLPClassifier`` names work where minidl has the same thing (see
:data:`SKLEARN_NAMES`): ``max_iter`` sets ``epochs``, ``learning_rate_init`` sets
``learning_rate``, ``solver="adam"|"sgd"`` sets ``optimizer`` (``"sgd"`` with scikit-learn's
nesterov momentum 0.9), ``momentum``, ``nesterovs_momentum``, ``beta_1``, ``beta_2`` and
``epsilon`` set ``optimizer_params``; the others (``alpha``, ``tol``, ``solver="lbfgs"``, ...)
are refused at construction with an error naming the nearest minidl setting.

Not supported, and refused with a ``TypeError`` naming it: ``sample_weight`` (minidl's losses
are unweighted). Sparse inputs are refused by ``validate_data``. There is no ``partial_fit``
and no ``warm_start``: ``fit`` always starts from fresh weights.

scikit-learn is an optional dependency (``pip install -e ".[sklearn]"`` in minidl's clone);
``import minidl`` never imports it.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "minidl.sklearn needs scikit-learn >= 1.6 (for sklearn.utils.validation.validate_data): "
        "pip install -e '.[sklearn]' in minidl's clone (or pip install scikit-learn)"
    ) from exc

from . import activations
from .callbacks import EarlyStopping
from .containers import RecursiveMLP
from .losses import MSE, SoftmaxCrossEntropy
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .training import fit, predict
from .validation import check_bool, check_int, check_number

#: ``activation=`` names; ``"logistic"`` is scikit-learn's name for the sigmoid.
ACTIVATIONS = {
    "identity": activations.Identity,
    "logistic": activations.Sigmoid,
    "sigmoid": activations.Sigmoid,
    "tanh": activations.Tanh,
    "relu": activations.ReLU,
    "leaky_relu": activations.LeakyReLU,
}

#: ``optimizer=`` names (case-insensitive); an :class:`~minidl.Optimizer` subclass works too.
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad, "rmsprop": RMSprop}

_FLOAT_DTYPES = (np.float64, np.float32)


class _MinidlMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks, building and training.

    A subclass sets ``_loss()``, ``_targets(y)`` (the array minidl trains on, the number of
    outputs, and fitted attributes such as ``classes_``, set only once training has succeeded)
    and ``_stratify(y)`` (labels to stratify the early-stopping split, or None).
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, optimizer="adam",
                 learning_rate=1e-3, optimizer_params=None, epochs=200, batch_size=200,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 random_state=None, dtype="float64", verbose=0, **sklearn_params):
        if sklearn_params:  # scikit-learn's own names: mapped to minidl's, or refused clearly
            given = {"optimizer": optimizer, "learning_rate": learning_rate,
                     "optimizer_params": optimizer_params, "epochs": epochs}
            mapped = _from_sklearn_names(type(self).__name__, sklearn_params, given)
            optimizer, learning_rate = mapped["optimizer"], mapped["learning_rate"]
            optimizer_params, epochs = mapped["optimizer_params"], mapped["epochs"]
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.optimizer_params = optimizer_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    def set_params(self, **params):
        """scikit-learn's ``set_params``; scikit-learn's own names (``max_iter``,
        ``learning_rate_init``, ``solver``, ...) set their minidl equivalents, as in
        ``__init__``."""
        names = set(params) & set(SKLEARN_NAMES)
        if names:
            keys = ("optimizer", "learning_rate", "optimizer_params", "epochs")
            explicit = {k for k in keys if k in params}
            given = {k: params.pop(k, getattr(self, k)) for k in keys}
            if "solver" in names and "optimizer_params" not in explicit:
                given["optimizer_params"] = None  # a new solver: the old one's settings go
            mapped = _from_sklearn_names(type(self).__name__,
                                         {k: params.pop(k) for k in names}, given, explicit)
            params.update(mapped)
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, **fit_params):
        """Train a fresh model on ``(X, y)``; return ``self``.

        ``sample_weight`` (or any other fit parameter) is refused with a ``TypeError``."""
        if fit_params:
            name = type(self).__name__
            if "sample_weight" in fit_params:
                raise TypeError(
                    f"{name}.fit does not support sample_weight: minidl's losses weigh every "
                    f"sample equally; resample the rows instead"
                )
            raise TypeError(f"{name}.fit got unexpected keyword argument(s) "
                            f"{sorted(fit_params)}; it takes only X and y")
        hidden, activation, optimizer_cls, dtype, early_stopping = self._check_params()
        X, y = self._validate(X, y)
        target, n_outputs, fitted = self._targets(y)
        rng = _generator(self.random_state, type(self).__name__)

        validation_data, callbacks = None, []
        if early_stopping:
            train, val = _split(rng, len(X), self.validation_fraction, self._stratify(target),
                                type(self).__name__)
            X, target, validation_data = X[train], target[train], (X[val], target[val])
            callbacks.append(EarlyStopping("val_loss", patience=self.n_iter_no_change,
                                           restore_best_weights=True))

        model = RecursiveMLP([X.shape[1], *hidden, n_outputs], activation=activation,
                             output_activation=None, rng=rng, dtype=dtype)
        opt = self._make_optimizer(optimizer_cls, model)
        history = fit(model, self._loss(), opt, X, target, epochs=self.epochs,
                      batch_size=self.batch_size, seed=int(rng.integers(2**32)),
                      validation_data=validation_data, callbacks=callbacks,
                      verbose=self.verbose)
        for name, value in fitted.items():
            setattr(self, name, value)
        self.model_ = model
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history["train_loss"]] if len(history) else []
        self.n_outputs_ = n_outputs
        self.best_validation_loss_ = float(callbacks[0].best) if early_stopping else None
        return self

    def _validate(self, X, y):
        regressor = isinstance(self, RegressorMixin)
        return validate_data(self, X, y, dtype=_FLOAT_DTYPES, multi_output=regressor,
                             y_numeric=regressor)

    def _check_params(self):
        name = type(self).__name__
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (numbers.Integral, np.integer)):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError(f"{name}: hidden_layer_sizes must be an int or a sequence of ints, "
                             f"got {self.hidden_layer_sizes!r}") from None
        hidden = [check_int(name, f"hidden_layer_sizes[{i}]", s, low=1)
                  for i, s in enumerate(sizes)]
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}: activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        optimizer_cls = self.optimizer
        if isinstance(optimizer_cls, str):
            optimizer_cls = OPTIMIZERS.get(optimizer_cls.lower())
        if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, Optimizer)):
            raise ValueError(f"{name}: optimizer must be one of {sorted(OPTIMIZERS)} or a "
                             f"minidl Optimizer subclass, got {self.optimizer!r}")
        check_number(name, "learning_rate", self.learning_rate, low=0.0)
        params = self.optimizer_params
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"{name}: optimizer_params must be a dict of the optimizer's "
                             f"keyword arguments or None, got {params!r}")
        if params and ("lr" in params or "params" in params):
            raise ValueError(f"{name}: optimizer_params must not hold 'lr' or 'params'; set the "
                             f"learning rate with learning_rate=")
        check_int(name, "epochs", self.epochs, low=0)
        check_int(name, "batch_size", self.batch_size, low=1, allow_none=True)
        check_int(name, "n_iter_no_change", self.n_iter_no_change, low=1)
        if not (isinstance(self.verbose, (numbers.Integral, np.integer))
                and self.verbose in (0, 1, 2)) or isinstance(self.verbose, bool):
            raise ValueError(f"{name}: verbose must be 0, 1 or 2, got {self.verbose!r}")
        early_stopping = check_bool(name, "early_stopping", self.early_stopping)
        if early_stopping:
            check_number(name, "validation_fraction", self.validation_fraction, low=0.0,
                         high=1.0, high_inclusive=False)
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{name}: dtype must be float32 or float64, got {self.dtype!r}")
        return hidden, ACTIVATIONS[self.activation], optimizer_cls, dtype, early_stopping

    def _make_optimizer(self, cls, model) -> Optimizer:
        kwargs = dict(self.optimizer_params or {})
        try:
            return cls(model.parameters(), lr=self.learning_rate, **kwargs)
        except TypeError as exc:
            raise ValueError(f"{type(self).__name__}: optimizer_params {kwargs!r} do not fit "
                             f"{cls.__name__}: {exc}") from None

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        return predict(self.model_, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _MinidlMLP):
    """A multi-layer perceptron classifier trained by minidl.

    The network is ``RecursiveMLP([n_features, *hidden_layer_sizes, n_classes])`` with a
    linear output, trained on :class:`~minidl.SoftmaxCrossEntropy` (also for two classes:
    two logits); ``predict_proba`` is the softmax of the logits.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Widths of the hidden layers; ``()`` is a linear (softmax regression) model.
    activation : {"relu", "tanh", "logistic" or "sigmoid", "identity", "leaky_relu"}
        The activation after every hidden layer.
    optimizer : str or minidl Optimizer subclass, default "adam"
        ``"sgd"``, ``"adam"``, ``"adamw"``, ``"adagrad"``, ``"rmsprop"`` (torch's algorithms
        and defaults), or a class such as your own.
    learning_rate : float, default 1e-3
    optimizer_params : dict or None
        Further keyword arguments of the optimizer, e.g. ``{"momentum": 0.9}`` for SGD.
    epochs : int, default 200
        Passes over the training data (fewer with early stopping).
    batch_size : int or None, default 200
        Rows per step (``None``: the full batch, gradient descent).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows (stratified by class, drawn from
        ``random_state``), stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int, default 10
    random_state : int, numpy Generator, RandomState or None
        The one source of randomness (see the module docstring).
    dtype : "float64" or "float32"
        The dtype of the weights; inputs are cast to it.
    verbose : int, default 0
        ``minidl.fit``'s verbosity (0 silent, 1 a progress bar, 2 a line per epoch).

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (if X has column names), n_outputs_,
    model_ (the trained :class:`~minidl.RecursiveMLP`), history_ (its :class:`~minidl.History`),
    n_iter_ (epochs run), loss_curve_ (training loss per epoch), best_validation_loss_ (with
    early stopping, else None).

    scikit-learn's estimator checks (``parametrize_with_checks``, scikit-learn 1.9): all pass,
    none is expected to fail (:data:`EXPECTED_FAILED_CHECKS` is empty). One is skipped by
    scikit-learn itself: ``check_array_api_input`` runs only when ``SCIPY_ARRAY_API=1`` is set
    before scipy is imported; tests/test_sklearn_checks.py runs it so, and it passes. The
    sample-weight checks are not generated, since ``fit`` takes no ``sample_weight``.
    """

    def _targets(self, y):
        check_classification_targets(y)
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__}: y holds only one class ({classes[0]!r}); a "
                f"classifier needs samples of at least two classes"
            )
        return labels.reshape(-1).astype(np.intp), len(classes), {"classes_": classes}

    @staticmethod
    def _stratify(target):
        return target

    @staticmethod
    def _loss():
        return SoftmaxCrossEntropy()

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of
        ``classes_``."""
        return activations.softmax(self._forward(X).astype(np.float64), axis=1)

    def predict_log_proba(self, X) -> np.ndarray:
        return activations.log_softmax(self._forward(X).astype(np.float64), axis=1)

    def predict(self, X) -> np.ndarray:
        """The class of largest probability, one of ``classes_``."""
        logits = self._forward(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(logits, axis=1)]


class MLPRegressor(RegressorMixin, _MinidlMLP):
    """A multi-layer perceptron regressor trained by minidl.

    The network is ``RecursiveMLP([n_features, *hidden_layer_sizes, n_outputs])`` with a
    linear output, trained on :class:`~minidl.MSE`. ``y`` may have one column or several
    (multi-output); ``predict`` returns shape (n_samples,) for a single output, as
    scikit-learn's ``MLPRegressor`` does. The targets are used as given (not scaled): put
    large targets in a ``TransformedTargetRegressor`` with a ``StandardScaler``.

    Parameters and attributes are those of :class:`MLPClassifier` (without ``classes_``;
    ``early_stopping`` holds out a plain random ``validation_fraction`` of the rows), and so is
    what :class:`MLPClassifier` says of scikit-learn's estimator checks: all pass here too.
    """

    def _targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        target = y.reshape(len(y), -1)
        return target, target.shape[1], {}

    @staticmethod
    def _stratify(target):
        return None

    @staticmethod
    def _loss():
        return MSE()

    def predict(self, X) -> np.ndarray:
        """Predicted targets: shape (n_samples,) for one output, else (n_samples,
        n_outputs)."""
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


# scikit-learn's names are aliases, not parameters: the signature scikit-learn (and help())
# reads is minidl's, without the ``**sklearn_params`` catch-all, so its checks that pass a value
# to every parameter name do not pass one to "sklearn_params".
_MinidlMLP.__init__.__signature__ = inspect.signature(_MinidlMLP.__init__).replace(  # type: ignore[attr-defined]
    parameters=[p for p in inspect.signature(_MinidlMLP.__init__).parameters.values()
                if p.kind is not inspect.Parameter.VAR_KEYWORD])


#: scikit-learn estimator checks expected to fail, with the reason, per estimator class:
#: the ``expected_failed_checks`` of ``sklearn.utils.estimator_checks.parametrize_with_checks``.
EXPECTED_FAILED_CHECKS: dict[type, dict[str, str]] = {MLPClassifier: {}, MLPRegressor: {}}


# ------------------------------------------------------- scikit-learn's own names
#: scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` keyword arguments that minidl's differ
#: from: the minidl parameter each sets (same meaning), or why it is refused (None).
SKLEARN_NAMES: dict[str, str | None] = {
    "max_iter": "epochs",
    "learning_rate_init": "learning_rate",
    "solver": "optimizer",
    "momentum": "optimizer_params['momentum'] (with solver='sgd')",
    "nesterovs_momentum": "optimizer_params['nesterov'] (with solver='sgd')",
    "beta_1": "optimizer_params['betas'][0] (with solver='adam')",
    "beta_2": "optimizer_params['betas'][1] (with solver='adam')",
    "epsilon": "optimizer_params['eps'] (with solver='adam')",
    "alpha": None, "tol": None, "shuffle": None, "warm_start": None, "power_t": None,
    "max_fun": None,
}

_REFUSED = {
    "alpha": "scikit-learn's L2 penalty (alpha/batch_size times the weights, biases exempt) "
             "has no exact minidl equivalent; the nearest is "
             "optimizer_params={'weight_decay': ...}, which decays every parameter",
    "tol": "minidl stops early only on a validation loss: early_stopping=True with "
           "n_iter_no_change=",
    "shuffle": "minidl shuffles the rows every epoch, always (from random_state)",
    "warm_start": "fit always starts from fresh weights; train further with minidl.fit on "
                  "the fitted model_",
    "power_t": "minidl has no 'invscaling' learning-rate schedule; pass learning_rate=",
    "max_fun": "minidl has no 'lbfgs' solver",
}


def _from_sklearn_names(who: str, sklearn_params: dict, given: dict,
                        explicit: set | None = None) -> dict:
    """minidl's ``optimizer``, ``learning_rate``, ``optimizer_params`` and ``epochs`` with
    scikit-learn's names in ``sklearn_params`` applied to ``given``; an unknown name is a
    ``TypeError`` naming ``who``, a name with no minidl equivalent a ``TypeError`` naming the
    nearest one, and a scikit-learn name given with its minidl one (``explicit``, by default
    those not at their default) a ``TypeError``."""
    out = dict(given)
    unknown = sorted(set(sklearn_params) - set(SKLEARN_NAMES))
    if unknown:
        raise TypeError(f"{who}.__init__() got an unexpected keyword argument {unknown[0]!r}")
    for name in sklearn_params:
        if SKLEARN_NAMES[name] is None:
            raise TypeError(f"{who}: scikit-learn's {name}= is not supported: {_REFUSED[name]}")
    defaults = {"optimizer": "adam", "learning_rate": 1e-3, "optimizer_params": None,
                "epochs": 200}
    if explicit is None:
        explicit = {k for k, v in given.items() if v is not defaults[k]}

    def put(minidl_name: str, sk_name: str, value) -> None:
        if minidl_name in explicit and given[minidl_name] != value:
            raise TypeError(f"{who}: got both {sk_name}= (scikit-learn's name) and "
                            f"{minidl_name}= (minidl's); pass one")
        out[minidl_name] = value

    if "max_iter" in sklearn_params:
        put("epochs", "max_iter", sklearn_params["max_iter"])
    if "learning_rate_init" in sklearn_params:
        put("learning_rate", "learning_rate_init", sklearn_params["learning_rate_init"])
    solver = sklearn_params.get("solver", "adam")
    if solver not in ("adam", "sgd"):
        raise ValueError(f"{who}: solver={solver!r} is not available; minidl's optimizers "
                         f"(optimizer=) are {sorted(OPTIMIZERS)}")
    if "solver" in sklearn_params:
        put("optimizer", "solver", solver)
    opt_names = {"sgd": ("momentum", "nesterovs_momentum"),
                 "adam": ("beta_1", "beta_2", "epsilon")}
    for name in sklearn_params:
        if name in opt_names["sgd" if solver == "adam" else "adam"]:
            raise TypeError(f"{who}: {name}= belongs to scikit-learn's solver="
                            f"{'sgd' if solver == 'adam' else 'adam'!r}, not {solver!r}")
    extra: dict = {}
    if solver == "sgd" and "solver" in sklearn_params:  # scikit-learn's defaults for 'sgd'
        extra = {"momentum": sklearn_params.get("momentum", 0.9),
                 "nesterov": sklearn_params.get("nesterovs_momentum", True)}
    if any(k in sklearn_params for k in ("beta_1", "beta_2")):
        extra["betas"] = (sklearn_params.get("beta_1", 0.9), sklearn_params.get("beta_2", 0.999))
    if "epsilon" in sklearn_params:
        extra["eps"] = sklearn_params["epsilon"]
    if extra:
        mine = dict(given["optimizer_params"] or {})
        both = sorted(set(mine) & set(extra))
        if both and any(mine[k] != extra[k] for k in both):
            raise TypeError(f"{who}: optimizer_params sets {both} and so do scikit-learn's "
                            f"names; pass one")
        out["optimizer_params"] = {**extra, **mine}
    return out


# ---------------------------------------------------------------------- helpers
def _generator(random_state, who: str) -> np.random.Generator:
    """The Generator every draw of one ``fit`` comes from."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):  # scikit-learn's legacy convention
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    if (isinstance(random_state, (numbers.Integral, np.integer))
            and not isinstance(random_state, (bool, np.bool_)) and int(random_state) >= 0):
        return np.random.default_rng(int(random_state))
    raise ValueError(f"{who}: random_state must be an int >= 0, a numpy Generator, a "
                     f"RandomState or None, got {random_state!r}")


def _split(rng: np.random.Generator, n: int, fraction, labels, who: str):
    """Row indices ``(train, validation)``: ``fraction`` of the rows drawn at random for
    validation, of every class alike when ``labels`` are given."""
    check_number(who, "validation_fraction", fraction, low=0.0, high=1.0, high_inclusive=False)
    order = rng.permutation(n)
    groups = [order] if labels is None else [order[labels[order] == c]
                                              for c in np.unique(labels)]
    val = np.concatenate([g[:round(fraction * len(g))] for g in groups])
    if len(val) == 0 or len(val) == n:
        raise ValueError(
            f"{who}: validation_fraction={fraction!r} of {n} samples leaves "
            f"{'no validation' if len(val) == 0 else 'no training'} samples for early stopping; "
            f"raise it, or pass early_stopping=False"
        )
    train = np.setdiff1d(order, val, assume_unique=True)
    return np.sort(train), np.sort(val)


__all__ = ["ACTIVATIONS", "EXPECTED_FAILED_CHECKS", "OPTIMIZERS", "SKLEARN_NAMES",
           "MLPClassifier", "MLPRegressor"]
