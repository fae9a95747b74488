"""Resume: k epochs + save + load in a fresh process + k more == 2k epochs in one go, bit for bit;
and a training process killed (SIGKILL) while it writes checkpoints leaves one that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import minidl
import minidl.resume
from minidl import (
    MSE,
    SGD,
    Adam,
    CheckpointError,
    Dense,
    Dropout,
    Sequential,
    Tanh,
    Trainer,
    fit,
    load,
)
from minidl.callbacks import Callback, EarlyStopping, ModelCheckpoint, WeightTrajectory
from minidl.errors import StateDictError

from ._fit_helpers import (
    assert_same_arrays,
    assert_same_history,
    assert_same_optimizer_state,
    assert_same_tree,
    make_data,
    make_model,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")  # the minidl under test

# The run under test: Dropout (p=0.3) and Adam in the model, shuffled mini-batches, a schedule,
# validation metrics and callbacks whose state must carry over too.
SETUP = """
import sys
sys.path[:0] = [{src!r}, {repo!r}]
import minidl
from minidl import MSE, Adam
from minidl.callbacks import EarlyStopping, ModelCheckpoint, WeightTrajectory
from minidl.schedules import StepLR
from tests._fit_helpers import make_data, make_model

X, y = make_data()
X_val, y_val = make_data(n=30, seed=5)


def run(model, optimizer, epochs, final_path, resume=None):
    callbacks = [StepLR(optimizer, step_size=2, gamma=0.5), WeightTrajectory(),
                 EarlyStopping("val_loss", patience=100),
                 ModelCheckpoint(final_path, every=epochs)]
    return minidl.fit(model, MSE(), optimizer, X, y, epochs=epochs, batch_size=16, seed=7,
                      validation_data=(X_val, y_val), metrics=["accuracy"],
                      callbacks=callbacks, verbose=0, resume=resume)
"""


def setup_namespace() -> dict:
    namespace: dict = {}
    exec(SETUP.format(repo=REPO, src=SRC), namespace)
    return namespace


def assert_same_checkpoint(a, b) -> None:
    assert_same_arrays(a.model.state_dict(), b.model.state_dict())
    assert a.model.rng_state() == b.model.rng_state()  # dropout masks
    assert_same_optimizer_state(a.optimizer.state_dict(), b.optimizer.state_dict())
    assert_same_history(a.history, b.history)
    ta, tb = dict(a.trainer_state), dict(b.trainer_state)
    assert ta.pop("train_time") > 0 and tb.pop("train_time") > 0
    traj_a = ta["callbacks"].pop("WeightTrajectory:0")
    traj_b = tb["callbacks"].pop("WeightTrajectory:0")
    assert_same_arrays(traj_a, traj_b)
    assert ta == tb  # epoch, step, seed, shuffling state, schedule and early-stopping state


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    k = 3
    ns = setup_namespace()
    straight_model = make_model()
    ns["run"](straight_model, Adam(straight_model.parameters(), lr=0.01), 2 * k,
              tmp_path / "straight.npz")

    half = make_model()
    ns["run"](half, Adam(half.parameters(), lr=0.01), k, tmp_path / "half.npz")
    assert load(tmp_path / "half.npz").epoch == k

    resume_code = SETUP.format(repo=REPO, src=SRC) + f"""
