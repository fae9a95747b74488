"""Callbacks: code that runs at fixed points of :func:`minidl.fit`.

The protocol
------------
A callback subclasses :class:`Callback` and overrides any of these hooks. As in Keras, before
``on_train_begin`` it is given ``self.model``, ``self.optimizer``, a read-only ``self.params``
dict (``epochs``: the epoch count this fit call trains up to, ``initial_epoch``,
``batch_size``, ``log_keys``: the History columns each epoch logs) and ``self.run``, its one
handle on the training run it is in (:class:`Run`): ``run.epoch`` (epochs completed),
``run.step`` (optimizer steps taken), ``run.stop()`` (stop after the current epoch),
``run.record_event(...)`` (into ``History.events``) and ``run.save(path)`` (a resumable
checkpoint)::

    on_train_begin(logs)          before the first epoch of a fit call
    on_epoch_begin(epoch, logs)   epoch: 0-based index of the epoch about to run
    on_batch_end(batch, logs)     batch: 0-based index of the batch within the epoch, as in
                                  Keras; logs: {"loss", "batch_size", "step"} (step: optimizer
                                  steps so far)
    on_epoch_end(epoch, logs)     logs: the epoch's History row (train_loss, val_loss, lr, ...)
    on_train_end(logs)            after the last epoch, or a clean stop

A callback that must survive a resume returns its state from ``state_dict()`` (JSON values and
NumPy arrays) and takes it back in ``load_state_dict()``; checkpoints carry it.
``load_state_dict`` raises on a state it cannot take: the resume is then refused, and the
callbacks that had already taken theirs get back what their ``state_dict()`` returned before.
Callbacks run in the order given, except those with a higher ``order``
(:class:`ModelCheckpoint`), which run after the others so a checkpoint sees the epoch's final
state (e.g. the new learning rate).

Learning-rate schedules are callbacks too: see :mod:`minidl.schedules`. ``monitor=`` of
:class:`EarlyStopping` and :class:`ModelCheckpoint` takes minidl's column names and Keras's
names of the training values (``"loss"`` is ``train_loss``), as ``History`` does.

Changed in 0.2: ``on_batch_end`` received the global step as its first argument; it now
receives the batch index within the epoch, as Keras does (the step is ``logs["step"]``).
Deprecated in 0.2: ``self.trainer`` (the :class:`~minidl.Trainer` itself) still works, with a
``DeprecationWarning``, and will be removed; use the interface above.
"""

from __future__ import annotations

import difflib
import math
import os
import string
import sys
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .validation import check_bool, check_int, check_number

if TYPE_CHECKING:  # pragma: no cover
    from .training import Trainer


class _DeprecatedTrainer:
    """``Callback.trainer``, deprecated: the Trainer (None before ``set_trainer``). Use
    ``self.run``, ``self.model``, ``self.optimizer`` and ``self.params``. A non-data descriptor,
    so a callback of yours that assigns ``self.trainer`` itself keeps working."""

    def __get__(self, callback, owner=None) -> Trainer | None:
        if callback is None:
            return self  # type: ignore[return-value]  # the class attribute, for documentation
        warnings.warn(f"{type(callback).__name__}.trainer is deprecated: use self.run (epoch, "
                      f"step, stop(), record_event(), save()), self.model, self.optimizer and "
                      f"self.params", DeprecationWarning, stacklevel=2)
        run = vars(callback).get("run")
        return run._trainer if isinstance(run, Run) else None


