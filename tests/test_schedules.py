"""Learning-rate schedules: PyTorch's rules, by hand and as fit callbacks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from minidl import MSE, SGD, Adam, RecursiveMLP, fit
from minidl.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)

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


# ---------------------------------------------------------------------- LambdaLR, OneCycleLR
def test_lambda_lr_multiplies_each_groups_base_lr():
    assert lrs_by_hand(LambdaLR(optimizer(0.1), lambda e: 0.5 ** e), 4) == [
        0.1, 0.05, 0.025, 0.0125]
    ps = list(RecursiveMLP([2, 1], rng=0).parameters())
    opt = SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 1.0}], lr=0.1)
    schedule = LambdaLR(opt, [lambda e: e + 1, lambda e: 1 / (e + 1)])
    schedule.step()
    assert schedule.get_last_lr() == [0.2, 0.5]
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(TypeError, match="lr_lambda must be a function"):
        LambdaLR(optimizer(), 0.5)
    with pytest.raises(ValueError, match=r"lr_lambda\(1\)"):
        LambdaLR(optimizer(), lambda e: 1 - 2 * e).step()


def one_cycle_reference(step, total, max_lr, pct=0.3, div=25.0, final_div=1e4, cos=True,
                        three_phase=False):
    """torch's OneCycleLR learning rate at ``step``, written from its documented formulas."""
    initial = max_lr / div
    low = initial / final_div
    if three_phase:
        phases = [(pct * total - 1, initial, max_lr), (2 * pct * total - 2, max_lr, initial),
                  (total - 1, initial, low)]
    else:
        phases = [(pct * total - 1, initial, max_lr), (total - 1, max_lr, low)]
    start = 0.0
    for i, (end, a, b) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            t = (step - start) / (end - start)
            return b + (a - b) / 2 * (math.cos(math.pi * t) + 1) if cos else (b - a) * t + a
        start = end
    raise AssertionError


@pytest.mark.parametrize("kwargs", [{}, {"anneal_strategy": "linear"}, {"three_phase": True},
                                    {"pct_start": 0.5, "div_factor": 10.0}])
def test_one_cycle_lr_follows_torchs_formulas(kwargs):
    opt = SGD(RecursiveMLP([2, 1], rng=0).parameters(), lr=0.1, momentum=0.9)
    schedule = OneCycleLR(opt, max_lr=1.0, epochs=4, steps_per_epoch=5, **kwargs)
    got = lrs_by_hand(schedule, 20)
    ref = [one_cycle_reference(
        s, 20, 1.0, pct=kwargs.get("pct_start", 0.3), div=kwargs.get("div_factor", 25.0),
        cos=kwargs.get("anneal_strategy", "cos") == "cos",
        three_phase=kwargs.get("three_phase", False)) for s in range(20)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[0] == pytest.approx(1.0 / kwargs.get("div_factor", 25.0))
    assert max(got) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="stepped 21 times, but total_steps is 20"):
        schedule.step()


def test_one_cycle_lr_cycles_momentum_and_refuses_what_it_cannot():
    opt = Adam(RecursiveMLP([2, 1], rng=0).parameters(), lr=0.1)
    schedule = OneCycleLR(opt, max_lr=0.01, total_steps=10)
    assert opt.defaults["betas"] == (0.95, 0.999)
    for _ in range(2):
        schedule.step()
    assert opt.defaults["betas"][0] == pytest.approx(0.85)  # the peak: 0.3 * 10 - 1 = step 2
    with pytest.raises(ValueError, match="nonzero momentum or with betas.*cycle_momentum=False"):
        OneCycleLR(optimizer(), max_lr=0.1, total_steps=10)
    OneCycleLR(optimizer(), max_lr=0.1, total_steps=10, cycle_momentum=False)
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="cosine")


def test_one_cycle_lr_as_a_callback_steps_per_batch():
    X, y = make_data(n=20)
    model = make_model()
    opt = Adam(model.parameters(), lr=0.1)
    schedule = OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=3)
    fit(model, MSE(), opt, X, y, epochs=3, batch_size=7, callbacks=[schedule], verbose=0)
    assert schedule.last_epoch == 9
    assert opt.lr == pytest.approx(one_cycle_reference(9, 9, 0.1))


def test_lambda_and_one_cycle_match_torch():
    torch = pytest.importorskip("torch")
    for kwargs in ({}, {"anneal_strategy": "linear", "three_phase": True}):
        w = torch.nn.Parameter(torch.zeros(2))
        t_opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=1.0, total_steps=17,
                                                      **kwargs)
        opt = SGD(RecursiveMLP([2, 1], rng=0).parameters(), lr=0.1, momentum=0.9)
        schedule = OneCycleLR(opt, max_lr=1.0, total_steps=17, **kwargs)
        for _ in range(17):
            assert opt.lr == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)
            assert opt.defaults["momentum"] == pytest.approx(
                t_opt.param_groups[0]["momentum"], rel=1e-12)
            t_opt.step()
            t_sched.step()
            schedule.step()
    w = torch.nn.Parameter(torch.zeros(2))
    t_opt = torch.optim.SGD([w], lr=0.1)
    t_sched = torch.optim.lr_scheduler.LambdaLR(t_opt, lambda e: 0.9 ** e + 0.1 * e)
    schedule = LambdaLR(optimizer(0.1), lambda e: 0.9 ** e + 0.1 * e)
    for _ in range(6):
        assert schedule.optimizer.lr == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)
        t_opt.step()
        t_sched.step()
        schedule.step()


def test_reduce_lr_on_plateau_accepts_keras_monitor_name():
    """Keras's ReduceLROnPlateau(monitor="loss") watches the training loss, as EarlyStopping's
    monitor="loss" does (issue 20)."""
    import minidl as md

    X, y = np.zeros((40, 3)), np.ones((40, 1))  # zero inputs, no bias: the loss cannot move
    model = md.Sequential(md.Dense(3, 1, bias=False, rng=0))
    opt = md.SGD(model.parameters(), lr=0.1)
    plateau = md.schedules.ReduceLROnPlateau(opt, monitor="loss", patience=0, factor=0.5)
    md.fit(model, md.MSE(), opt, X, y, epochs=3, batch_size=None, callbacks=[plateau],
           verbose=0)
    assert opt.lr == pytest.approx(0.025)  # halved after epochs 2 and 3