ck = minidl.load(sys.argv[1])
history = run(ck.model, ck.optimizer, {2 * k}, sys.argv[2], resume=ck)
assert len(history) == {2 * k}, len(history)
"""
    subprocess.run([sys.executable, "-c", resume_code, str(tmp_path / "half.npz"),
                    str(tmp_path / "resumed.npz")], check=True, cwd=tmp_path, timeout=60)

    straight, resumed = load(tmp_path / "straight.npz"), load(tmp_path / "resumed.npz")
    assert resumed.epoch == straight.epoch == 2 * k
    assert_same_checkpoint(straight, resumed)
    assert straight.optimizer.lr == 0.01 * 0.5**3  # the schedule carried over, too
    # the comparison can fail: the two halves differ from each other
    assert not np.array_equal(load(tmp_path / "half.npz").model.state_dict()["0.weight"],
                              straight.model.state_dict()["0.weight"])


def test_resume_from_a_path_into_the_users_own_objects(tmp_path):
    """fit(..., resume=path) loads weights, random and optimizer state into the model and
    optimizer passed, so one script serves a fresh run and a resumed one."""
    ns = setup_namespace()
    straight_model = make_model()
    straight_opt = Adam(straight_model.parameters(), lr=0.01)
    h_straight = ns["run"](straight_model, straight_opt, 4, tmp_path / "straight.npz")

    first = make_model()
    ns["run"](first, Adam(first.parameters(), lr=0.01), 2, tmp_path / "two.npz")
    second = make_model(seed=99)  # different initial weights: all of them get overwritten
    second_opt = Adam(second.parameters(), lr=0.01)
    h = ns["run"](second, second_opt, 4, tmp_path / "four.npz", resume=tmp_path / "two.npz")
    assert_same_arrays(second.state_dict(), straight_model.state_dict())
    assert_same_optimizer_state(second_opt.state_dict(), straight_opt.state_dict())
    assert_same_history(h, h_straight)


def test_resume_needs_the_training_state_and_the_same_seed(tmp_path):
    model = make_model()
    opt = Adam(model.parameters())
    X, y = make_data(n=20)
    minidl.save(tmp_path / "bare.npz", model, opt)
    with pytest.raises(ValueError, match="bare.npz has no training state"):
        fit(model, MSE(), opt, X, y, epochs=2, verbose=0, resume=tmp_path / "bare.npz")
    fit(model, MSE(), opt, X, y, epochs=1, seed=3, verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "run.npz")])
    with pytest.raises(ValueError, match="seed=4 differs from the seed of the run being resumed"):
        fit(model, MSE(), opt, X, y, epochs=2, seed=4, verbose=0, resume=tmp_path / "run.npz")
    h = fit(model, MSE(), opt, X, y, epochs=2, verbose=0, resume=tmp_path / "run.npz")
    assert len(h) == 2
    with pytest.raises(TypeError, match="expected a path or a Checkpoint"):
        fit(model, MSE(), opt, X, y, epochs=2, verbose=0, resume=3)


class Picky(Callback):
    """A callback with state that refuses, on load, a state saved with ok=False."""

    def __init__(self, ok=True):
        self.ok = ok

    def state_dict(self):
        return {"ok": self.ok}

    def load_state_dict(self, state):
        if not state["ok"]:
            raise ValueError("this run refuses a not-ok state")
        self.ok = state["ok"]


def training_run(model=None, optimizer=None, *, picky_ok=True, **kwargs):
    """A Trainer with callbacks that carry state (EarlyStopping first, so a refusal by Picky
    must undo it), trained for 2 epochs."""
    model = make_model() if model is None else model
    optimizer = Adam(model.parameters(), lr=0.01) if optimizer is None else optimizer
    kwargs = {"batch_size": 8, "seed": 3, **kwargs}
    trainer = Trainer(model, MSE(), optimizer, verbose=0,
                      callbacks=[EarlyStopping(patience=100, restore_best_weights=True),
                                 WeightTrajectory(), Picky(picky_ok)], **kwargs)
    train_more(trainer, 2)
    return trainer


def train_more(trainer, epochs):
    return trainer.fit(*make_data(n=30, seed=3), epochs=epochs,
                       validation_data=make_data(n=10, seed=9))


def everything(trainer):
    """All a resume could change: model weights and random state, optimizer, trainer state
    (counters, shuffling Generator, callback states) and History."""
    return {"model": trainer.model.state_dict(), "rng": trainer.model.rng_state(),
            "optimizer": trainer.optimizer.state_dict(), "trainer": trainer.state_dict(),
            "history": trainer.history.state_dict(), "seed": trainer.seed}


def moved_dropout():
    return Sequential(Dense(5, 16, rng=1), Dropout(0.3, rng=2), Tanh(), Dense(16, 1, rng=3),
                      Tanh())


def sgd_run():
    model = make_model()
    return training_run(model, SGD(model.parameters(), lr=0.1, momentum=0.9))


def bare(path):
    model = make_model()
    minidl.save(path, model, Adam(model.parameters()))


REFUSALS = {
    "no training state": (bare, ValueError, "has no training state"),
    "seed": (lambda p: training_run(seed=4).save(p), ValueError,
             "seed=3 differs from the seed of the run being resumed .4.; leave seed unset or "
             "pass seed=4"),
    "batch_size": (lambda p: training_run(batch_size=16).save(p), ValueError,
                   "batch_size=8 differs from the batch_size of the run being resumed .16.; "
                   "pass batch_size=16"),
    "shuffle": (lambda p: training_run(shuffle=False).save(p), ValueError,
                "shuffle=True differs from the run being resumed .shuffle=False.; pass "
                "shuffle=False"),
    "optimizer": (lambda p: sgd_run().save(p), CheckpointError,
                  "cannot load a state dict saved by SGD"),
    "random state": (lambda p: training_run(moved_dropout()).save(p), CheckpointError,
                     r"random state keys differ: model has \['2.rng'\], got \['1.rng'\]"),
    "model": (lambda p: training_run(make_model(hidden=4)).save(p), CheckpointError,
              "does not fit the model"),
    "callback": (lambda p: training_run(picky_ok=False).save(p), CheckpointError,
                 "the saved state of callback Picky:0 does not fit it: ValueError: this run "
                 "refuses"),
}


@pytest.mark.parametrize("as_checkpoint", [False, True], ids=["path", "Checkpoint"])
@pytest.mark.parametrize("reason", list(REFUSALS))
def test_a_refused_resume_changes_nothing(tmp_path, reason, as_checkpoint):
    """Everything is checked before anything is written: after a refused resume the model,
    the optimizer and the Trainer (callbacks and History included) are unchanged, bit for
    bit, and can go on training."""
    write, error, message = REFUSALS[reason]
    path = tmp_path / "ck.npz"
    write(path)
    trainer = training_run(make_model(seed=11))
    before = everything(trainer)
    with pytest.raises(error, match=message):
        trainer.resume(load(path) if as_checkpoint else path)
    assert_same_tree(everything(trainer), before)
    assert len(train_more(trainer, 3)) == 3


def test_a_resume_whose_last_write_fails_puts_the_trainer_back(tmp_path, monkeypatch):
    """The model and optimizer are written last; should that write fail (it was checked, so
    it should not), the Trainer's state and callbacks go back to where they were."""
    from minidl.checkpoint import PendingLoad

    training_run(seed=3).save(tmp_path / "ck.npz")
    trainer = training_run(make_model(seed=11))
    train_more(trainer, 3)
    before = everything(trainer)

    def fail(self):
        raise OSError("the disk went away")

    monkeypatch.setattr(PendingLoad, "commit", fail)
    with pytest.raises(OSError, match="the disk went away"):
        trainer.resume(tmp_path / "ck.npz")
    assert_same_tree(everything(trainer), before)