class Callback:
    """Base class of callbacks: every hook does nothing. See the module docstring."""

    #: Callbacks run sorted by ``order`` (stable): checkpoints (100) run last.
    order: ClassVar[int] = 0

    def set_trainer(self, trainer: Trainer) -> None:
        """Called by :func:`minidl.fit` before ``on_train_begin``: gives the callback
        ``model``, ``optimizer``, a read-only ``params`` dict and the ``run`` handle, its one
        handle on the training run (the callback keeps no reference to the Trainer)."""
        self.model = trainer.model
        self.optimizer = trainer.optimizer
        self.params = MappingProxyType({
            "epochs": trainer.epochs, "initial_epoch": trainer.epoch,
            "batch_size": trainer.batch_size, "log_keys": tuple(trainer.log_keys),
        })
        self.run = Run(trainer)

    trainer = _DeprecatedTrainer()

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def state_dict(self) -> dict[str, Any] | None:
        """State to carry in a checkpoint (None: nothing to carry)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class Run:
    """A callback's handle on the training run it is in (the epochs a Trainer trains, over
    ``fit`` calls and resumes): read where the run is, stop it, record an event in its
    History, save a checkpoint of it."""

    def __init__(self, trainer: Trainer):
        self._trainer = trainer

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return self._trainer.epoch

    @property
    def step(self) -> int:
        """Optimizer steps taken."""
        return self._trainer.step

    def stop(self) -> None:
        """Stop training at the end of the current epoch."""
        self._trainer.stop_training = True

    def record_event(self, event: str, message: str, **fields: Any) -> None:
        """Append ``{"event": event, **fields, "message": message}`` to ``History.events``."""
        self._trainer.history.events.append({"event": event, **fields, "message": message})

    def save(self, path, extra: dict | None = None) -> None:
        """Write a resumable checkpoint of the run (:meth:`minidl.Trainer.save`)."""
        self._trainer.save(path, extra)


# ---------------------------------------------------------------------- monitoring helpers
_HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "auc")


def resolve_mode(owner: str, monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` is ``"min"`` for losses, ``"max"`` for accuracy-like
    metrics and an error otherwise."""
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"{owner}: mode must be 'min', 'max' or 'auto', got {mode!r}")
    if monitor.endswith("loss"):
        return "min"
    if any(word in monitor for word in _HIGHER_IS_BETTER):
        return "max"
    guess = suggest(monitor, _usual_keys())
    if guess is not None:
        raise ValueError(f"{owner}: monitor {monitor!r} is not one of the usual columns fit "
                         f"logs: did you mean {guess!r}? (for a value of your own, pass "
                         f"mode='min' or mode='max')")
    raise ValueError(
        f"{owner}: cannot tell whether {monitor!r} should go up or down; pass mode='min' or "
        f"mode='max'"
    )


def _usual_keys() -> list[str]:
    """The History columns fit writes for the loss and the metrics it knows by name."""
    from .metrics import METRICS

    names = ["loss", *METRICS]
    return [f"{split}_{name}" for split in ("train", "val") for name in names] + [
        "lr", "epoch", "steps", "time"]


def closest(name: str, keys) -> str | None:
    """The key of ``keys`` closest to ``name`` (a typo: ``val_los``), or None."""
    found = difflib.get_close_matches(name, list(keys), n=1, cutoff=0.75)
    return found[0] if found else None


def suggest(name: str, keys) -> str | None:
    """What ``name`` most likely meant among ``keys``: the closest key (a typo), else the one
    key that begins with it (an abbreviation: Keras's old ``val_acc`` for ``val_accuracy``)."""
    keys = list(keys)
    guess = closest(name, keys)
    if guess is None:
        longer = [key for key in keys if key.startswith(name)]
        guess = longer[0] if len(longer) == 1 else None
    return guess


def logged_name(name: str, keys) -> str | None:
    """The logged column ``name`` reads: ``name`` itself, or for Keras's name ``X`` of a
    training value (``"loss"``, ``"accuracy"``) the column ``train_X``, as ``History`` reads
    them; None if neither is logged."""
    keys = list(keys)
    if name in keys:
        return name
    return f"train_{name}" if f"train_{name}" in keys else None


