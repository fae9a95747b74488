"""Callbacks: EarlyStopping (Keras's rules), ProgressBar, WeightTrajectory, ModelCheckpoint."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import MSE, SGD, Adam, History, RecursiveMLP, Tanh, fit
from minidl.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    ProgressBar,
    WeightTrajectory,
)
from minidl.schedules import StepLR

from ._fit_helpers import make_data, make_model


def flat(model) -> np.ndarray:
    return np.concatenate([p.data.ravel() for p in model.parameters()])


class FakeTrainer:
    """Just what a callback reads, so a rule can be driven with scripted values."""

    def __init__(self, keys=("epoch", "train_loss", "val_loss", "val_accuracy")):
        self.log_keys = list(keys)
        self.epoch = 0
        self.step = 0
        self.stop_training = False
        self.history = History()
        self.model = RecursiveMLP([3, 2, 1], rng=0)
        self.optimizer = None
        self.epochs = 100
        self.batch_size = None


def drive(callback, monitor, values, trainer=None) -> int:
    """Feed ``values`` as successive epochs; return the 1-based epoch training stopped at
    (0 if it never stopped)."""
    trainer = FakeTrainer() if trainer is None else trainer
    callback.set_trainer(trainer)
    callback.on_train_begin({})
    for epoch, value in enumerate(values):
        trainer.epoch = epoch + 1
        callback.on_epoch_end(epoch, {monitor: value})
        if trainer.stop_training:
            return epoch + 1
    return 0


# ---------------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize(
    ("kwargs", "values", "stopped"),
    [
        # patience epochs in a row without improvement, then stop (Keras)
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.96, 0.97, 0.5], 4),
        ({"patience": 0}, [1.0, 0.9, 0.95, 0.96], 3),
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.8, 0.85, 0.7, 0.71, 0.72], 8),
        ({"patience": 5}, [1.0, 0.9, 0.8, 0.7], 0),
        # min_delta: an improvement must beat the best by more than min_delta
        ({"patience": 1, "min_delta": 0.2}, [1.0, 0.9, 0.85, 0.7], 2),
        ({"patience": 1, "min_delta": 0.05}, [1.0, 0.9, 0.85, 0.7], 3),
        # an equal value is not an improvement
        ({"patience": 1}, [1.0, 1.0], 2),
    ],
)
def test_early_stopping_rule(kwargs, values, stopped):
    assert drive(EarlyStopping(monitor="val_loss", **kwargs), "val_loss", values) == stopped


def test_early_stopping_mode_max_and_auto():
    values = [0.5, 0.6, 0.6, 0.55]
    assert drive(EarlyStopping("val_accuracy", patience=1), "val_accuracy", values) == 3
    assert drive(EarlyStopping("val_accuracy", mode="max", patience=1), "val_accuracy",
                 values) == 3
    assert drive(EarlyStopping("val_accuracy", mode="min", patience=1), "val_accuracy",
                 values) == 2
    assert EarlyStopping("train_loss").mode == "min"
    assert EarlyStopping("val_f1").mode == "max"
    with pytest.raises(ValueError, match="cannot tell whether 'val_hits'"):
        EarlyStopping("val_hits")
    with pytest.raises(ValueError, match="mode must be 'min', 'max' or 'auto'"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        EarlyStopping(patience=-1)


def test_early_stopping_records_the_event_and_its_best():
    es = EarlyStopping("val_loss", patience=1)
    trainer = FakeTrainer()
    drive(es, "val_loss", [1.0, 0.5, 0.7], trainer)
    assert (es.best, es.best_epoch, es.stopped_epoch) == (0.5, 2, 3)
    (event,) = trainer.history.events
    assert event["event"] == "early_stopping" and event["best_epoch"] == 2
    assert "val_loss did not improve for 1 epoch(s); best 0.5 at epoch 2" in event["message"]


def test_a_callback_has_one_handle_on_the_run_and_trainer_is_deprecated():
    """A callback keeps the run handle, model, optimizer and params, and no Trainer;
    ``self.trainer`` still answers, with a DeprecationWarning."""
    seen = {}

    class Look(Callback):
        def on_train_begin(self, logs=None):
            seen["held"] = sorted(vars(self))
            with pytest.warns(DeprecationWarning, match="Look.trainer is deprecated: use "
                                                        "self.run"):
                seen["trainer"] = self.trainer

    X, y = make_data(n=20)
    model = make_model()
    trainer = minidl.Trainer(model, MSE(), SGD(model.parameters(), lr=0.1), verbose=0,
                             callbacks=[Look()])
    trainer.fit(X, y, epochs=1)
    assert seen["held"] == ["model", "optimizer", "params", "run"]
    assert seen["trainer"] is trainer
    with pytest.warns(DeprecationWarning):
        assert Look().trainer is None  # before fit hands it the run


def test_a_callback_that_keeps_its_own_trainer_attribute_still_works():
    """Code written for the old handle that assigns ``self.trainer`` (in ``__init__``, or in
    ``set_trainer`` as Keras' ``set_model``) keeps working: the deprecated attribute gives way."""
    class Keeps(Callback):
        def __init__(self):
            super().__init__()
            self.trainer = None

        def set_trainer(self, trainer):
            super().set_trainer(trainer)
            self.trainer = trainer

    X, y = make_data(n=20)
    model = make_model()
    keeps = Keeps()
    trainer = minidl.Trainer(model, MSE(), SGD(model.parameters(), lr=0.1), verbose=0,
                             callbacks=[keeps])
    trainer.fit(X, y, epochs=1)
    assert keeps.trainer is trainer


def test_monitor_must_be_logged():
    model = make_model()
    X, y = make_data(n=20)
    for cb in (EarlyStopping("val_loss"), ModelCheckpoint("unused.npz", monitor="val_loss")):
        with pytest.raises(ValueError, match="'val_loss' is not logged.*pass validation_data="):
            fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, callbacks=[cb],
                verbose=0)


