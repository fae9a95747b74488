"""A run interrupted anywhere (KeyboardInterrupt, a raising callback, divergence, bad validation
data) either continues bit for bit, by ``fit`` again or from a checkpoint saved then, or
refuses to save. The hypothesis test drives random sequences of fit / interrupt / save /
resume / fit and compares the end with the uninterrupted run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import (
    MSE,
    Adam,
    BatchNorm1d,
    Dense,
    Dropout,
    Sequential,
    Tanh,
    Trainer,
    TrainingDiverged,
)
from minidl.callbacks import Callback, EarlyStopping

from ._fit_helpers import assert_same_arrays, assert_same_history, assert_same_optimizer_state

N, D, BATCH, EPOCHS = 12, 3, 5, 3


def data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    return X, np.where(X[:, :1] - X[:, 1:2] > 0, 1.0, -1.0)


class Plan:
    """When to interrupt: each trigger ``(kind, count)`` fires once, at the ``count``-th event
    of that kind (counted over the whole sequence of Trainers)."""

    def __init__(self, triggers=()):
        self.triggers = set(triggers)
        self.counts: dict[str, int] = {}

    def tick(self, kind: str, exc: type[BaseException]) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if (kind, self.counts[kind]) in self.triggers:
            self.triggers.discard((kind, self.counts[kind]))
            raise exc(f"planned interruption: {kind} #{self.counts[kind]}")


class TripLoss(MSE):
    """MSE that raises KeyboardInterrupt when the plan says (after the model's forward)."""

    def __init__(self, plan: Plan):
        super().__init__()
        self.plan = plan

    def forward(self, pred, target):
        self.plan.tick("loss", KeyboardInterrupt)
        return super().forward(pred, target)


class TripCallback(Callback):
    def __init__(self, plan: Plan):
        self.plan = plan

    def on_epoch_begin(self, epoch, logs=None):
        self.plan.tick("epoch_begin", RuntimeError)

    def on_batch_end(self, batch, logs=None):
        self.plan.tick("batch_end", RuntimeError)

    def on_epoch_end(self, epoch, logs=None):
        self.plan.tick("epoch_end", RuntimeError)


def make_trainer(plan: Plan, **kwargs) -> Trainer:
    model = Sequential(Dense(D, 6, rng=1), BatchNorm1d(6), Tanh(), Dropout(0.3, rng=2),
                       Dense(6, 1, rng=3))
    return Trainer(model, TripLoss(plan), Adam(model.parameters(), lr=0.05), batch_size=BATCH,
                   seed=4, metrics=["accuracy"], callbacks=[TripCallback(plan)], verbose=0,
                   **kwargs)


def run_fit(trainer: Trainer, epochs: int = EPOCHS):
    return trainer.fit(*data(), epochs=epochs, validation_data=data(seed=9, n=7))


def uninterrupted(**kwargs) -> Trainer:
    trainer = make_trainer(Plan(), **kwargs)
    run_fit(trainer)
    return trainer


def assert_same_run(a: Trainer, b: Trainer) -> None:
    assert_same_arrays(a.model.state_dict(), b.model.state_dict())
    assert a.model.rng_state() == b.model.rng_state()
    assert_same_optimizer_state(a.optimizer.state_dict(), b.optimizer.state_dict())
    assert_same_history(a.history, b.history)
    assert (a.epoch, a.step) == (b.epoch, b.step)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def continue_from_checkpoint(trainer: Trainer, plan: Plan, path) -> Trainer:
    trainer.save(path)
    fresh = make_trainer(plan)
    fresh.resume(path)
    return fresh


@pytest.mark.parametrize("kind", ["loss", "batch_end", "epoch_begin", "epoch_end"])
@pytest.mark.parametrize("how", ["fit_again", "checkpoint"])
def test_an_interrupted_run_continues_bit_for_bit(kind, how, tmp_path):
    reference = uninterrupted()
    # inside the second epoch (3 batches and one validation per epoch)
    plan = Plan({(kind, {"loss": 5, "batch_end": 4}.get(kind, 2))})
    trainer = make_trainer(plan)
    with pytest.raises((KeyboardInterrupt, RuntimeError), match="planned interruption"):
        run_fit(trainer)
    assert not plan.triggers
    if how == "checkpoint":
        trainer = continue_from_checkpoint(trainer, plan, tmp_path / "ckpt.npz")
    run_fit(trainer)
    assert_same_run(trainer, reference)


def test_a_checkpoint_saved_mid_epoch_records_its_position(tmp_path):
    plan = Plan({("batch_end", 2)})
    trainer = make_trainer(plan)
    with pytest.raises(RuntimeError):
        run_fit(trainer)
    state = trainer.state_dict()
    assert state["epoch"] == 0 and state["step"] == 2
    assert state["progress"]["next_batch"] == 2
    assert sorted(state["progress"]["order"]) == list(range(N))


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_divergence_leaves_no_trace_of_the_diverged_batch(tmp_path):
    """TrainingDiverged: the diverged batch's BatchNorm statistics and Dropout draws are put
    back, so the Trainer stands before it (and a checkpoint saved then resumes exactly)."""
    trainer = make_trainer(Plan())
    X, y = data()
    trainer.fit(X, y, epochs=1)
    bn = trainer.model[1]
    seen = []

    class Record(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((bn.running_mean.copy(), bn.running_var.copy(),
                         self.model.rng_state()))

    trainer.callbacks.append(Record())
    trainer.optimizer.lr = 1e300  # the next step blows the weights up
    with pytest.raises(TrainingDiverged):
        trainer.fit(X, y, epochs=2)
    assert np.all(np.isfinite(bn.running_mean)) and np.all(np.isfinite(bn.running_var))
    assert len(seen) == 1  # as it was after the last batch that completed
    assert np.array_equal(bn.running_mean, seen[0][0])
    assert np.array_equal(bn.running_var, seen[0][1])
    assert trainer.model.rng_state() == seen[0][2]
    # the step that diverged was the second of epoch 2: its forward pass left nothing behind
    assert trainer.state_dict()["progress"]["next_batch"] == 1
    trainer.save(tmp_path / "diverged.npz")


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_batchnorm_ignores_non_finite_batch_statistics():
    bn = BatchNorm1d(2)
    bn.forward(np.array([[1.0, 2.0], [3.0, np.inf]]))
    assert np.all(np.isfinite(bn.running_mean)) and np.all(np.isfinite(bn.running_var))
    assert bn.running_mean[0] == pytest.approx(0.2)  # the finite feature still updates


def test_an_interruption_inside_the_optimizer_step_refuses_save_and_fit(tmp_path):
    trainer = make_trainer(Plan())
    original = trainer.optimizer.step
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original()

    trainer.optimizer.step = step
    with pytest.raises(KeyboardInterrupt):
        run_fit(trainer)
    with pytest.raises(RuntimeError, match=r"inside the optimizer step of epoch 1, step 2"):
        trainer.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(RuntimeError, match="cannot train on"):
        run_fit(trainer)


def test_fit_again_after_bad_validation_data_continues_the_epoch():
    reference = uninterrupted()
    trainer = make_trainer(Plan())
    X, y = data()
    X_val, y_val = data(seed=9, n=7)
    with pytest.raises(Exception, match="shape"):
        trainer.fit(X, y, epochs=EPOCHS, validation_data=(X_val, y_val[:, 0]))
    run_fit(trainer)
    assert_same_run(trainer, reference)


def test_fit_again_with_other_data_mid_epoch_is_refused():
    trainer = make_trainer(Plan({("batch_end", 1)}))
    with pytest.raises(RuntimeError):
        run_fit(trainer)
    X, y = data(n=N + 1)
    with pytest.raises(ValueError, match=r"interrupted inside epoch 1 \(after 1 batches\) of a "
                                         r"training set of 12 rows, but X has 13"):
        trainer.fit(X, y, epochs=EPOCHS)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_on_nonfinite_stop_then_fit_again_shuffles_as_before():
    """The "stop" rollback restores the shuffling Generator: training on after a stop draws
    the same permutation the rolled-back epoch drew (a rollback that forgot it would not)."""
    X, y = data()
    trainer = make_trainer(Plan(), on_nonfinite="stop")
    trainer.fit(X, y, epochs=1)
    rng_before = trainer.rng.bit_generator.state
    state = trainer.model.state_dict()
    lr = trainer.optimizer.lr
    trainer.optimizer.lr = 1e300
    trainer.fit(X, y, epochs=2)
    assert trainer.history.events and trainer.epoch == 1
    assert trainer.rng.bit_generator.state == rng_before
    assert_same_arrays(trainer.model.state_dict(), state)
    trainer.optimizer.lr = lr
    trainer.fit(X, y, epochs=2)
    other = make_trainer(Plan())
    other.fit(X, y, epochs=2)
    assert_same_arrays(trainer.model.state_dict(), other.model.state_dict())


def test_early_stopping_resumes_with_its_counter_part_way(tmp_path):
    """patience 3, and the counter at 2 when the checkpoint is written: a resumed run that
    forgot it would train on for 3 more epochs instead of stopping after 1."""
    X, y = data()

    def make(cb):
        model = Sequential(Dense(D, 1, rng=1))
        # lr 0: val_loss never improves after the first epoch
        return Trainer(model, MSE(), Adam(model.parameters(), lr=0.0), seed=1,
                       callbacks=[cb], verbose=0)

    full = make(EarlyStopping(monitor="train_loss", patience=3))
    full.fit(X, y, epochs=10)
    assert full.epoch == 4
    part = make(EarlyStopping(monitor="train_loss", patience=3))
    part.fit(X, y, epochs=3)
    assert part.callbacks[0].wait == 2
    part.save(tmp_path / "es.npz")
    resumed = make(EarlyStopping(monitor="train_loss", patience=3))
    resumed.resume(tmp_path / "es.npz")
    resumed.fit(X, y, epochs=10)
    assert resumed.epoch == 4
    assert resumed.callbacks[0].stopped_epoch == 4


KINDS = ["loss", "batch_end", "epoch_begin", "epoch_end"]


@given(events=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(1, 14),
                          st.sampled_from(["fit_again", "checkpoint"])),
                max_size=4))
def test_random_interruptions_end_as_the_uninterrupted_run(events, tmp_path_factory):
    reference = uninterrupted()
    plan = Plan((kind, count) for kind, count, _ in events)
    actions = [how for _, _, how in events]
    trainer = make_trainer(plan)
    folder = tmp_path_factory.mktemp("runs")
    for attempt in range(len(events) + 1):
        try:
            run_fit(trainer)
            break
        except (KeyboardInterrupt, RuntimeError) as exc:
            assert "planned interruption" in str(exc)
            if actions[attempt % len(actions)] == "checkpoint":
                trainer = continue_from_checkpoint(trainer, plan, folder / f"{attempt}.npz")
    else:
        pytest.fail("more interruptions than planned")
    assert_same_run(trainer, reference)