class Monitor:
    """The best value so far of one logged quantity, shared by :class:`EarlyStopping`,
    :class:`ModelCheckpoint` and :class:`~minidl.schedules.ReduceLROnPlateau`.

    A value improves on ``best`` when (``mode="min"``) ``value < best - min_delta``, or with
    ``relative=True`` ``value < best * (1 - min_delta)`` (PyTorch's ``threshold_mode="rel"``,
    formula included);
    mirrored for ``"max"``. ``mode="auto"``: see :func:`resolve_mode`.
    """

    def __init__(self, owner: str, monitor: str, mode: str = "auto", min_delta: float = 0.0,
                 relative: bool = False):
        if not isinstance(monitor, str):
            raise ValueError(f"{owner}: monitor must be the name of a logged value, got "
                             f"{monitor!r}")
        check_number(owner, "min_delta", min_delta, low=0.0)
        self.owner = owner
        self.monitor = monitor
        self.key = monitor  # the logged column it reads: see check_logged
        self.mode = resolve_mode(owner, monitor, mode)
        self.min_delta = float(min_delta)
        self.relative = check_bool(owner, "relative", relative)
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def is_better(self, value: float) -> bool:
        best, delta = self.best, self.min_delta
        if self.mode == "min":
            return value < (best * (1 - delta) if self.relative else best - delta)
        return value > (best * (1 + delta) if self.relative else best + delta)

    def update(self, value: float) -> bool:
        """Take ``value``; True (and ``best`` becomes it) if it improves on the best."""
        value = float(value)
        if self.is_better(value):
            self.best = value
            return True
        return False

    def check_logged(self, params: Mapping[str, Any], keras_names: bool = False) -> None:
        """Raise a clear error at train begin if the value will never appear in the logs
        (``params``: a callback's ``params``). With ``keras_names``, Keras's name of a
        training value (``"loss"`` for ``train_loss``) is accepted: :attr:`key` becomes the
        column it reads, which :meth:`value` takes from an epoch's logs."""
        keys = list(params["log_keys"])
        key = logged_name(self.monitor, keys) if keras_names else (
            self.monitor if self.monitor in keys else None)
        if key is None:
            guess = suggest(self.monitor, keys)
            hint = (f" (did you mean {guess!r}?)" if guess is not None
                    else " (pass validation_data= to fit to get val_ columns)"
                    if self.monitor.startswith("val_")
                    and not any(k.startswith("val_") for k in keys) else "")
            raise ValueError(f"{self.owner}: monitor {self.monitor!r} is not logged; fit logs "
                             f"{keys}{hint}")
        self.key = key

    def value(self, logs: Mapping[str, Any]) -> float:
        """The monitored value in an epoch's logs (its History row)."""
        return logs[self.key]


# ---------------------------------------------------------------------- EarlyStopping
class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (as Keras).

    An epoch improves on the best so far when ``monitor < best - min_delta`` (``mode="min"``)
    or ``monitor > best + min_delta`` (``"max"``); ``"auto"`` picks ``"min"`` for losses and
    ``"max"`` for accuracy, precision, recall and F1. Training stops at the end of the
    ``patience``-th epoch in a row without improvement (``patience=0``: the first one).

    ``restore_best_weights=True`` loads the weights of the best epoch back into the model when
    training ends, whether it stopped early or ran all its epochs. The stop is recorded in the
    History's ``events``. ``best``, ``best_epoch`` (1-based) and ``stopped_epoch`` (1-based, 0
    if training was not stopped) are available afterwards.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 0,
                 min_delta: float = 0.0, restore_best_weights: bool = False):
        self.patience = check_int("EarlyStopping", "patience", patience, low=0)
        self.tracker = Monitor("EarlyStopping", monitor, mode, min_delta)
        self.restore_best_weights = check_bool("EarlyStopping", "restore_best_weights",
                                               restore_best_weights)
        self.reset()

    monitor = property(lambda self: self.tracker.monitor)
    mode = property(lambda self: self.tracker.mode)
    min_delta = property(lambda self: self.tracker.min_delta)

    @property
    def best(self) -> float:
        return self.tracker.best

    def reset(self) -> None:
        self.tracker.reset()
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        self.tracker.check_logged(self.params, keras_names=True)
        if self.run.epoch == 0:  # a fresh run (a resumed one keeps its restored state)
            self.reset()

    def on_epoch_end(self, epoch, logs=None):
        if self.tracker.update(self.tracker.value(logs)):
            self.best_epoch, self.wait = epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch + 1
            self.run.stop()
            self.run.record_event(
                "early_stopping", epoch=epoch + 1, best_epoch=self.best_epoch,
                message=f"epoch {epoch + 1}: {self.monitor} did not improve for {self.wait} "
                        f"epoch(s); best {self.best:.6g} at epoch {self.best_epoch}",
            )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.tracker.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        weights = state["best_weights"]
        self.best_weights = None if weights is None else {k: np.array(v) for k, v in
                                                          weights.items()}