def overfit_run(callbacks, epochs=30):
    """Training labels follow x0 + x1/2 > 0, validation labels x0 - x1/2 > 0: val_loss falls
    while the model learns x0, then rises (its minimum is at epoch 4)."""
    X, y = make_data(n=64)
    rng = np.random.default_rng(3)
    X_val = rng.standard_normal((64, 5))
    y_val = np.where(X_val[:, :1] - 0.5 * X_val[:, 1:2] > 0, 1.0, -1.0)
    model = make_model(p=0.0)
    history = fit(model, MSE(), Adam(model.parameters(), lr=0.005), X, y, epochs=epochs,
                  batch_size=16, validation_data=(X_val, y_val), callbacks=callbacks, verbose=0)
    return model, history


def test_early_stopping_stops_and_restores_the_best_weights():
    traj = WeightTrajectory()
    es = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    model, h = overfit_run([traj, es])
    best = int(np.argmin(h["val_loss"])) + 1
    assert best > 1
    assert es.best_epoch == best and es.stopped_epoch == best + 2 == len(h)
    assert np.array_equal(flat(model), traj.weights[best])  # row 0 is the initial weights
    assert not np.array_equal(traj.weights[-1], traj.weights[best])


def test_restore_best_weights_also_applies_when_training_runs_to_the_end():
    traj = WeightTrajectory()
    es = EarlyStopping("val_loss", patience=100, restore_best_weights=True)
    model, h = overfit_run([traj, es], epochs=6)
    assert len(h) == 6 and es.stopped_epoch == 0
    assert np.array_equal(flat(model), traj.weights[es.best_epoch])


# ---------------------------------------------------------------------- ProgressBar
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def short_fit(callbacks, verbose=0, epochs=3):
    model = make_model()
    X, y = make_data(n=20)
    return fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=epochs,
               callbacks=callbacks, verbose=verbose)


def test_progress_bar_draws_on_a_terminal_and_prints_a_line_per_epoch_elsewhere():
    """As Keras: the bar on a terminal; to a pipe or a file, one plain line per epoch."""
    tty, pipe = FakeTerminal(), io.StringIO()
    short_fit([ProgressBar(file=tty)])
    short_fit([ProgressBar(file=pipe)])
    assert "3/3" in tty.getvalue() and "train_loss=" in tty.getvalue()
    assert "epoch 1/3" not in tty.getvalue()
    lines = pipe.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("  train_loss=" in line for line in lines) and "\r" not in pipe.getvalue()


