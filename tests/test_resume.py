"""Resume: k epochs + save + load in a fresh process + k more == 2k epochs in one go, bit for bit;
and a training process killed (SIGKILL) while it writes checkpoints leaves one that resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import minidl
from minidl import MSE, Adam, fit, load
from minidl.callbacks import ModelCheckpoint

from ._fit_helpers import (
    assert_same_arrays,
    assert_same_history,
    assert_same_optimizer_state,
    make_data,
    make_model,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The run under test: Dropout (p=0.3) and Adam in the model, shuffled mini-batches, a schedule,
# validation metrics and callbacks whose state must carry over too.
SETUP = """
import sys
sys.path.insert(0, {repo!r})
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
    exec(SETUP.format(repo=REPO), namespace)
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

    resume_code = SETUP.format(repo=REPO) + f"""
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


KILL_CHILD = """
import sys
sys.path.insert(0, {repo!r})
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
    proc = subprocess.Popen([sys.executable, "-c", KILL_CHILD.format(repo=REPO), str(path), when],
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
