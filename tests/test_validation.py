"""One vocabulary for integer arguments, and one monitor for "best so far"."""

import numpy as np
import pytest

from minidl import MSE, SGD, BatchNorm1d, Dense, Parameter, RecursiveMLP, fit
from minidl.callbacks import EarlyStopping, ModelCheckpoint, Monitor, WeightTrajectory
from minidl.schedules import CosineAnnealingLR, ReduceLROnPlateau, StepLR
from minidl.validation import check_int

from ._fit_helpers import make_data, make_model


def test_check_int_accepts_numpy_integers_and_refuses_bools_and_floats():
    assert check_int("X", "n", np.int64(3), low=0) == 3
    assert type(check_int("X", "n", np.int32(3))) is int
    assert check_int("X", "n", None, allow_none=True) is None
    for bad in (True, np.bool_(True), 3.0, "3", None):
        with pytest.raises(ValueError, match=r"^X: n must be an int >= 0, got "):
            check_int("X", "n", bad, low=0)
    with pytest.raises(ValueError, match=r"^X: n must be a positive int or None, got 0$"):
        check_int("X", "n", 0, low=1, allow_none=True)


def opt():
    return SGD([Parameter(np.zeros(2))], lr=0.1)


INT_ARGUMENTS = [
    (lambda v: EarlyStopping(patience=v), "EarlyStopping: patience"),
    (lambda v: Dense(v, 2, rng=0), "Dense: in_features"),
    (lambda v: BatchNorm1d(v), "BatchNorm1d: num_features"),
    (lambda v: RecursiveMLP([v, 2], rng=0), r"RecursiveMLP: layer_sizes\[0\]"),
    (lambda v: WeightTrajectory(every=v), "WeightTrajectory: every"),
    (lambda v: ModelCheckpoint("x.npz", every=v), "ModelCheckpoint: every"),
    (lambda v: StepLR(opt(), step_size=v), "StepLR: step_size"),
    (lambda v: CosineAnnealingLR(opt(), T_max=v), "CosineAnnealingLR: T_max"),
    (lambda v: ReduceLROnPlateau(opt(), patience=v), "ReduceLROnPlateau: patience"),
    (lambda v: ReduceLROnPlateau(opt(), cooldown=v), "ReduceLROnPlateau: cooldown"),
]


@pytest.mark.parametrize(("make", "name"), INT_ARGUMENTS)
def test_every_int_argument_agrees(make, name):
    make(np.int64(3))  # a NumPy integer is an int
    with pytest.raises(ValueError, match=rf"^{name} must be .*int.*, got True$"):
        make(True)  # a bool is a mistake, not 1


def test_one_monitor_for_the_three_callbacks():
    stop = EarlyStopping(monitor="val_accuracy", min_delta=0.1)
    check = ModelCheckpoint("best.npz", save_best_only=True)
    plateau = ReduceLROnPlateau(opt(), threshold=0.5, threshold_mode="abs")
    for cb in (stop, check, plateau):
        assert isinstance(cb.tracker, Monitor)
    assert (stop.mode, check.monitor, check.tracker.mode) == ("max", "val_loss", "min")
    m = Monitor("X", "val_loss", min_delta=0.1)
    assert m.update(1.0) and not m.update(0.95) and m.update(0.85) and m.best == 0.85
    rel = Monitor("X", "loss", "min", min_delta=0.1, relative=True)
    assert rel.update(2.0) and not rel.update(1.85) and rel.update(1.75)  # < best * (1 - 0.1)
    assert rel.update(-1.0) and rel.update(-1.05)  # torch's rule, as it is for negative values
    with pytest.raises(ValueError, match=r"^X: min_delta must be >= 0\.0, got -1"):
        Monitor("X", "loss", min_delta=-1)


def test_save_best_only_saves_on_improvement_only(tmp_path):
    X, y = make_data()
    model = make_model()
    cb = ModelCheckpoint(tmp_path / "best-{epoch}.npz", save_best_only=True)
    h = fit(model, MSE(), SGD(model.parameters(), lr=10.0), X, y, epochs=6, batch_size=8,
            validation_data=(X, y), callbacks=[cb], verbose=0)
    best = np.minimum.accumulate(h["val_loss"])
    improved = [e + 1 for e in range(len(h)) if e == 0 or best[e] < best[e - 1]]
    assert cb.saved == [str(tmp_path / f"best-{e}.npz") for e in improved]
    assert len(improved) < len(h)  # lr=10 makes some epochs worse: the test can tell
    with pytest.raises(ValueError, match="cannot be combined with every="):
        ModelCheckpoint("x.npz", every=1, save_best_only=True)