def test_fit_verbose_1_with_stdout_redirected_prints_a_line_per_epoch_to_stdout(monkeypatch,
                                                                              capsys):
    """stderr on a terminal but stdout redirected (python train.py > log): the log gets the
    lines, no bar is drawn on the terminal."""
    tty = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", tty)
    short_fit([], verbose=1, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  train_loss=")
    assert tty.getvalue() == ""


def test_fit_with_its_output_redirected_to_a_file_leaves_a_line_per_epoch(tmp_path):
    """A real process with stdout and stderr in a file (a batch job, nohup, > log 2>&1)."""
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np\n"
        "import minidl as md\n"
        "X = np.random.default_rng(0).standard_normal((40, 3)); y = X[:, :1]\n"
        "model = md.Sequential(md.Dense(3, 1, rng=0))\n"
        "md.fit(model, md.MSE(), md.SGD(model.parameters(), lr=0.1), X, y, epochs=4)\n"
        "print('done')\n")
    log = tmp_path / "log"
    root = Path(minidl.__file__).resolve().parents[1]  # src/, holding this minidl
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(log, "w") as out:
        subprocess.run([sys.executable, str(script)], stdout=out, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, env=env, check=True, timeout=120)
    lines = [line for line in log.read_text().splitlines() if "PerformanceNotice" not in line]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in epochs] == [f"epoch {i}/4" for i in range(1, 5)]
    assert lines[-1] == "done" and "\r" not in log.read_text()


def test_progress_bar_without_tqdm_prints_plain_lines_on_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    tty, pipe = FakeTerminal(), io.StringIO()
    short_fit([ProgressBar(file=tty)], epochs=2)
    short_fit([ProgressBar(file=pipe)], epochs=2)
    lines = tty.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  train_loss=")
    assert pipe.getvalue().splitlines()[1].startswith("epoch 2/2  train_loss=")


class FakeKernelShell:
    """What IPython's get_ipython() returns inside a Jupyter kernel, as far as minidl looks."""

    def __init__(self):
        self.config = {"IPKernelApp": {"connection_file": "kernel-1.json"}}


def simulate_notebook(monkeypatch):
    """A Jupyter kernel: IPython imported and running a kernel app; stderr is not a tty."""
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = FakeKernelShell
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # an ipykernel OutStream: isatty() False


def test_in_notebook_is_false_outside_a_kernel(monkeypatch):
    assert not minidl.callbacks.in_notebook()
    terminal_ipython = types.ModuleType("IPython")
    terminal_ipython.get_ipython = lambda: types.SimpleNamespace(config={})  # plain IPython
    monkeypatch.setitem(sys.modules, "IPython", terminal_ipython)
    assert not minidl.callbacks.in_notebook()
    simulate_notebook(monkeypatch)
    assert minidl.callbacks.in_notebook()


def test_fit_verbose_1_in_a_notebook_shows_a_tqdm_auto_bar(monkeypatch):
    bars = []

    class RecordingTqdm:
        def __init__(self, **kwargs):
            self.kwargs, self.updates, self.postfix = kwargs, 0, ""
            bars.append(self)

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text

        def update(self, n):
            self.updates += n

        def close(self):
            self.closed = True

    simulate_notebook(monkeypatch)
    fake_auto = types.ModuleType("tqdm.auto")
    fake_auto.tqdm = RecordingTqdm
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake_auto)
    short_fit([], verbose=1, epochs=3)
    [bar] = bars
    assert bar.kwargs["total"] == 3 and bar.updates == 3 and bar.closed
    assert bar.postfix.startswith("train_loss=")


