"""Learning-rate schedules: PyTorch's rules, by hand and as fit callbacks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from minidl import MSE, SGD, Adam, RecursiveMLP, fit
from minidl.schedules import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR

from ._fit_helpers import make_data, make_model


def optimizer(lr=0.1):
    return SGD(RecursiveMLP([2, 1], rng=0).parameters(), lr=lr)


def lrs_by_hand(schedule, epochs):
    """The learning rate of epochs 0, 1, ..., stepping after each, as a PyTorch loop does."""
    out = []
    for _ in range(epochs):
        out.append(schedule.optimizer.lr)
        schedule.step()
    return out


def test_step_lr_matches_the_pytorch_docstring_example():
    # torch.optim.lr_scheduler.StepLR: lr = 0.05 if epoch < 30, 0.005 if 30 <= epoch < 60, ...
    opt = optimizer(0.05)
    lrs = lrs_by_hand(StepLR(opt, step_size=30, gamma=0.1), 90)
    assert lrs == [0.05] * 30 + [0.05 * 0.1] * 30 + [0.05 * 0.1**2] * 30
    assert np.isclose(lrs[30], 0.005) and np.isclose(lrs[60], 0.0005)


def test_exponential_lr():
    opt = optimizer(0.2)
    sched = ExponentialLR(opt, gamma=0.9)
    assert lrs_by_hand(sched, 5) == [0.2 * 0.9**e for e in range(5)]
    assert sched.get_last_lr() == opt.lr == 0.2 * 0.9**5


def test_cosine_annealing_lr():
    opt = optimizer(1.0)
    lrs = lrs_by_hand(CosineAnnealingLR(opt, T_max=10, eta_min=0.1), 21)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(21)]
    assert lrs == expected
    assert lrs[0] == 1.0 and math.isclose(lrs[5], 0.55) and math.isclose(lrs[10], 0.1)
    assert math.isclose(lrs[20], 1.0)  # past T_max the cosine rises again, as in PyTorch
    assert all(a > b for a, b in itertools.pairwise(lrs[:11]))


def plateau_lrs(metrics, **kwargs):
    opt = optimizer(1.0)
    sched = ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.lr)
    return out


@pytest.mark.parametrize(
    ("kwargs", "metrics", "expected"),
    [
        # more than `patience` bad epochs in a row: reduce, and start counting again
        ({"factor": 0.5, "patience": 2}, [10, 9, 9, 9, 9, 8, 8, 8, 8],
         [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]),
        ({"factor": 0.5, "patience": 0}, [3, 3, 2, 2], [1, 0.5, 0.5, 0.25]),
        # cooldown: the epochs right after a reduction do not count as bad
        ({"factor": 0.5, "patience": 0, "cooldown": 2}, [3, 3, 3, 3, 3, 3],
         [1, 0.5, 0.5, 0.5, 0.25, 0.25]),
        # threshold "rel": 9.5 is not < 10 * (1 - 0.1); threshold "abs": not < 10 - 1
        ({"factor": 0.5, "patience": 0, "threshold": 0.1}, [10, 9.5], [1, 0.5]),
        ({"factor": 0.5, "patience": 0, "threshold": 1, "threshold_mode": "abs"}, [10, 9.5],
         [1, 0.5]),
        ({"factor": 0.5, "patience": 0, "threshold": 1, "threshold_mode": "abs"}, [10, 8.9],
         [1, 1]),
        # mode max
        ({"mode": "max", "factor": 0.5, "patience": 1}, [0.5, 0.6, 0.6, 0.6, 0.7],
         [1, 1, 1, 0.5, 0.5]),
        # min_lr floors it; a change smaller than eps is skipped
        ({"factor": 0.1, "patience": 0, "min_lr": 0.05}, [1, 1, 1, 1], [1, 0.1, 0.05, 0.05]),
        ({"factor": 0.5, "patience": 0, "eps": 0.6}, [1, 1, 1], [1, 1, 1]),
    ],
)
def test_reduce_lr_on_plateau_rules(kwargs, metrics, expected):
    assert plateau_lrs(metrics, **kwargs) == expected


def test_reduce_lr_on_plateau_arguments():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        ReduceLROnPlateau(optimizer(), mode="auto")
    with pytest.raises(ValueError, match="factor must lie in"):
        ReduceLROnPlateau(optimizer(), factor=1.0)
    with pytest.raises(ValueError, match="threshold_mode must be 'rel' or 'abs'"):
        ReduceLROnPlateau(optimizer(), threshold_mode="percent")
    with pytest.raises(TypeError, match="expected an Optimizer"):
        ReduceLROnPlateau([])


@pytest.mark.parametrize(
    "make",
    [lambda o: StepLR(o, step_size=3, gamma=0.5), lambda o: ExponentialLR(o, gamma=0.8),
     lambda o: CosineAnnealingLR(o, T_max=7), lambda o: ReduceLROnPlateau(o, patience=1)],
)
def test_state_dict_resumes_a_schedule(make):
    metrics = [5, 4, 4, 4, 3, 3, 3, 3, 2, 2]

    def advance(sched, values):
        for m in values:
            sched.step(m) if isinstance(sched, ReduceLROnPlateau) else sched.step()

    straight = make(optimizer(1.0))
    advance(straight, metrics)
    first = make(optimizer(1.0))
    advance(first, metrics[:4])
    opt = optimizer(first.optimizer.lr)  # the optimizer's lr comes back with its own state
    second = make(opt)
    second.load_state_dict(first.state_dict())
    advance(second, metrics[4:])
    assert opt.lr == straight.optimizer.lr
    assert second.state_dict() == straight.state_dict()


def test_schedules_as_fit_callbacks_set_the_lr_column():
    X, y = make_data(n=20)
    model = make_model()
    opt = Adam(model.parameters(), lr=0.1)
    h = fit(model, MSE(), opt, X, y, epochs=7, callbacks=[StepLR(opt, step_size=3, gamma=0.5)],
            verbose=0)
    assert h["lr"].tolist() == [0.1] * 3 + [0.05] * 3 + [0.025]
    assert opt.lr == 0.025


def test_reduce_lr_on_plateau_as_a_callback_reads_its_monitor():
    X, y = make_data(n=20)
    model = make_model(p=0.0)
    opt = SGD(model.parameters(), lr=1e-6)
    # so small a learning rate cannot move train_loss by a relative 10%: every epoch is bad
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=0.1, monitor="train_loss")
    h = fit(model, MSE(), opt, X, y, epochs=5, callbacks=[sched], verbose=0)
    assert h["lr"].tolist() == [1e-6, 1e-6, 1e-6, 0.5e-6, 0.5e-6]
    with pytest.raises(ValueError, match="monitor 'val_loss' is not logged"):
        fit(model, MSE(), opt, X, y, epochs=1, callbacks=[ReduceLROnPlateau(opt)], verbose=0)


def test_a_schedule_must_drive_the_optimizer_fit_uses():
    X, y = make_data(n=20)
    model = make_model()
    opt = SGD(model.parameters(), lr=0.1)
    other = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="created for a different optimizer"):
        fit(model, MSE(), opt, X, y, epochs=1, callbacks=[StepLR(other, 1)], verbose=0)


def test_schedule_arguments():
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        StepLR(optimizer(), step_size=0)
    with pytest.raises(ValueError, match="T_max must be a positive int"):
        CosineAnnealingLR(optimizer(), T_max=0)
    with pytest.raises(ValueError, match="gamma must be a finite number"):
        ExponentialLR(optimizer(), gamma=float("nan"))
    with pytest.raises(TypeError, match="expected an Optimizer"):
        StepLR("sgd", 1)