def test_the_former_resume_functions_warn_and_still_work():
    trainer = training_run()
    with pytest.warns(DeprecationWarning, match="use trainer.state_dict"):
        state = minidl.resume.trainer_state(trainer)
    assert_same_tree(state, trainer.state_dict())
    with pytest.warns(DeprecationWarning, match=r"use trainer.load_state_dict\(state\)"):
        minidl.resume.load_trainer_state(trainer, {**state, "step": 99})
    assert trainer.step == 99


def test_resume_refuses_another_batch_size_or_shuffle(tmp_path):
    """The shuffling depends on seed, batch_size and shuffle: all three must match."""
    model = make_model()
    opt = Adam(model.parameters())
    X, y = make_data(n=20)
    fit(model, MSE(), opt, X, y, epochs=1, batch_size=8, seed=3, verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "run.npz")])
    state = load(tmp_path / "run.npz").trainer_state
    assert (state["batch_size"], state["shuffle"]) == (8, True)
    with pytest.raises(ValueError, match=r"batch_size=32 differs .* \(8\); pass batch_size=8"):
        fit(model, MSE(), opt, X, y, epochs=2, verbose=0, resume=tmp_path / "run.npz")
    with pytest.raises(ValueError, match=r"^fit: cannot resume .*run.npz exactly: batch_size=4 .*"
                                         r"; shuffle=False differs .*; pass shuffle=True"):
        fit(model, MSE(), opt, X, y, epochs=2, batch_size=4, shuffle=False, verbose=0,
            resume=tmp_path / "run.npz")
    h = fit(model, MSE(), opt, X, y, epochs=2, batch_size=8, verbose=0,
            resume=tmp_path / "run.npz")
    assert len(h) == 2
    # a full-batch run says so
    fit(model, MSE(), opt, X, y, epochs=1, batch_size=None, verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "full.npz")])
    with pytest.raises(ValueError, match=r"pass batch_size=None \(the full batch\)"):
        fit(model, MSE(), opt, X, y, epochs=2, batch_size=8, verbose=0,
            resume=tmp_path / "full.npz")


