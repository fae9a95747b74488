"""minidl.testing: the one-line gradient property passes on minidl's own classes and fails on
layers and losses with planted backward bugs (in a parameter, the input, one mode only); its
strategies draw what they say."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import Phase, given, settings

import minidl
from minidl import (
    MSE,
    BatchNorm1d,
    BinaryCrossEntropy,
    Dense,
    Dropout,
    Flatten,
    GradcheckError,
    Layer,
    Parameter,
    ReLU,
    SoftmaxCrossEntropy,
    Tanh,
)
from minidl.testing import (
    IN,
    OUT,
    RNG,
    away_from_zero,
    batches,
    distinct,
    gradcheck_property,
    off_kinks,
    probabilities,
    shapes,
    spread_columns,
)
from minidl.testing import batch_sizes as batch_sizes_strategy

FEW = 5  # examples per property here: these tests prove the machinery, not the layers
#: for properties that must fail: stop at the first failure, without shrinking it
NO_SHRINK = settings(max_examples=FEW, phases=[Phase.generate])

# ------------------------------------------------------------ minidl's own classes pass
test_dense = gradcheck_property(Dense, IN, OUT, rng=RNG, max_examples=FEW)
test_dense_without_bias = gradcheck_property(Dense, IN, OUT, bias=False, rng=RNG,
                                             max_examples=FEW)
test_dropout = gradcheck_property(Dropout, 0.3, rng=RNG, max_examples=FEW)
test_relu = gradcheck_property(ReLU, inputs="off_kinks", max_examples=FEW)
test_flatten = gradcheck_property(Flatten, input_shape=(batch_sizes_strategy, 3, IN),
                                  max_examples=FEW)
test_batchnorm = gradcheck_property(
    BatchNorm1d, IN, input_shape=(np.int64(4), IN), inputs="spread", max_examples=FEW,
    setup=lambda bn, rng: bn.running_var.__setitem__(..., rng.uniform(0.5, 2.0, bn.num_features)))
test_sequential = gradcheck_property(
    lambda n_in, n_out, rng: minidl.Sequential(Dense(n_in, 5, rng=rng), Tanh(),
                                               Dense(5, n_out, rng=rng)),
    IN, OUT, RNG, max_examples=FEW)
test_mse = gradcheck_property(MSE, target="normal", max_examples=FEW)
test_bce = gradcheck_property(BinaryCrossEntropy, inputs="probabilities", target="binary",
                              max_examples=FEW)
test_bce_logits = gradcheck_property(BinaryCrossEntropy, from_logits=True, target="binary",
                                     max_examples=FEW)
test_softmax_ce = gradcheck_property(SoftmaxCrossEntropy, target="labels", max_examples=FEW)
test_softmax_ce_one_hot = gradcheck_property(SoftmaxCrossEntropy, target="one_hot",
                                             max_examples=FEW)


# ------------------------------------------------------------ planted bugs are caught
class ScaleShift(Layer):
    """y = x * w + b, per feature; ``bug`` plants one backward mistake."""

    def __init__(self, in_features, rng, bug=None):
        super().__init__()
        self.bug = bug
        self.weight = Parameter(rng.uniform(0.5, 2.0, in_features))
        self.bias = Parameter(rng.standard_normal(in_features))

    def forward(self, x):
        self.x = x
        return x * self.weight.data + self.bias.data

    def backward(self, grad_out):
        self.weight.grad[...] = np.sum(grad_out * self.x, axis=0)
        self.bias.grad[...] = np.sum(grad_out, axis=0)
        grad_x = grad_out * self.weight.data
        if self.bug == "weight":
            self.weight.grad[...] *= 1.5
        elif self.bug == "input":
            grad_x = grad_out
        elif self.bug == "eval_only" and not self.training:
            self.bias.grad[...] = 0.0
        return grad_x


class WrongMSE(MSE):
    def gradient(self, pred, target):
        return (pred - target) / pred.size  # half the true gradient


def test_a_correct_custom_layer_passes():
    gradcheck_property(ScaleShift, IN, RNG, max_examples=FEW)()


@pytest.mark.parametrize("bug, match", [
    ("weight", r"parameter 'weight' at index"),
    ("input", r"the input at index"),
    ("eval_only", r"^eval mode, input shape \(\d+, \d+\): .*parameter 'bias'"),
])
def test_a_planted_backward_bug_fails_the_property(bug, match):
    prop = NO_SHRINK(gradcheck_property(ScaleShift, IN, RNG, bug=bug))
    with pytest.raises(GradcheckError, match=match):
        prop()


def test_a_bug_seen_only_in_eval_mode_passes_when_eval_is_not_checked():
    gradcheck_property(ScaleShift, IN, RNG, bug="eval_only", modes=("train",),
                       max_examples=FEW)()


def test_a_wrong_loss_gradient_fails_the_property():
    with pytest.raises(GradcheckError, match=r"^pred shape .*WrongMSE.*pred at index"):
        NO_SHRINK(gradcheck_property(WrongMSE, target="normal"))()


def test_relu_on_its_kink_fails_without_off_kinks():
    """Shows why ``inputs="off_kinks"`` exists: at x = 0 finite differences see half a kink."""
    zeros = NO_SHRINK(gradcheck_property(ReLU, inputs=lambda rng, shape: np.zeros(shape)))
    with pytest.raises(GradcheckError):
        zeros()


def test_the_returned_test_is_named_for_pytest():
    prop = gradcheck_property(ScaleShift, IN, RNG)
    assert prop.__name__ == "test_gradcheck_ScaleShift"
    assert "ScaleShift" in prop.__doc__


def test_markers_and_strategies_are_drawn_per_example():
    seen = []

    def build(n_in, n_out, width, rng):
        seen.append((n_in, n_out, width, type(rng)))
        return Dense(n_in, n_out, rng=rng)

    from hypothesis import strategies as st
    gradcheck_property(build, IN, OUT, st.integers(100, 101), RNG, max_examples=FEW)()
    assert len(seen) >= 2
    assert all(1 <= a <= 16 and 1 <= b <= 16 and c in (100, 101) for a, b, c, _ in seen)
    assert all(t is np.random.Generator for *_, t in seen)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"target": None}, TypeError, r"gradcheck_property\(MSE\): MSE is a Loss, so pass target="),
    ({"target": "ranks"}, ValueError, "target must be one of"),
    ({"target": "normal", "inputs": "uniform"}, ValueError, "values must be one of"),
    ({"target": "normal", "modes": ("test",)}, ValueError, "modes must be a non-empty subset"),
    ({"target": "normal", "modes": ()}, ValueError, "modes must be a non-empty subset"),
])
def test_bad_arguments_are_named_when_the_test_is_defined(kwargs, error, match):
    with pytest.raises(error, match=match):
        gradcheck_property(MSE, **kwargs)


def test_a_factory_that_builds_neither_is_named():
    with pytest.raises(TypeError, match=r"gradcheck_property\(<lambda>\): building it gave "
                                        r"int, not a Layer or a Loss"):
        NO_SHRINK(gradcheck_property(lambda: 3))()
    with pytest.raises(TypeError, match=r"expected a Layer or Loss class.*not an instance"):
        gradcheck_property(Tanh())


# ------------------------------------------------------------ strategies and values
@settings(max_examples=20)
@given(shape=shapes(min_dims=2, max_dims=4, max_side=5))
def test_shapes_have_the_asked_dimensions(shape):
    assert 2 <= len(shape) <= 4 and all(1 <= s <= 5 for s in shape)


@settings(max_examples=20)
@given(x=batches((3, 4), values="off_kinks"), y=batches())
def test_batches_are_float64_arrays_of_the_asked_shape(x, y):
    assert x.shape == (3, 4) and x.dtype == np.float64 and np.all(np.abs(x) >= 0.05)
    assert y.ndim == 2 and 1 <= len(y) <= 8


def test_off_kinks_keeps_values_off_every_kink():
    x = off_kinks(np.random.default_rng(0), (10_000,), kinks=(-1.0, 1.0), margin=0.1)
    assert np.min(np.abs(x - 1)) >= 0.1 - 1e-12 and np.min(np.abs(x + 1)) >= 0.1 - 1e-12
    with pytest.raises(ValueError, match="more than 2 \\* margin"):
        off_kinks(np.random.default_rng(0), (3,), kinks=(0.0, 0.05))


def test_value_makers():
    rng = np.random.default_rng(0)
    p = probabilities(rng, (100,))
    assert p.min() >= 0.05 and p.max() <= 0.95
    x = spread_columns(rng, 2, 5)
    assert x.shape == (2, 5) and np.all(x.std(axis=0) > 0.1)


def test_the_project_tests_use_the_published_strategies():
    from . import strategies
    assert strategies.away_from_zero is minidl.testing.away_from_zero
    assert strategies.seeds is minidl.testing.seeds


def test_importing_minidl_does_not_import_hypothesis():
    code = ("import sys, minidl; assert 'hypothesis' not in sys.modules; "
            "assert minidl.testing.gradcheck_property; assert 'hypothesis' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_hypothesis_the_import_error_says_what_to_install():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "try:\n    import minidl.testing\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert "pip install -e '.[testing]' from your clone of minidl" in out


def test_other_missing_attributes_of_minidl_still_raise():
    with pytest.raises(AttributeError, match="module 'minidl' has no attribute 'nope'"):
        minidl.nope  # noqa: B018


def test_the_optional_dependencies_are_extras_and_in_dev():
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert [d.split(">=")[0] for d in extras["testing"]] == ["hypothesis"]
    assert [d.split(">=")[0] for d in extras["sklearn"]] == ["scikit-learn"]
    dev_self = next(d for d in extras["dev"] if d.startswith("minidl["))
    assert {"testing", "sklearn"} <= set(dev_self[len("minidl["):-1].split(","))


# ------------------------------------------------------------ issue 19
class SlightlyOff(ScaleShift):
    """ScaleShift with the weight gradient 2% too large: out of the default rtol (1e-3)."""

    def backward(self, grad_out):
        grad_x = super().backward(grad_out)
        self.weight.grad[...] *= 1.02
        return grad_x


def test_gradcheck_property_honours_the_atol_and_rtol_it_is_given():
    """Untested promise: the tolerances reach gradcheck (a property that kept the defaults
    would fail the loose check, and one that loosened them would pass the tight one)."""
    with pytest.raises(GradcheckError, match=r"parameter 'weight' .*\(atol=1e-05, "
                                             r"rtol=0\.001\)"):
        NO_SHRINK(gradcheck_property(SlightlyOff, IN, RNG))()
    gradcheck_property(SlightlyOff, IN, RNG, rtol=0.05, max_examples=FEW)()
    with pytest.raises(GradcheckError, match=r"\(atol=0\.0, rtol=1e-12\)"):  # exact ScaleShift
        NO_SHRINK(gradcheck_property(ScaleShift, IN, RNG, atol=0.0, rtol=1e-12))()
    gradcheck_property(SlightlyOff, IN, RNG, atol=100.0, rtol=0.0, max_examples=FEW)()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: shapes(min_side=-3), r"shapes: min_side must be an int >= 0, got -3"),
    (lambda: shapes(min_side=5, max_side=2), r"shapes: need min_side <= max_side, got 5, 2"),
    (lambda: shapes(min_dims=10**6, max_dims=10**6), r"shapes: need 1 <= min_dims <= "
                                                     r"max_dims <= 32, got 1000000"),
    (lambda: shapes(max_dims=12, max_side=8), r"shapes: arrays of up to max_side \*\* max_dims "
                                              r"= 8 \*\* 12 values"),
    (lambda: shapes(min_dims=1.5), r"shapes: min_dims must be an int >= 0, got 1\.5"),
    (lambda: away_from_zero(np.random.default_rng(0), (3,), margin=-1),
     r"away_from_zero: margin must be >= 0\.0, got -1"),
    (lambda: away_from_zero(np.random.default_rng(0), (3,), margin=0),
     r"away_from_zero: margin must be > 0, got 0"),
    (lambda: off_kinks(np.random.default_rng(0), (3,), kinks=(0.0, 1.0), margin=float("nan")),
     r"off_kinks: margin must be a finite number"),
    (lambda: probabilities(np.random.default_rng(0), (3,), low=-1),
     r"probabilities: low must be >= 0\.0, got -1"),
    (lambda: probabilities(np.random.default_rng(0), (3,), high=2),
     r"probabilities: high must lie in \[0\.0, 1\.0\], got 2"),
    (lambda: probabilities(np.random.default_rng(0), (3,), low=0.7, high=0.3),
     r"probabilities: need low < high, got 0\.7, 0\.3"),
    (lambda: distinct(np.random.default_rng(0), (3,), gap=0),
     r"distinct: gap must be > 0, got 0"),
    (lambda: gradcheck_property(ReLU, atol=-1), r"gradcheck_property\(ReLU\): atol must be >= "),
    (lambda: gradcheck_property(ReLU, max_examples=0), r"max_examples must be a positive int"),
])
def test_strategies_refuse_nonsense_arguments(call, match):
    # issue 19: shapes(min_side=-3) yielded (-1, -3); shapes(min_dims=10**6) never yielded
    with pytest.raises(ValueError, match=match):
        call()


def test_value_makers_and_batches_refuse_a_negative_or_non_int_shape():
    """Found by the replay of issue 19: NumPy's 'negative dimensions are not allowed'."""
    from minidl import testing

    rng = np.random.default_rng(0)
    for make in (testing.normal, testing.away_from_zero, testing.off_kinks, testing.distinct,
                 testing.probabilities):
        with pytest.raises(ValueError, match=rf"{make.__name__}: shape must be a tuple of "
                                             r"ints >= 0, got \(-1, 3\)"):
            make(rng, (-1, 3))
        assert make(rng, (2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"batches: shape must be a tuple of ints >= 0"):
        testing.batches(shape=(-1, 2))