def test_fit_verbose_1_in_a_notebook_without_tqdm_prints_a_line_per_epoch(monkeypatch, capsys):
    simulate_notebook(monkeypatch)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    short_fit([], verbose=1, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  train_loss=")


def test_progress_bar_lines_and_fits_verbose_switch():
    out = io.StringIO()
    short_fit([ProgressBar(file=out, lines=True)], epochs=2)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  train_loss=")
    model = make_model()
    trainer = minidl.Trainer(model, MSE(), SGD(model.parameters(), lr=0.1), verbose=0)
    assert not any(isinstance(cb, ProgressBar) for cb in trainer.callbacks)
    trainer = minidl.Trainer(model, MSE(), SGD(model.parameters(), lr=0.1))
    assert sum(isinstance(cb, ProgressBar) for cb in trainer.callbacks) == 1


# ---------------------------------------------------------------------- WeightTrajectory
def test_weight_trajectory_every_k_epochs():
    traj = WeightTrajectory(every=2)
    model = make_model()
    initial = flat(model)
    X, y = make_data(n=20)
    fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=5, batch_size=10,
        callbacks=[traj], verbose=0)
    assert traj.weights.shape == (3, model.num_parameters())
    assert traj.epochs.tolist() == [0, 2, 4] and traj.steps.tolist() == [0, 4, 8]
    assert np.array_equal(traj.weights[0], initial)
    assert not np.array_equal(traj.weights[2], flat(model))  # epoch 5 is not recorded


def test_weight_trajectory_every_k_steps_without_the_start():
    traj = WeightTrajectory(every=3, unit="step", include_initial=False)
    model = make_model()
    X, y = make_data(n=20)
    fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=3, batch_size=5,
        callbacks=[traj], verbose=0)
    assert traj.steps.tolist() == [3, 6, 9, 12]
    assert traj.epochs.tolist() == [0, 1, 2, 2]  # epochs completed when each row was taken
    assert np.array_equal(traj.weights[-1], flat(model))
    with pytest.raises(ValueError, match="unit must be 'epoch' or 'step'"):
        WeightTrajectory(unit="batch")
    with pytest.raises(ValueError, match="every must be a positive int"):
        WeightTrajectory(every=0)


# ---------------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_every_n_epochs(tmp_path):
    traj = WeightTrajectory()
    ckpt = ModelCheckpoint(tmp_path / "ck-{epoch:02d}.npz", every=2)
    short_fit([traj, ckpt], epochs=5)
    assert ckpt.saved == [str(tmp_path / "ck-02.npz"), str(tmp_path / "ck-04.npz")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck-02.npz", "ck-04.npz"]
    loaded = minidl.load(ckpt.saved[1])
    assert loaded.epoch == 4 and len(loaded.history) == 4
    assert np.array_equal(flat(loaded.model), traj.weights[4])


def test_model_checkpoint_keeps_the_best(tmp_path):
    traj = WeightTrajectory()
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss")
    _, h = overfit_run([traj, ckpt], epochs=8)
    val = h["val_loss"]
    improvements = sum(val[i] < val[:i].min(initial=np.inf) for i in range(len(val)))
    assert len(ckpt.saved) == improvements > 1
    best = int(np.argmin(val)) + 1
    loaded = minidl.load(tmp_path / "best.npz")
    assert loaded.epoch == best
    assert np.array_equal(flat(loaded.model), traj.weights[best])


def test_model_checkpoint_runs_after_the_other_callbacks(tmp_path):
    """Listed first, it still sees the learning rate the schedule sets at the same epoch end."""
    model = make_model()
    opt = SGD(model.parameters(), lr=0.1)
    X, y = make_data(n=20)
    fit(model, MSE(), opt, X, y, epochs=2,
        callbacks=[ModelCheckpoint(tmp_path / "last.npz"), StepLR(opt, step_size=1, gamma=0.5)],
        verbose=0)
    loaded = minidl.load(tmp_path / "last.npz")
    assert loaded.optimizer.lr == opt.lr == 0.1 * 0.5 * 0.5
    assert loaded.trainer_state["callbacks"]["StepLR:0"]["last_epoch"] == 2


def test_model_checkpoint_arguments():
    with pytest.raises(ValueError, match="every must be a positive int"):
        ModelCheckpoint("x.npz", every=0)
    assert ModelCheckpoint("x.npz").every == 1
    assert ModelCheckpoint("x.npz", monitor="val_loss").every is None


def test_base_callback_does_nothing():
    cb = Callback()
    short_fit([cb])
    assert cb.state_dict() is None


def test_callbacks_work_on_the_qa_model():
    model = RecursiveMLP([5, 8, 1], activation=Tanh, bias=False, init="lecun_normal", rng=0)
    X, y = make_data(n=30)
    traj = WeightTrajectory()
    fit(model, MSE(half_grad=True), SGD(model.parameters(), lr=0.1), X, y, epochs=2,
        callbacks=[traj], verbose=0)
    assert traj.weights.shape == (3, 5 * 8 + 8)


def test_the_callback_interface_is_model_optimizer_params_and_a_run_handle(tmp_path):
    seen = {}

    class UsesTheHandle(Callback):
        def on_train_begin(self, logs=None):
            seen["params"] = dict(self.params)
            with pytest.raises(TypeError):
                self.params["epochs"] = 1  # read-only

        def on_epoch_end(self, epoch, logs=None):
            assert self.optimizer.lr == 0.1 and self.model is model
            self.run.record_event("note", f"epoch {epoch + 1} done", epoch=epoch + 1)
            if epoch == 1:
                self.run.save(tmp_path / "mid.npz")
                self.run.stop()

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    model = RecursiveMLP([3, 2, 1], rng=0)
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=5, batch_size=8,
            callbacks=[UsesTheHandle()], verbose=0)
    assert seen["params"] == {"epochs": 5, "initial_epoch": 0, "batch_size": 8,
                              "log_keys": ("epoch", "train_loss", "lr", "steps", "time")}
    assert len(h) == 2 and [e["message"] for e in h.events] == ["epoch 1 done", "epoch 2 done"]
    assert minidl.load(tmp_path / "mid.npz").epoch == 2


