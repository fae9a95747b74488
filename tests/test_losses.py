"""Losses: closed-form values and gradients, stability at extreme logits, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from minidl import (
    MSE,
    BackwardBeforeForward,
    BinaryCrossEntropy,
    NonFiniteError,
    ShapeError,
    SoftmaxCrossEntropy,
)


def test_mse_value_and_gradient():
    pred = np.array([[1.0], [2.0], [4.0]])
    target = np.array([[1.0], [0.0], [1.0]])
    loss = MSE()
    assert loss(pred, target) == pytest.approx((0 + 4 + 9) / 3)
    assert np.allclose(loss.backward(), 2 * (pred - target) / 3)


def test_mse_half_grad_reports_the_mse_but_returns_half_its_gradient():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((7, 1)), rng.standard_normal((7, 1))
    full, half = MSE(), MSE(half_grad=True)
    assert full(pred, target) == half(pred, target)
    assert np.allclose(half.backward(), (pred - target) / 7)  # the study's (y_hat - y) / N
    assert np.allclose(half.backward(), full.backward() / 2)


def test_mse_refuses_n_against_n_by_1_instead_of_broadcasting():
    with pytest.raises(ShapeError, match=r"pred has shape \(4,\) but target has shape \(4, 1\).*"
                                         r"no broadcasting.*target.reshape\(4,\)"):
        MSE()(np.zeros(4), np.zeros((4, 1)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_reaching_a_loss_are_a_clear_error(bad):
    pred = np.zeros((3, 2))
    pred[1, 0] = bad
    for loss, target in [(MSE(), np.zeros((3, 2))),
                         (BinaryCrossEntropy(from_logits=True), np.zeros((3, 2))),
                         (SoftmaxCrossEntropy(), np.zeros(3, dtype=int))]:
        expected = rf"{type(loss).__name__}: pred contains 1 non-finite value\(s\) \(first at"
        with pytest.raises(NonFiniteError, match=expected + r" index \(1, 0\)"):
            loss(pred, target)
    with pytest.raises(NonFiniteError, match="target contains"):
        MSE()(np.zeros((3, 2)), pred)


def test_backward_before_forward():
    for loss in (MSE(), BinaryCrossEntropy(), SoftmaxCrossEntropy()):
        with pytest.raises(BackwardBeforeForward, match="compute the loss first"):
            loss.backward()


def test_bce_from_logits_is_exact_for_huge_logits():
    z = np.array([[1e4], [-1e4], [1e4], [-1e4], [0.0]])
    t = np.array([[1], [0], [0], [1], [1]])
    loss = BinaryCrossEntropy(from_logits=True)
    value = loss(z, t)
    assert value == pytest.approx((0 + 0 + 1e4 + 1e4 + np.log(2)) / 5)
    grad = loss.backward()
    assert np.all(np.isfinite(grad))
    assert np.allclose(grad.ravel(), np.array([0, 0, 1, -1, -0.5]) / 5)


def test_bce_from_probabilities_matches_the_formula_and_clamps_like_torch():
    p = np.array([[0.9], [0.2], [0.6]])
    t = np.array([[1], [0], [0]])
    loss = BinaryCrossEntropy()
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert loss(p, t) == pytest.approx(expected)
    assert np.allclose(loss.backward(), (p - t) / (p * (1 - p)) / 3)
    assert loss(np.array([[0.0]]), np.array([[1]])) == pytest.approx(100.0)  # log clamped at -100
    assert np.isfinite(loss.backward()).all()


def test_bce_input_errors():
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        BinaryCrossEntropy()(np.full((2, 1), 0.5), np.array([[1], [-1]]))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*from_logits=True"):
        BinaryCrossEntropy()(np.array([[2.0]]), np.array([[1]]))


def test_softmax_cross_entropy_labels_and_one_hot_agree_and_are_stable():
    z = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [-1e4, 1e4, 1e4]])
    labels = np.array([0, 2, 1])
    a, b = SoftmaxCrossEntropy(), SoftmaxCrossEntropy()
    va, vb = a(z, labels), b(z, np.eye(3)[labels])
    assert va == pytest.approx(vb)
    assert va == pytest.approx((0 + np.log(3) + np.log(2)) / 3)
    ga, gb = a.backward(), b.backward()
    assert np.allclose(ga, gb) and np.all(np.isfinite(ga))
    assert np.allclose(ga.sum(axis=1), 0)


def test_softmax_cross_entropy_input_errors():
    loss = SoftmaxCrossEntropy()
    with pytest.raises(ShapeError, match=r"logits must have shape \(N, C\)"):
        loss(np.zeros(3), np.zeros(3, dtype=int))
    with pytest.raises(ShapeError, match=r"labels of shape \(2,\) or one-hot rows of shape "
                                         r"\(2, 3\); got \(3,\)"):
        loss(np.zeros((2, 3)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="must have an integer dtype, got float64"):
        loss(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="rows summing to 1"):
        loss(np.zeros((2, 3)), np.ones((2, 3)))


def test_float32_predictions_give_float32_gradients():
    pred = np.ones((4, 1), dtype=np.float32)
    for loss, target in [(MSE(), np.zeros((4, 1))),
                         (BinaryCrossEntropy(from_logits=True), np.zeros((4, 1)))]:
        loss(pred, target)
        assert loss.backward().dtype == np.float32
    sce = SoftmaxCrossEntropy()
    sce(np.ones((4, 3), dtype=np.float32), np.zeros(4, dtype=int))
    assert sce.backward().dtype == np.float32


# ---------------------------------------------------------------------- hostile inputs
@pytest.mark.parametrize("loss", [MSE(), BinaryCrossEntropy(from_logits=True)])
def test_complex_inputs_are_refused(loss):
    with pytest.raises(ValueError, match=r"pred must be a real numeric array, got dtype "
                                         r"complex128"):
        loss(np.array([[1j]]), np.array([[0.0]]))
    with pytest.raises(ValueError, match=r"target must be a real numeric array"):
        loss(np.array([[0.0]]), np.array([[1j]]))


@pytest.mark.parametrize("loss, target", [
    (MSE(), np.zeros((0, 1))), (BinaryCrossEntropy(), np.zeros((0, 1))),
    (SoftmaxCrossEntropy(), np.zeros(0, dtype=int))])
def test_an_empty_batch_is_refused_clearly(loss, target):
    pred = np.zeros((0, 3)) if isinstance(loss, SoftmaxCrossEntropy) else np.zeros((0, 1))
    with pytest.raises(ValueError, match=r"pred is empty \(shape \(0, \d\)\)"):
        loss(pred, target)
    with pytest.raises(BackwardBeforeForward):
        loss.backward()


def test_a_loss_that_overflows_raises_non_finite_error():
    loss = MSE()
    with pytest.raises(NonFiniteError, match=r"MSE: the loss is inf for finite predictions"):
        loss(np.array([[1e200]]), np.array([[-1e200]]))
    with pytest.raises(NonFiniteError, match=r"the loss is inf"):
        loss(np.array([[3e38]], dtype=np.float32), np.array([[-3e38]], dtype=np.float32))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mseloss_and_bceloss_are_torchs_in_value_and_gradient(reduction):
    torch = pytest.importorskip("torch")
    from minidl import BCELoss, MSELoss

    rng = np.random.default_rng(0)
    pred, target = rng.uniform(0.05, 0.95, (6, 3)), rng.integers(0, 2, (6, 3)).astype(float)
    for ours, theirs in ((MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction)),
                         (BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction))):
        p = torch.tensor(pred, requires_grad=True)
        expected = theirs(p, torch.tensor(target))
        expected.backward()
        assert ours(pred, target) == pytest.approx(expected.item(), rel=1e-12)
        assert np.allclose(ours.backward(), p.grad.numpy(), rtol=1e-12, atol=0)
    # the default is torch's, the mean over all elements: MSE's and BinaryCrossEntropy's
    assert MSELoss()(pred, target) == MSE()(pred, target)
    assert BCELoss()(pred, target) == BinaryCrossEntropy()(pred, target)
    assert isinstance(MSELoss(), MSE) and isinstance(BCELoss(), BinaryCrossEntropy)


@pytest.mark.parametrize("name", ["MSELoss", "BCELoss"])
def test_torch_loss_names_refuse_a_reduction_they_cannot_do(name):
    import minidl

    with pytest.raises(ValueError, match=r"reduction='none'.*'mean' or 'sum'"):
        getattr(minidl, name)(reduction="none")
    assert repr(getattr(minidl, name)(reduction="sum")) == f"{name}(reduction='sum')"
