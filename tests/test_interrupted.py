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
    History,
    Sequential,
    StateDictError,
    Tanh,
    Trainer,
    TrainingDiverged,
)
from minidl.callbacks import Callback, EarlyStopping
from minidl.resume import EpochProgress

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


def test_load_state_dict_alone_continues_an_interrupted_epoch_bit_for_bit():
    """No checkpoint file: the model's, optimizer's and Trainer's state dicts (the last with
    the position inside the epoch) and the History carry the run into a fresh Trainer."""
    reference = uninterrupted()
    plan = Plan({("batch_end", 5)})  # the second batch of the second epoch
    trainer = make_trainer(plan)
    with pytest.raises(RuntimeError, match="planned interruption"):
        run_fit(trainer)
    assert trainer.progress is not None and trainer.progress.next_batch == 2
    fresh = make_trainer(plan)
    fresh.model.load_state_dict(trainer.model.state_dict())
    fresh.model.set_rng_state(trainer.model.rng_state())
    fresh.optimizer.load_state_dict(trainer.optimizer.state_dict())
    fresh.load_state_dict(trainer.state_dict())
    fresh.history = History.from_state_dict(trainer.history.state_dict())
    assert fresh.progress is not None and fresh.progress is not trainer.progress
    assert fresh.progress.state_dict().keys() == trainer.progress.state_dict().keys()
    run_fit(fresh)
    assert_same_run(fresh, reference)


def progress_state(**changes):
    order = np.array([2, 0, 1, 3])
    state = EpochProgress(epoch=1, n=4, order=order, lr=0.1, next_batch=1, loss_sum=0.5,
                          train_pred=np.zeros((4, 1)), elapsed=0.25).state_dict()
    return {**state, **changes}


def test_epoch_progress_is_plain_state_and_refuses_what_does_not_continue_its_epoch():
    state = progress_state()
    assert state == {**state}  # (a plain dict) and it reads back as it was
    back = EpochProgress.from_state_dict(state, epoch=1)
    assert back.state_dict().keys() == state.keys()
    assert all(np.array_equal(back.state_dict()[k], v) for k, v in state.items())
    assert back.order is not state["order"]  # new arrays: later batches change neither
    for bad, error, message in [
        (progress_state(), ValueError, "does not continue epoch 3"),  # read for epoch 2
        (progress_state(next_batch=-1), ValueError, "does not continue epoch 2"),
        (progress_state(order=np.array([0, 0, 1, 2])), ValueError, "not a permutation of 4"),
        (progress_state(order=np.arange(4.0)), ValueError, "not a permutation of 4"),
        (progress_state(train_pred=np.zeros((3, 1))), ValueError, "partial predictions"),
        (progress_state(train_pred=np.zeros((4, 1), dtype=np.int64)), ValueError,
         "partial predictions"),
        ([1, 2], TypeError, "progress is a list, not a dict"),
    ]:
        with pytest.raises(error, match=message):
            EpochProgress.from_state_dict(bad, epoch=2 if message.endswith("3") else 1)
    without = {k: v for k, v in state.items() if k != "lr"}
    with pytest.raises(KeyError, match="lr"):
        EpochProgress.from_state_dict(without, epoch=1)


def test_a_trainer_refuses_a_malformed_position_and_changes_nothing():
    trainer = make_trainer(Plan({("batch_end", 2)}))
    with pytest.raises(RuntimeError):
        run_fit(trainer)
    good = trainer.state_dict()
    bad = {**good, "progress": {**good["progress"], "order": np.arange(N - 1)}}
    with pytest.raises(StateDictError, match=r"Trainer.load_state_dict: ValueError: progress: "
                                             r"the order is not a permutation of 12 rows"):
        trainer.load_state_dict(bad)
    after = trainer.state_dict()
    assert after.keys() == good.keys() and after["progress"]["next_batch"] == 2
    assert np.array_equal(after["progress"]["order"], good["progress"]["order"])


def test_an_epoch_begun_without_metrics_cannot_end_with_them():
    plan = Plan({("batch_end", 1)})
    model = Sequential(Dense(D, 1, rng=1))
    first = Trainer(model, MSE(), Adam(model.parameters()), batch_size=BATCH, seed=4,
                    callbacks=[TripCallback(plan)], verbose=0)
    with pytest.raises(RuntimeError, match="planned interruption"):
        first.fit(*data(), epochs=1)
    again = Trainer(model, MSE(), Adam(model.parameters()), batch_size=BATCH, seed=4,
                    metrics=["accuracy"], verbose=0)
    again.load_state_dict(first.state_dict())
    before = again.state_dict()
    with pytest.raises(ValueError, match=r"epoch 1 of this run began without metrics: the "
                                         r"predictions of its first 1 batches"):
        again.fit(*data(), epochs=1)
    assert again.state_dict()["step"] == before["step"] == 1  # refused before any batch


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