# ---------------------------------------------------------------------- checked up front
@pytest.mark.parametrize("filepath, message", [
    ("x-{epch}.npz", r"has the placeholder \{epch\}; the only one available is \{epoch\}"),
    ("x-{}.npz", r"has the placeholder \{\}"),
    ("x-{epoch:zz}.npz", r"cannot be formatted with an epoch number"),
    ("x-{epoch.npz", r"is not a valid format string"),
])
def test_model_checkpoint_refuses_a_bad_placeholder_when_built(filepath, message):
    with pytest.raises(ValueError, match=rf"ModelCheckpoint: filepath .*{message}"):
        ModelCheckpoint(filepath)


def test_model_checkpoint_names_a_missing_folder_before_training(tmp_path):
    X, y = make_data(n=20)
    model = make_model()
    folder = tmp_path / "nope"
    before = model.state_dict()
    with pytest.raises(FileNotFoundError, match=r"ModelCheckpoint: the folder .*nope.* does not "
                                                r"exist"):
        fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, verbose=0,
            callbacks=[ModelCheckpoint(str(folder / "c-{epoch}.npz"))])
    for key, value in model.state_dict().items():  # nothing trained: the check ran first
        assert np.array_equal(value, before[key]), key


def test_a_misspelt_monitor_is_answered_with_the_closest_logged_key():
    # issue 19: EarlyStopping("val_los") said "pass mode=" instead of naming the typo
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_los' is not one of the "
                                         r"usual columns fit logs: did you mean 'val_loss'\?"):
        EarlyStopping("val_los")
    with pytest.raises(ValueError, match=r"ModelCheckpoint: .* did you mean 'val_accuracy'\?"):
        ModelCheckpoint("m.npz", monitor="val_acuracy")
    with pytest.raises(ValueError, match=r"cannot tell whether 'foo' should go up or down"):
        EarlyStopping("foo")  # nothing close: the mode question stands
    # a mode given: checked against what this fit logs, at train begin
    model = make_model()
    X, y = make_data()
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'train_acc' is not logged; "
                                         r"fit logs .* \(did you mean 'train_accuracy'\?\)"):
        fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, verbose=0,
            metrics=["accuracy"], callbacks=[EarlyStopping("train_acc", mode="max")])