# ---------------------------------------------------------------------- ProgressBar
def in_notebook() -> bool:
    """True inside a Jupyter kernel (Jupyter, JupyterLab, VS Code, Colab): IPython is running
    as a kernel app. Asked of an IPython already imported, never imported here."""
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class ProgressBar(Callback):
    """A tqdm bar over the epochs, showing the last epoch's losses and metrics.

    Shown on a terminal (``file``, default ``sys.stderr``, is a tty; without ``file``,
    ``sys.stdout`` must be one too) and in a Jupyter kernel (:func:`in_notebook`), where
    ``tqdm.auto`` draws a notebook widget. Elsewhere (a pipe, a log file, a batch job,
    ``nohup``) it prints one plain line per epoch instead, as Keras does: to ``file``, or
    without ``file`` to ``sys.stdout`` (``python train.py > log`` puts them in the log).
    Without tqdm installed it prints those lines on a terminal too (in a notebook to
    ``sys.stdout`` unless ``file`` is given). ``lines=True`` prints the lines to ``file``
    (default ``sys.stdout``), terminal or not: what ``fit(verbose=2)`` uses.
    """

    def __init__(self, file=None, lines: bool = False):
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"ProgressBar: file must be a text stream with a write() method "
                            f"(sys.stdout, an open file) or None, got {file!r}")
        self.file = file
        self.lines = check_bool("ProgressBar", "lines", lines)
        self._bar = None
        self._plain = None  # the stream plain lines go to, or None

    def on_train_begin(self, logs=None):
        self._bar = None
        self._plain = None
        if self.lines:
            self._plain = self.file if self.file is not None else sys.stdout
            return
        notebook = in_notebook()
        stream = self.file if self.file is not None else sys.stderr
        if not notebook and not (_is_terminal(stream)
                                 and (self.file is not None or _is_terminal(sys.stdout))):
            self._plain = self.file if self.file is not None else sys.stdout
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is in the dev and experiments extras, not in the core
            self._plain = sys.stdout if notebook and self.file is None else stream
            return
        self._bar = tqdm(total=self.params["epochs"], initial=self.params["initial_epoch"],
                         unit="epoch", file=stream,
                         dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs=None):
        summary = _summary(logs)
        if self._plain is not None:
            print(f"epoch {epoch + 1}/{self.params['epochs']}  {summary}", file=self._plain,
                  flush=True)
        elif self._bar is not None:
            self._bar.set_postfix_str(summary, refresh=False)
            self._bar.update(1)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _summary(logs: dict) -> str:
    skip = {"epoch", "steps", "time"}
    parts = [f"{k}={v:.4g}" for k, v in logs.items() if k not in skip]
    return "  ".join(parts)