def test_checkpoints_without_batch_size_and_shuffle_still_resume(tmp_path):
    """Checkpoints written before batch_size and shuffle were saved hold only the seed."""
    model = make_model()
    X, y = make_data(n=20)
    fit(model, MSE(), Adam(model.parameters()), X, y, epochs=1, batch_size=8, verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "old.npz")])
    with np.load(tmp_path / "old.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__minidl__"].tobytes())
    meta["trainer"].pop("batch_size", None)
    meta["trainer"].pop("shuffle", None)
    arrays["__minidl__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    again = make_model(seed=5)
    h = fit(again, MSE(), Adam(again.parameters()), X, y, epochs=2, batch_size=4, verbose=0,
            resume=tmp_path / "old.npz")
    assert len(h) == 2


def test_trainer_load_state_dict_checks_before_writing():
    trainer = training_run()
    before = everything(trainer)
    good = trainer.state_dict()
    for bad, error, message in [
        ({**good, "shuffle_rng": {"bit_generator": "MT19937"}}, StateDictError,
         "Trainer.load_state_dict: ValueError"),
        ({k: v for k, v in good.items() if k != "epoch"}, StateDictError, "no 'epoch'"),
        ({**good, "batch_size": 0}, StateDictError, "batch_size is 0"),
        ({**good, "callbacks": {**good["callbacks"], "Picky:0": {"ok": False}}},
         StateDictError, "callback Picky:0 does not fit"),
        ({**good, "seed": 4}, ValueError, "seed=3 differs"),
        ([1], StateDictError, "expected a dict, got list"),
    ]:
        with pytest.raises(error, match=message):
            trainer.load_state_dict(bad)
        assert_same_tree(everything(trainer), before)
    trainer.load_state_dict(good)
    assert_same_tree(everything(trainer), before)


KILL_CHILD = """
import sys
sys.path[:0] = [{src!r}, {repo!r}]
import minidl
from minidl import MSE, Adam
from minidl.callbacks import Callback, ModelCheckpoint
from tests._fit_helpers import make_data, make_model


class Announce(Callback):
    order = 200  # after ModelCheckpoint: a printed epoch is on disk

    def on_epoch_end(self, epoch, logs=None):
        print(epoch + 1, flush=True)


if sys.argv[2] == "mid-write":  # the 4th save stops half-way through writing its file
    import io
    import time

    import numpy as np

    real_savez, saves = np.savez, []

    def savez(f, **arrays):
        saves.append(1)
        if len(saves) == 4:
            buffer = io.BytesIO()
            real_savez(buffer, **arrays)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
        real_savez(f, **arrays)

    np.savez = savez

X, y = make_data(n=200)
model = make_model(hidden=64)
minidl.fit(model, MSE(), Adam(model.parameters(), lr=0.01), X, y, epochs=10**9, batch_size=16,
           seed=3, callbacks=[ModelCheckpoint(sys.argv[1], every=1), Announce()], verbose=0)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("when", ["after-epoch-5", "mid-write"])
def test_a_process_killed_while_checkpointing_leaves_a_checkpoint_that_resumes(tmp_path, when):
    """A process trains and saves a checkpoint every epoch, forever, until SIGKILL: as soon as
    it has saved epoch 5 (it is then training epoch 6, or writing again), or while half of the
    epoch-4 checkpoint is in its temporary file. What is on disk loads, and resuming from it
    gives the uninterrupted run, bit for bit."""
    path = tmp_path / "run.npz"
    child = KILL_CHILD.format(repo=REPO, src=SRC)
    proc = subprocess.Popen([sys.executable, "-c", child, str(path), when],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        line = ""
        while line != ("writing" if when == "mid-write" else "5"):
            line = proc.stdout.readline().strip()
            assert line, f"the training process died: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    ck = load(path)  # whatever was on disk at the kill is a complete checkpoint
    assert len(ck.history) == ck.epoch
    if when == "mid-write":
        assert ck.epoch == 3  # the previous checkpoint, intact
        (torn,) = tmp_path.glob(".run.npz.*.tmp")  # the interrupted write, never renamed
        assert torn.stat().st_size > 0
    else:
        assert ck.epoch >= 5
    X, y = make_data(n=200)
    resumed = make_model(hidden=64)
    resumed_opt = Adam(resumed.parameters(), lr=0.01)
    h = fit(resumed, MSE(), resumed_opt, X, y, epochs=ck.epoch + 2, batch_size=16, seed=3,
            verbose=0, resume=path)
    assert len(h) == ck.epoch + 2

    reference = make_model(hidden=64)  # the same run, never interrupted
    reference_opt = Adam(reference.parameters(), lr=0.01)
    h_ref = fit(reference, MSE(), reference_opt, X, y, epochs=ck.epoch + 2, batch_size=16,
                seed=3, verbose=0)
    assert_same_arrays(resumed.state_dict(), reference.state_dict())
    assert_same_optimizer_state(resumed_opt.state_dict(), reference_opt.state_dict())
    assert_same_history(h, h_ref)


def test_loaded_checkpoint_reports_its_epoch(tmp_path):
    model = make_model()
    X, y = make_data(n=20)
    fit(model, MSE(), Adam(model.parameters()), X, y, epochs=3, verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "c.npz")])
    ck = load(tmp_path / "c.npz")
    assert ck.epoch == 3 == ck.trainer_state["epoch"] == len(ck.history)
    assert ck.trainer_state["step"] == 3  # full batch: one step per epoch


def test_the_loop_fits_on_a_screen_and_resume_uses_the_trainers_public_api():
    """The design checks of issue 18: the epoch loop is at most 40 lines, resume.py reads and
    writes no private field of a Trainer, and save takes plain state, not a Trainer."""
    import inspect
    import re

    import minidl.checkpoint
    import minidl.resume
    import minidl.training

    assert len(inspect.getsource(minidl.training.Trainer._run_epoch).splitlines()) <= 40
    assert not re.search(r"trainer\._", inspect.getsource(minidl.resume))
    assert "trainer_state" in inspect.signature(minidl.checkpoint.save).parameters


def test_training_imports_no_private_names_and_resume_has_one_way_in(monkeypatch, tmp_path):
    import ast
    import inspect

    import minidl.checkpoint
    import minidl.resume
    import minidl.training

    tree = ast.parse(inspect.getsource(minidl.training))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    assert imported and not [name for name in imported if name.startswith("_")]
    # a path and a loaded Checkpoint both go through checkpoint.prepare_load
    seen = []
    real = minidl.checkpoint.prepare_load

    def spy(source, *args, **kwargs):
        seen.append(type(source).__name__)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(minidl.resume, "prepare_load", spy)
    X, y = make_data()
    model = make_model()
    trainer = Trainer(model, MSE(), Adam(model.parameters(), lr=0.01), batch_size=16, verbose=0)
    trainer.fit(X, y, epochs=1)
    trainer.save(tmp_path / "run.npz")
    for source in (tmp_path / "run.npz", load(tmp_path / "run.npz")):
        again = make_model()
        Trainer(again, MSE(), Adam(again.parameters(), lr=0.01), batch_size=16,
                verbose=0).resume(source)
    assert seen == ["PosixPath", "Checkpoint"]


def test_a_failed_resume_keeps_the_refusal_to_save_a_half_updated_step(tmp_path, monkeypatch):
    """A Trainer interrupted inside optimizer.step() refuses to save; a resume whose model and
    optimizer write fails puts it back as it was, refusal included."""
    from minidl.checkpoint import PendingLoad

    X = np.random.default_rng(0).standard_normal((16, 2))
    y = X[:, :1]

    def make():
        model = minidl.Sequential(minidl.Dense(2, 1, rng=0))
        return minidl.Trainer(model, minidl.MSE(), minidl.SGD(model.parameters(), lr=0.1),
                              batch_size=4, verbose=0)

    good = make()
    good.fit(X, y, epochs=1)
    good.save(tmp_path / "ck.npz")
    broken = make()
    real_step, calls = broken.optimizer.step, []

    def step():
        calls.append(1)
        if len(calls) == 3:
            broken.optimizer.params[0].data[...] += 100.0  # half an update, then Ctrl-C
            raise KeyboardInterrupt
        real_step()

    broken.optimizer.step = step
    with pytest.raises(KeyboardInterrupt):
        broken.fit(X, y, epochs=1)
    with pytest.raises(RuntimeError, match="interrupted inside the optimizer step"):
        broken.save(tmp_path / "half.npz")

    def fail(self):
        raise OSError("the disk went away")

    monkeypatch.setattr(PendingLoad, "commit", fail)
    with pytest.raises(OSError, match="the disk went away"):
        broken.resume(tmp_path / "ck.npz")
    with pytest.raises(RuntimeError, match="interrupted inside the optimizer step"):
        broken.save(tmp_path / "half.npz")
    assert not (tmp_path / "half.npz").exists()


def test_callback_keys_given_a_trainer_is_deprecated_and_still_answers():
    model = minidl.Sequential(minidl.Dense(2, 1, rng=0))
    trainer = minidl.Trainer(model, minidl.MSE(), minidl.SGD(model.parameters(), lr=0.1),
                             callbacks=[EarlyStopping("loss"), EarlyStopping("loss")], verbose=0)
    with pytest.warns(DeprecationWarning, match=r"callback_keys\(trainer\) is deprecated"):
        keys = minidl.resume.callback_keys(trainer)
    assert [key for key, _ in keys] == ["EarlyStopping:0", "EarlyStopping:1"]


# ---------------------------------------------------------------------- tampered positions
MAE = {"mae": lambda y, pred: float(np.mean(np.abs(y - pred)))}


class StopAtStep(Callback):
    def __init__(self, step):
        self.at = step

    def on_batch_end(self, batch, logs=None):
        if logs["step"] == self.at:
            raise KeyboardInterrupt


def mid_epoch_checkpoint(path, shuffle=True):
    """A run of 30 rows in batches of 8 (4 a epoch) with a metric, saved after 6 steps: inside
    epoch 2, before its batch 3."""
    X, y = make_data(n=30)
    model = make_model()
    trainer = minidl.Trainer(model, MSE(), Adam(model.parameters(), lr=0.01), batch_size=8,
                             seed=1, shuffle=shuffle, metrics=MAE, verbose=0,
                             callbacks=[StopAtStep(6)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, epochs=3)
    trainer.save(path)
    return X, y


def change_progress(path, **changes):
    """Rewrite the checkpoint's saved position; arrays it no longer names are dropped."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("__minidl__").tobytes())
    meta["trainer"]["progress"].update(changes)
    for name in [n for n in arrays if n.startswith("trainer/progress/")]:
        if meta["trainer"]["progress"][name.split("/")[2]] != {"__ndarray__": name}:
            del arrays[name], meta["arrays"][name]
    arrays["__minidl__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"next_batch": 999}, "next_batch is 999, but epoch 2 has 4 batches"),
        ({"next_batch": 2.5}, "next_batch must be an int"),
        ({"epoch": True}, "epoch must be an int"),
        ({"lr": {"__float__": "nan"}}, "lr must be a finite number, got nan"),
        ({"lr": -0.5}, "lr must be >= 0.0"),
        ({"loss_sum": {"__float__": "inf"}}, "loss_sum must be a finite number"),
        ({"elapsed": -1.0}, "elapsed must be >= 0.0"),
        ({"order": None}, "the order of a shuffled epoch is missing"),
        ({"train_pred": None}, "epoch 2 of this run began without metrics: the predictions of "
                               "its first 2 batches"),
    ],
)
def test_a_tampered_position_is_refused_before_anything_is_written(tmp_path, changes, message):
    path = tmp_path / "run.npz"
    X, y = mid_epoch_checkpoint(path)
    change_progress(path, **changes)
    model = make_model(seed=9)
    before = model.state_dict()
    with pytest.raises((CheckpointError, ValueError), match=message):
        fit(model, MSE(), Adam(model.parameters(), lr=0.01), X, y, epochs=3, batch_size=8,
            metrics=MAE, verbose=0, resume=path)
    assert_same_arrays(model.state_dict(), before)