# ---------------------------------------------------------------------- Keras's names (issue 20)
def test_early_stopping_and_checkpoint_take_keras_s_loss_name(tmp_path):
    """monitor="loss" is Keras's name of train_loss, as h["loss"] is: accepted, same rule."""
    stops = []
    for monitor in ("loss", "train_loss"):
        es = EarlyStopping(monitor=monitor, patience=1, min_delta=0.5)
        ckpt = ModelCheckpoint(tmp_path / f"{monitor}.npz", monitor=monitor)
        _, h = overfit_run([es, ckpt], epochs=6)
        stops.append((es.stopped_epoch, es.best_epoch, es.best, len(h)))
        assert es.monitor == monitor and ckpt.best == h["train_loss"].min()
        assert set(ckpt.saved) == {str(tmp_path / f"{monitor}.npz")}
    assert stops[0] == stops[1] and stops[0][0] == 2


def test_a_keras_metric_name_reads_its_train_column():
    model = make_model()
    X, y = make_data()
    es = EarlyStopping(monitor="accuracy", patience=100)
    h = fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=3, verbose=0,
            metrics=["accuracy"], callbacks=[es])
    assert es.best == h["train_accuracy"].max()


def test_val_acc_with_validation_data_suggests_val_accuracy_not_validation_data():
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_acc' is not one of the "
                                         r"usual columns fit logs: did you mean "
                                         r"'val_accuracy'\?"):
        EarlyStopping("val_acc")
    es = EarlyStopping("val_acc", mode="max")
    with pytest.raises(ValueError, match=r"monitor 'val_acc' is not logged") as info:
        overfit_run([es], epochs=1)
    message = str(info.value)
    assert "validation_data" not in message and "'val_loss'" in message
    model = make_model()
    X, y = make_data(n=40)
    with pytest.raises(ValueError, match=r"did you mean 'val_accuracy'\?") as info:
        fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, verbose=0,
            validation_split=0.25, metrics=["accuracy"], callbacks=[es])
    assert "validation_data" not in str(info.value)
    # without validation data the hint stands
    with pytest.raises(ValueError, match=r"pass validation_data="):
        fit(model, MSE(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, verbose=0,
            metrics=["accuracy"], callbacks=[es])


def test_csv_logger_writes_a_row_per_epoch_as_it_goes(tmp_path):
    path = tmp_path / "log.csv"
    rows_seen = []

    class Peek(Callback):  # runs after the logger: the row is on disk already
        def on_epoch_end(self, epoch, logs=None):
            rows_seen.append(len(path.read_text().splitlines()))

    _, h = overfit_run([CSVLogger(path), Peek()], epochs=3)
    assert rows_seen == [2, 3, 4]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == h.keys()
    table = np.array(rows[1:], dtype=float)
    for j, key in enumerate(h.keys()):
        assert np.array_equal(table[:, j], h[key]), key  # exact: floats written with repr
    # append=False starts again; append=True adds rows under the one header
    overfit_run([CSVLogger(path, separator=";")], epochs=2)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[0] == ";".join(h.keys())
    overfit_run([CSVLogger(path, separator=";", append=True)], epochs=2)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and lines[3].startswith("1;")


def test_csv_logger_refuses_bad_arguments_and_a_file_of_other_columns(tmp_path):
    with pytest.raises(ValueError, match=r"CSVLogger: separator must be one character"):
        CSVLogger(tmp_path / "x.csv", separator=", ")
    with pytest.raises(ValueError, match=r"CSVLogger: append must be True or False"):
        CSVLogger(tmp_path / "x.csv", append="yes")
    with pytest.raises(TypeError, match=r"CSVLogger: filename must be a path"):
        CSVLogger(3)
    path = tmp_path / "other.csv"
    path.write_text("epoch,train_loss,lr\n1,0.5,0.1\n")
    with pytest.raises(ValueError, match=r"CSVLogger: cannot append to .*other.csv': its columns"):
        overfit_run([CSVLogger(path, append=True)], epochs=1)
    assert path.read_text() == "epoch,train_loss,lr\n1,0.5,0.1\n"