# ---------------------------------------------------------------------- WeightTrajectory
class WeightTrajectory(Callback):
    """Record a flattened copy of all the model's weights every ``every`` epochs (or steps).

    ``unit="epoch"`` records at the end of epochs ``every, 2*every, ...``; ``unit="step"`` after
    optimizer steps ``every, 2*every, ...``. With ``include_initial=True`` the weights before
    training are the first record (epoch 0, step 0). Afterwards ``weights`` is an array of shape
    (records, number of parameters), in ``model.parameters()`` order, and ``epochs`` and
    ``steps`` say when each row was taken: the input of the t-SNE trajectory study.
    """

    def __init__(self, every: int = 1, unit: str = "epoch", include_initial: bool = True):
        every = check_int("WeightTrajectory", "every", every, low=1)
        if unit not in ("epoch", "step"):
            raise ValueError(f"WeightTrajectory: unit must be 'epoch' or 'step', got {unit!r}")
        self.every = every
        self.unit = unit
        self.include_initial = check_bool("WeightTrajectory", "include_initial",
                                          include_initial)
        self._rows: list[np.ndarray] = []
        self._epochs: list[int] = []
        self._steps: list[int] = []

    def _record(self) -> None:
        self._rows.append(np.concatenate([p.data.ravel() for p in self.model.parameters()]))
        self._epochs.append(self.run.epoch)
        self._steps.append(self.run.step)

    def on_train_begin(self, logs=None):
        if self.run.epoch == 0 and self.run.step == 0:
            self._rows, self._epochs, self._steps = [], [], []
            if self.include_initial:
                self._record()

    def on_batch_end(self, batch, logs=None):
        if self.unit == "step" and self.run.step % self.every == 0:
            self._record()

    def on_epoch_end(self, epoch, logs=None):
        if self.unit == "epoch" and (epoch + 1) % self.every == 0:
            self._record()

    @property
    def weights(self) -> np.ndarray:
        if not self._rows:
            return np.empty((0, 0))
        return np.stack(self._rows)

    @property
    def epochs(self) -> np.ndarray:
        return np.asarray(self._epochs, dtype=np.int64)

    @property
    def steps(self) -> np.ndarray:
        return np.asarray(self._steps, dtype=np.int64)

    def state_dict(self):
        return {"weights": self.weights, "epochs": self.epochs, "steps": self.steps}

    def load_state_dict(self, state):
        self._rows = list(np.asarray(state["weights"]))
        self._epochs = [int(e) for e in state["epochs"]]
        self._steps = [int(s) for s in state["steps"]]


# ---------------------------------------------------------------------- ModelCheckpoint
class ModelCheckpoint(Callback):
    """Save a resumable checkpoint (:func:`minidl.save`) during training.

    ``every=N`` saves at the end of epochs N, 2N, ...; ``monitor="val_loss"`` (with ``mode``,
    ``min_delta`` as in :class:`EarlyStopping`) saves whenever the monitored value improves on
    the best so far; ``save_best_only=True`` (Keras's spelling) is ``monitor="val_loss"``
    unless ``monitor`` is given, and saves on improvement only. Give ``every`` and ``monitor``
    both to save on either condition. ``filepath`` may contain
    ``{epoch}`` (e.g. ``"ckpt-{epoch:03d}.npz"``) to keep one file per save; otherwise each save
    atomically replaces the last. Keep the periodic "last" and the "best" checkpoints in two
    files with two callbacks::

        ModelCheckpoint("last.npz", every=1), ModelCheckpoint("best.npz", monitor="val_loss")

    Each checkpoint holds the model, optimizer, History and the trainer's random and callback
    state, so ``fit(..., resume=path)`` continues exactly where it was written. It runs after
    the other callbacks of the epoch (``order = 100``). ``saved`` lists the paths written.
    """

    order = 100

    def __init__(self, filepath, every: int | None = None, monitor: str | None = None,
                 mode: str = "auto", min_delta: float = 0.0, save_best_only: bool = False):
        if not isinstance(filepath, (str, os.PathLike)) or not os.fspath(filepath):
            raise (ValueError if filepath == "" else TypeError)(
                f"ModelCheckpoint: filepath must be a file name (a str or a path), got "
                f"{filepath!r}")
        if check_bool("ModelCheckpoint", "save_best_only", save_best_only):
            if every is not None:
                raise ValueError("ModelCheckpoint: save_best_only=True saves on improvement "
                                 "only; it cannot be combined with every=")
            monitor = "val_loss" if monitor is None else monitor
        if every is None and monitor is None:
            every = 1
        self.filepath = os.fspath(filepath)
        _check_filepath(self.filepath)
        self.every = check_int("ModelCheckpoint", "every", every, low=1, allow_none=True)
        self.tracker = (None if monitor is None
                        else Monitor("ModelCheckpoint", monitor, mode, min_delta))
        self.saved: list[str] = []

    @property
    def monitor(self) -> str | None:
        return None if self.tracker is None else self.tracker.monitor

    @property
    def best(self) -> float | None:
        return None if self.tracker is None else self.tracker.best

    def on_train_begin(self, logs=None):
        # a missing folder is found now, not when the first epoch's save fails
        folder = os.path.dirname(self.filepath.format(epoch=1)) or "."
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"ModelCheckpoint: the folder {folder!r} of {self.filepath!r} does not exist "
                f"(or is not a folder); create it before training")
        if self.tracker is not None:
            self.tracker.check_logged(self.params, keras_names=True)
            if self.run.epoch == 0:
                self.tracker.reset()

    def on_epoch_end(self, epoch, logs=None):
        save_now = self.every is not None and (epoch + 1) % self.every == 0
        if self.tracker is not None and self.tracker.update(self.tracker.value(logs)):
            save_now = True
        if save_now:
            path = self.filepath.format(epoch=epoch + 1)
            self.run.save(path)
            self.saved.append(path)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        if self.tracker is not None and state["best"] is not None:
            self.tracker.best = float(state["best"])