def test_an_unshuffled_epoch_with_an_order_and_a_bad_train_time_are_refused(tmp_path):
    path = tmp_path / "run.npz"
    mid_epoch_checkpoint(path, shuffle=False)
    change_progress(path, order=list(range(30)))  # a list: read back as an int array
    model = make_model()
    with pytest.raises(CheckpointError, match="the order of an unshuffled epoch is given"):
        minidl.Trainer(model, MSE(), Adam(model.parameters(), lr=0.01), batch_size=8,
                       shuffle=False, metrics=MAE, verbose=0).resume(path)
    mid_epoch_checkpoint(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("__minidl__").tobytes())
    meta["trainer"]["train_time"] = {"__float__": "nan"}
    arrays["__minidl__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="train_time must be a finite number"):
        minidl.Trainer(model, MSE(), Adam(model.parameters(), lr=0.01), batch_size=8,
                       metrics=MAE, verbose=0).resume(path)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epoch", -3, "epoch must be an int >= 0, got -3"),
    ("step", 2.5, "step must be an int"),
    ("seed", "x", "seed must be an int"),
])
def test_load_itself_refuses_a_tampered_training_state(tmp_path, field, value, message):
    """Found by the replay of issue 19: load returned a Checkpoint whose epoch was -3 (only a
    resume checked the training state); the loader checks it, naming the file."""
    path = tmp_path / "run.npz"
    mid_epoch_checkpoint(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("__minidl__").tobytes())
    meta["trainer"][field] = value
    arrays["__minidl__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=rf"run\.npz: corrupt training state: .*{message}"):
        minidl.load(path)