# ---------------------------------------------------------------------- CSVLogger
class CSVLogger(Callback):
    """Write each epoch's History row to a CSV file as training goes (as Keras's CSVLogger).

    The header is the History's columns (minidl's names: ``epoch``, ``train_loss``,
    ``val_loss``, ...), then one row per epoch, appended and flushed to disk at the epoch's
    end: a run that is interrupted keeps its rows, and the file can be read while training
    runs. Floats are written with ``repr``, so reading the file back gives the History's
    values exactly. ``separator``: one character; ``append=False`` starts the file afresh,
    ``append=True`` adds rows to an existing file (a resumed run), whose header must name
    the same columns (else a ``ValueError`` at train begin, the file untouched)::

        md.fit(..., callbacks=[md.callbacks.CSVLogger("training.csv")])
        pandas.read_csv("training.csv")
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        if not isinstance(filename, (str, os.PathLike)) or not os.fspath(filename):
            raise (ValueError if filename == "" else TypeError)(
                f"CSVLogger: filename must be a path (a str or a path), got {filename!r}")
        if not (isinstance(separator, str) and len(separator) == 1
                and separator not in "\r\n\"" and not separator.isalnum()
                and separator not in ".-+"):
            raise ValueError(f"CSVLogger: separator must be one character that is not part of "
                             f"a number or a quote (',', ';', '\\t', ...), got {separator!r}")
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = check_bool("CSVLogger", "append", append)
        self._keys: list[str] = []

    def on_train_begin(self, logs=None):
        self._keys = list(self.params["log_keys"])
        header = self.separator.join(self._keys)
        if self.append and os.path.isfile(self.filename) and os.path.getsize(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as f:
                first = f.readline().rstrip("\r\n")
            if first != header:
                raise ValueError(
                    f"CSVLogger: cannot append to {self.filename!r}: its columns ({first!r}) "
                    f"are not this run's ({header!r}); give another file or append=False")
            return
        with open(self.filename, "w", encoding="utf-8", newline="") as f:
            f.write(header + "\n")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = self.separator.join(_csv_value(logs.get(key, math.nan)) for key in self._keys)
        with open(self.filename, "a", encoding="utf-8", newline="") as f:
            f.write(row + "\n")
            f.flush()


def _csv_value(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


def _check_filepath(filepath: str) -> None:
    """Raise a ValueError naming the placeholder unless ``filepath`` formats with ``epoch``
    alone (a typo such as ``{epch}`` would otherwise fail only after the first epoch)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(filepath) if f is not None]
    except ValueError as exc:
        raise ValueError(f"ModelCheckpoint: filepath {filepath!r} is not a valid format "
                         f"string: {exc}; write braces as {{{{ and }}}}") from None
    for field in fields:
        if field.split(".")[0].split("[")[0] != "epoch":
            raise ValueError(f"ModelCheckpoint: filepath {filepath!r} has the placeholder "
                             f"{{{field}}}; the only one available is {{epoch}}")
    try:
        filepath.format(epoch=1)
    except (ValueError, IndexError, AttributeError, KeyError) as exc:
        raise ValueError(f"ModelCheckpoint: filepath {filepath!r} cannot be formatted with "
                         f"an epoch number: {exc}") from None


__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "ProgressBar",
    "WeightTrajectory",
]
