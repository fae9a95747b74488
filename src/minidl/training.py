"""The training loop: :func:`fit`, :func:`evaluate`, :func:`predict`, and the :class:`Trainer`.

One epoch of :func:`fit`, for a model, a loss and an optimizer::

    order = rng.permutation(N)                  # a fresh permutation each epoch (shuffle=True)
    for each batch B of order, in batch_size chunks (the last partial batch is kept):
        optimizer.zero_grad()                   # a parameter no backward writes is skipped
        pred = model(X[B]);  L = loss.forward(pred, y[B])
        model.backprop(loss.backward(), input_grad=False);  optimizer.step()
    then: evaluate validation_data in eval mode, in batch_size chunks (as Keras does: a large
          validation set never goes through a convolution in one piece), append a row to the
          History, run callbacks

``batch_size`` defaults to 32, as in Keras; ``batch_size=None``, given explicitly, is the full
batch: gradient descent. With a single batch per epoch the order
of the rows cannot matter, so no permutation is drawn. ``rng`` is
``numpy.random.default_rng(seed)``, owned by the :class:`Trainer`: its state, the model's own
random state (Dropout) and the optimizer's state all go into checkpoints, so a run resumed with
``fit(..., resume=checkpoint)`` continues bit for bit as if it had never stopped.

In the :class:`Trainer`, :meth:`~Trainer.fit` runs epochs; one epoch (``_run_epoch``) draws
its order into an :class:`~minidl.resume.EpochProgress` (``trainer.progress``: where the epoch
stands), trains each batch (``_train_batch``: one optimizer step, undone if it fails before
the step), records it in the progress, and ends with the epoch's History row
(``_epoch_logs``). :meth:`~Trainer.state_dict` and :meth:`~Trainer.load_state_dict` hold
what carries the run on (counters, shuffling state, callback states, the progress) as plain
state; :meth:`~Trainer.save` hands it to :func:`minidl.save`, and :meth:`~Trainer.resume`
(:func:`minidl.resume.resume`) puts a checkpoint back through them.

``X`` is cast once to the dtype of the model's parameters (a float32 model trains in float32),
and so is a floating ``y``; integer class labels stay integers.

Divergence: a non-finite prediction (:class:`~minidl.errors.NonFiniteError` from the loss) or a
non-finite loss value never lets training go on. With ``on_nonfinite="raise"`` (the default)
:func:`fit` raises :class:`TrainingDiverged`, naming the epoch and the step; with
``on_nonfinite="stop"`` it records the event in ``History.events`` and stops cleanly, returning
the History of the epochs completed; the model (weights, buffers, random state), the optimizer
and the Trainer go back to where they were at the end of the last completed epoch, the last
History row, so the model can be evaluated, or trained on with a lower learning rate. (That
costs a copy of the model and optimizer state per epoch, in this mode only.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from contextlib import contextmanager, suppress
from time import perf_counter
from typing import Any

import numpy as np

from .callbacks import Callback, ProgressBar
from .checkpoint import save
from .errors import NonFiniteError, ShapeError, TrainingDiverged
from .history import History
from .layer import Layer, model_dtype
from .layers.conv import Conv2D
from .losses import Loss
from .metrics import get_metrics
from .optim.optimizer import Optimizer
from .resume import (
    EpochProgress,
    callback_states,
    load_callback_states,
    read_trainer_state,
)
from .resume import resume as resume_from
from .threads import check_threads, choose, limited
from .validation import check_bool, check_int, check_number, describe, returned_number


class Trainer:
    """Trains ``model`` on ``loss`` with ``optimizer``; :func:`fit` is ``Trainer(...).fit(...)``.

    A Trainer keeps what a run needs to continue: the shuffling Generator (seeded with
    ``seed``, default 0), ``epoch`` (epochs completed), ``step`` (optimizer steps taken),
    ``train_time``, the ``history`` and ``progress`` (where an interrupted epoch stands, an
    :class:`~minidl.resume.EpochProgress`; None between epochs). Calling :meth:`fit` again
    with a larger ``epochs`` continues the same run; :meth:`save` writes a checkpoint that
    :meth:`resume` (or ``fit(..., resume=path)``) continues from in another process.

    ``metrics``: names (``"accuracy"``, see :mod:`minidl.metrics`), named functions
    ``f(y_true, y_pred)``, or a dict ``{name: function}``; metrics given by name split
    single-output predictions (and the targets) at ``loss.decision_threshold`` (0.5 for the
    probabilities of ``BinaryCrossEntropy()``, 0 for MSE and logits). ``callbacks``:
    :class:`Callback` instances. ``batch_size``: rows per optimizer step, default 32 (Keras's
    default); ``None`` is the full batch, one step per epoch. ``verbose``: 0 silent, 1 a
    progress bar (on a terminal, and in a Jupyter notebook through ``tqdm.auto``, or one line
    per epoch without tqdm; with the output redirected to a file or a pipe, one line per epoch
    on stdout, as Keras), 2 one line per epoch. ``on_nonfinite``: ``"raise"`` or ``"stop"``.
    ``threads``: the BLAS threads the loop runs on, see :mod:`minidl.threads`: ``"auto"`` (one
    for a small model, where more are slower, the BLAS's own count otherwise), a number, or
    None (the BLAS as it is).
    """

    def __init__(self, model: Layer, loss: Loss, optimizer: Optimizer, *,
                 batch_size: int | None = 32, shuffle: bool = True, seed: int | None = None,
                 metrics: Iterable | Mapping = (), callbacks: Iterable[Callback] = (),
                 verbose: int = 1, on_nonfinite: str = "raise",
                 threads: int | str | None = "auto"):
        for name, value, cls in (("model", model, Layer), ("loss", loss, Loss),
                                 ("optimizer", optimizer, Optimizer)):
            if not isinstance(value, cls):
                raise TypeError(f"fit: {name} must be a {cls.__name__}, got {value!r}"
                                + (" (losses are objects: pass e.g. minidl.MSE(), not a name)"
                                   if name == "loss" and isinstance(value, str) else ""))
        batch_size = check_int("fit", "batch_size", batch_size, low=1, allow_none=True)
        seed = check_int("fit", "seed", seed, low=0, allow_none=True)
        if on_nonfinite not in ("raise", "stop"):
            raise ValueError(f"fit: on_nonfinite must be 'raise' or 'stop', got {on_nonfinite!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        shuffle = check_bool("fit", "shuffle", shuffle)
        threads = check_threads("fit", threads)
        own = {id(p) for p in model.parameters()}
        if not any(id(p) in own for p in optimizer.params):
            raise ValueError(
                f"fit: the optimizer {type(optimizer).__name__} updates none of the model's "
                f"{len(own)} parameters, so training would change nothing (was it built over "
                f"another model?); pass e.g. {type(optimizer).__name__}(model.parameters())"
            )
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.requested_seed = seed  # None: the seed of a resumed run, or 0
        self.seed = 0 if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.metrics = get_metrics(metrics, threshold=loss.decision_threshold)
        self.on_nonfinite = on_nonfinite
        self.threads = threads
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"fit: callbacks must be Callback instances, got {cb!r}"
                    + (" (pass an instance, not the class)" if isinstance(cb, type) else "")
                )
        if verbose and not any(isinstance(cb, ProgressBar) for cb in callbacks):
            callbacks.append(ProgressBar(lines=verbose == 2))
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self.history = History()
        self.epoch = 0
        self.step = 0
        self.train_time = 0.0
        self.epochs = 0
        self.stop_training = False
        self.log_keys: list[str] = []
        #: Where the epoch being trained stands (None between epochs): see :meth:`fit`.
        self.progress: EpochProgress | None = None
        #: True while the optimizer steps: a Trainer interrupted then can neither save nor
        #: train on, see :meth:`fit`.
        self._in_step = False

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the model's parameters, which inputs are cast to."""
        return model_dtype(self.model)

    # ------------------------------------------------------------------ training
    def fit(self, X, y, *, epochs: int, validation_data=None,
            validation_split: float | None = None) -> History:
        """Train until ``epochs`` epochs are complete in total (counting epochs already run by
        this Trainer or a resumed checkpoint, as Keras's ``initial_epoch`` does), or until a
        callback or divergence stops training. Returns :attr:`history`.

        ``validation_split`` (a fraction in (0, 1)): as in Keras, the *last* ``floor(N *
        validation_split)`` rows of ``(X, y)``, taken before any shuffling, are held out as
        the validation data; the rest are trained on. It cannot be combined with
        ``validation_data``.

        An interrupted ``fit`` (a ``KeyboardInterrupt``, an exception from a callback or from
        the validation data, :class:`TrainingDiverged`) leaves the Trainer at a batch
        boundary: a batch whose optimizer step had not begun is undone (its forward pass's
        BatchNorm statistics and Dropout random state put back), and the Trainer records its
        position inside the epoch (the shuffled order, the next batch, the partial sums).
        Calling ``fit`` again on this Trainer, with the same data, goes on from that batch,
        as does a run resumed from :meth:`save` written then: either ends bit for bit as the
        uninterrupted run would have (the interrupted epoch's ``on_epoch_begin`` is not run
        again). Only an interruption inside ``optimizer.step()`` leaves weights that may be
        half updated: then :meth:`save` and ``fit`` refuse with a ``RuntimeError``, and the
        run continues only from an earlier checkpoint (:meth:`resume`)."""
        if self._in_step:
            raise RuntimeError(f"fit: this Trainer cannot train on: {self._half_step()}; "
                               f"resume from a checkpoint written earlier (Trainer.resume) or "
                               f"start a new Trainer")
        epochs = check_int("fit", "epochs", epochs, low=0)
        X, y = _prepare(X, y, self.dtype, "X", "y")
        if validation_split is not None:
            if validation_data is not None:
                raise ValueError("fit: pass validation_data or validation_split, not both")
            X, y, validation_data = _split(X, y, validation_split)
        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("fit: validation_data must be a pair (X_val, y_val)")
            X_val, y_val = validation_data
            val = _prepare(X_val, y_val, self.dtype, "X_val", "y_val")
        n = len(X)
        batch = n if self.batch_size is None else min(self.batch_size, n)
        self.epochs = int(epochs)
        self.stop_training = False
        self.log_keys = self._log_keys(val is not None)
        for cb in self.callbacks:
            cb.set_trainer(self)
        self.model.train()
        self._call("on_train_begin", {})
        logs: dict[str, Any] = {}
        size = sum(p.data.size for p in self.model.parameters())
        convolutional = any(isinstance(layer, Conv2D) for layer in self.model.modules())
        with limited(choose(self.threads, size, batch, convolutional),
                     asked=self.threads != "auto"):
            while self.epoch < self.epochs and not self.stop_training:
                logs = self._run_epoch(X, y, batch, val) or logs
        self._call("on_train_end", logs)
        return self.history

    def _run_epoch(self, X, y, batch: int, val) -> dict[str, Any] | None:
        """One epoch, or the rest of the one interrupted part-way (:attr:`progress`): train
        its batches, then log it. Returns its History row, or None if training diverged."""
        if self.progress is None:
            self._call("on_epoch_begin", self.epoch, {})
        snapshot = self._snapshot() if self.on_nonfinite == "stop" else None
        if self.progress is None:
            order = self.rng.permutation(len(X)) if self.shuffle and batch < len(X) else None
            self.progress = EpochProgress(self.epoch, len(X), order, lr=self.optimizer.lr)
        progress = self.progress
        progress.check_fits(len(X), keep_pred=bool(self.metrics))
        try:
            start = perf_counter()
            for index, rows in progress.batches(batch):
                pred, value = self._train_batch(X[rows], y[rows])
                progress.record(rows, value, pred, keep_pred=bool(self.metrics))
                progress.elapsed += perf_counter() - start
                self._call("on_batch_end", index,
                           {"loss": value, "batch_size": len(pred), "step": self.step})
                start = perf_counter()
            logs = self._epoch_logs(y, val, progress)
        except _Diverged as exc:
            self._diverged(snapshot, exc)
            return None
        self.train_time += progress.elapsed
        logs.update(lr=progress.lr, steps=self.step, time=self.train_time)
        self.history.append(logs)
        self.epoch += 1
        self.progress = None
        self._call("on_epoch_end", progress.epoch, logs)
        return logs

    def _train_batch(self, xb: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, float]:
        """One optimizer step on a batch; its predictions and loss. Until the step begins the
        batch can be undone: a failure (an exception, a KeyboardInterrupt, divergence) puts
        back the buffers and random state its forward pass moved, so the Trainer stays before
        the batch and can be saved."""
        before = _batch_state(self.model)
        try:
            # a parameter no backward writes (outside the forward path) has no gradient,
            # and the step skips it, as torch's loop with zero_grad() does
            self.optimizer.zero_grad()
            pred = self.model(xb)
            value = _finite("train", lambda: _loss_value(self.loss, pred, yb))
            grad = self.loss.backward()
            if not (isinstance(grad, np.ndarray) and grad.shape == np.shape(pred)):
                raise TypeError(f"fit: {type(self.loss).__name__}.backward() returned "
                                f"{describe(grad)}; it must return dL/dpred, an array of the "
                                f"predictions' shape {np.shape(pred)}")
            self.model.backprop(grad, input_grad=False)
        except BaseException:
            _undo_batch(self.model, before)
            raise
        self._in_step = True  # interrupted inside the step, the weights may be half updated
        self.optimizer.step()
        self._in_step = False
        self.step += 1
        return pred, value

    def _epoch_logs(self, y, val, progress: EpochProgress) -> dict[str, Any]:
        """The epoch's History row so far: its training loss and metrics, then the
        validation scores."""
        logs: dict[str, Any] = {"epoch": progress.epoch + 1,
                                "train_loss": progress.loss_sum / progress.n}
        for name, metric in self.metrics.items():
            assert progress.train_pred is not None  # kept by every batch (check_fits)
            logs[f"train_{name}"] = _metric_value(name, metric, y, progress.train_pred)
        if val is not None:
            scores = _finite("validation", lambda: _evaluate(
                self.model, self.loss, val[0], val[1], self.metrics, self.batch_size))
            logs.update({f"val_{k}": v for k, v in scores.items()})
        return logs

    def _diverged(self, snapshot, exc: _Diverged) -> None:
        """Raise :class:`TrainingDiverged` or (``on_nonfinite="stop"``) record the event, put
        the run back to ``snapshot`` and stop."""
        epoch, phase = self.epoch, exc.phase
        step = self.step + 1 if phase == "train" else self.step
        where = (f"epoch {epoch + 1}, step {step}" if phase == "train"
                 else f"epoch {epoch + 1}, after step {step}, on the validation data")
        message = f"training diverged at {where}: {exc.reason}"
        if self.on_nonfinite == "raise":
            raise TrainingDiverged(
                f"{message}. Lower the learning rate, or pass on_nonfinite='stop' to keep the "
                f"epochs completed so far",
                epoch=epoch + 1, step=step, phase=phase,
            ) from exc.__cause__
        self.history.events.append({"event": "nonfinite", "epoch": epoch + 1, "step": step,
                                    "phase": phase, "message": message})
        self._restore(snapshot)
        self.stop_training = True

    def _snapshot(self) -> tuple:
        return (self.model.state_dict(), self.model.rng_state(), self.optimizer.state_dict(),
                self.step, self.rng.bit_generator.state,
                None if self.progress is None else self.progress.copy())

    def _restore(self, snapshot: tuple) -> None:
        model_state, model_rng, optimizer_state, step, shuffle_state, progress = snapshot
        self.model.load_state_dict(model_state)
        self.model.set_rng_state(model_rng)
        self.optimizer.load_state_dict(optimizer_state)
        self.step = step
        self.rng.bit_generator.state = shuffle_state
        self.progress = progress

    def _log_keys(self, with_val: bool) -> list[str]:
        keys = ["epoch", "train_loss", *(f"train_{m}" for m in self.metrics)]
        if with_val:
            keys += ["val_loss", *(f"val_{m}" for m in self.metrics)]
        return [*keys, "lr", "steps", "time"]

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, X, y, *, batch_size: int | None = None) -> dict[str, float]:
        """:func:`evaluate` with this Trainer's model, loss and metrics."""
        return evaluate(self.model, self.loss, X, y, batch_size=batch_size,
                        metrics=self.metrics)

    def predict(self, X, *, batch_size: int | None = None) -> np.ndarray:
        return predict(self.model, X, batch_size=batch_size)

    # ------------------------------------------------------------------ state and resume
    def state_dict(self) -> dict[str, Any]:
        """What a resume needs beyond the model, optimizer and History, as plain state (JSON
        values and arrays): ``epoch`` and ``step``, the shuffling settings (``seed``,
        ``batch_size``, ``shuffle``) and Generator state (``shuffle_rng``), ``train_time``,
        each callback's state (``callbacks``, see :func:`minidl.resume.callback_states`) and
        the position inside an interrupted epoch (``progress``, see
        :class:`~minidl.resume.EpochProgress`; None between epochs)."""
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed,
                "batch_size": self.batch_size, "shuffle": self.shuffle,
                "train_time": self.train_time, "shuffle_rng": self.rng.bit_generator.state,
                "callbacks": callback_states(self.callbacks),
                "progress": None if self.progress is None else self.progress.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`, all or nothing. Callback states go to the callbacks of
        the same class, in the same order; callbacks with no saved state keep theirs.

        Checked first (:func:`minidl.resume.read_trainer_state`): a state saved with another
        ``seed`` (when this Trainer was given one), ``batch_size`` or ``shuffle`` raises a
        ``ValueError``, a malformed one or one a callback refuses a
        :class:`~minidl.errors.StateDictError`, and this Trainer is left unchanged."""
        saved = read_trainer_state(state, self)
        load_callback_states(self.callbacks, saved.callbacks)
        self.seed, self.rng, self.train_time = saved.seed, saved.rng, saved.train_time
        self.epoch, self.step, self.progress = saved.epoch, saved.step, saved.progress
        self._in_step = False

    def save(self, path, extra: dict | None = None) -> None:
        """Write a resumable checkpoint: :func:`minidl.save` with this Trainer's
        :meth:`state_dict`, including its position inside an interrupted epoch (see
        :meth:`fit`). A Trainer interrupted inside an optimizer step refuses with a
        ``RuntimeError``."""
        if self._in_step:
            raise RuntimeError(f"Trainer.save: refusing to write {os.fspath(path)!r}: "
                               f"{self._half_step()}; a checkpoint of it would not continue "
                               f"the run")
        save(path, self.model, self.optimizer, self.history, extra,
             trainer_state=self.state_dict())

    def resume(self, checkpoint) -> Trainer:
        """Continue the run saved in ``checkpoint`` (a path, or what :func:`minidl.load`
        returned); see :func:`minidl.resume.resume`. If it fails, this Trainer is as it was,
        including a refusal to save after an interrupted optimizer step."""
        in_step = self._in_step
        try:
            return resume_from(self, checkpoint)
        except BaseException:
            self._in_step = in_step  # load_state_dict cleared it before the failure
            raise

    def _half_step(self) -> str:
        return (f"it was interrupted inside the optimizer step of epoch {self.epoch + 1}, "
                f"step {self.step + 1}, so its weights and optimizer state may be partly "
                f"updated")


# ---------------------------------------------------------------------- functions
def fit(model: Layer, loss: Loss, optimizer: Optimizer, X, y, *, epochs: int,
        batch_size: int | None = 32, shuffle: bool = True, seed: int | None = None,
        validation_data=None, validation_split: float | None = None,
        metrics: Iterable | Mapping = (), callbacks: Iterable[Callback] = (), verbose: int = 1,
        on_nonfinite: str = "raise", threads: int | str | None = "auto",
        resume=None) -> History:
    """Train ``model`` on ``(X, y)`` and return the :class:`~minidl.History`.

    See the module docstring for the loop and :class:`Trainer` for the arguments.
    ``batch_size`` defaults to 32 rows per step, as in Keras (0.1's default was the whole
    data set); pass ``batch_size=None`` for full-batch gradient descent. ``epochs``
    counts the whole run: with ``resume`` (a checkpoint path, or a loaded
    :class:`~minidl.checkpoint.Checkpoint`) training continues from the checkpoint's epoch up
    to ``epochs``, and the returned History holds the earlier epochs too. ``seed`` (default 0)
    seeds the shuffling; a resumed run takes the checkpoint's. ``threads="auto"`` trains a
    small model on one BLAS thread, faster than the BLAS's default there and much faster on a
    busy machine (:mod:`minidl.threads`); ``threads=1`` is worth trying for any model when other
    work shares the cores.
    """
    trainer = Trainer(model, loss, optimizer, batch_size=batch_size, shuffle=shuffle, seed=seed,
                      metrics=metrics, callbacks=callbacks, verbose=verbose,
                      on_nonfinite=on_nonfinite, threads=threads)
    if resume is not None:
        trainer.resume(resume)
    return trainer.fit(X, y, epochs=epochs, validation_data=validation_data,
                       validation_split=validation_split)


def predict(model: Layer, X, *, batch_size: int | None = None) -> np.ndarray:
    """The model's output for ``X``, computed in evaluation mode (Dropout off, BatchNorm on its
    running statistics) in batches of ``batch_size`` rows (None: all at once). Every layer
    goes back to the mode it was in."""
    _check_batch_size("predict", batch_size)
    return _predict(model, _as_inputs(X, model_dtype(model), "X"), batch_size)


def _predict(model: Layer, X: np.ndarray, batch_size: int | None) -> np.ndarray:
    with _eval_mode(model):
        if batch_size is None or batch_size >= len(X):
            return model(X)
        return np.concatenate([model(X[i:i + batch_size])
                               for i in range(0, len(X), batch_size)])


def evaluate(model: Layer, loss: Loss, X, y, *, batch_size: int | None = None,
             metrics: Iterable | Mapping = ()) -> dict[str, float]:
    """``{"loss": ..., <metric>: ...}`` on ``(X, y)``, in evaluation mode: the loss over all
    rows at once (on the predictions of :func:`predict`) and each metric (metrics given by
    name use ``loss.decision_threshold``, as in :func:`fit`)."""
    _check_batch_size("evaluate", batch_size)
    for name, value, cls in (("model", model, Layer), ("loss", loss, Loss)):
        if not isinstance(value, cls):  # as fit says it
            raise TypeError(f"evaluate: {name} must be a {cls.__name__}, got {value!r}"
                            + (" (losses are objects: pass e.g. minidl.MSE(), not a name)"
                               if name == "loss" and isinstance(value, str) else ""))
    X, y = _prepare(X, y, model_dtype(model), "X", "y")
    return _evaluate(model, loss, X, y,
                     get_metrics(metrics, threshold=loss.decision_threshold), batch_size)


def _evaluate(model, loss, X, y, metrics, batch_size=None) -> dict[str, float]:
    pred = _predict(model, X, batch_size)
    scores = {"loss": _loss_value(loss, pred, y)}
    for name, metric in metrics.items():
        scores[name] = _metric_value(name, metric, y, pred)
    return scores


def _loss_value(loss: Loss, pred, y) -> float:
    """``loss.forward(pred, y)`` as a float, or a TypeError saying what it returned."""
    return returned_number(loss.forward(pred, y), f"{type(loss).__name__}.forward()",
                      "a loss returns one number, averaged over the batch")


def _metric_value(name: str, metric, y, pred) -> float:
    """``metric(y, pred)`` as a float, or a TypeError saying which metric returned what."""
    return returned_number(metric(y, pred), f"the metric {name!r} ({metric!r})",
                      "a metric f(y_true, y_pred) returns one number")


# ---------------------------------------------------------------------- helpers
class _Diverged(Exception):
    """A non-finite loss or prediction in ``phase`` (``"train"`` or ``"validation"``), on its
    way to :meth:`Trainer._diverged`; ``__cause__``: the NonFiniteError, if one was raised."""

    def __init__(self, phase: str, reason: str):
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


def _finite(phase: str, compute):
    """``compute()``'s result (a loss value, or scores with a ``"loss"``), or
    :class:`_Diverged` if it raised :class:`NonFiniteError` or the loss is not finite."""
    try:
        result = compute()
    except NonFiniteError as exc:
        raise _Diverged(phase, _nonfinite_reason(exc)) from exc
    value = result["loss"] if isinstance(result, dict) else result
    if not math.isfinite(value):
        raise _Diverged(phase, f"the loss is {value}")
    return result


def _nonfinite_reason(exc: NonFiniteError) -> str:
    value = getattr(exc, "loss_value", None)
    return f"non-finite predictions: {exc}" if value is None else f"the loss is {value}"


def _batch_state(model: Layer) -> tuple:
    """What a training forward pass changes besides its caches: buffers and random state."""
    return ([(buf, buf.copy()) for _, buf in model.named_buffers()], model.rng_state())


def _undo_batch(model: Layer, before: tuple) -> None:
    buffers, rng_state = before
    for buf, saved in buffers:
        np.copyto(buf, saved)
    model.set_rng_state(rng_state)


def _split(X: np.ndarray, y: np.ndarray, fraction) -> tuple:
    """``(X_train, y_train, (X_val, y_val))``: the last ``floor(N * fraction)`` rows held out,
    as Keras's ``validation_split`` does."""
    check_number("fit", "validation_split", fraction, low=0.0, high=1.0, high_inclusive=False)
    n = len(X)
    train = math.floor(n * (1.0 - fraction))
    if fraction == 0 or train in (0, n):
        raise ValueError(
            f"fit: validation_split={fraction!r} of {n} samples leaves "
            f"{'no validation' if train == n else 'no training'} samples; pass a fraction in "
            f"(0, 1) that leaves at least one of each (or validation_split=None)"
        )
    return X[:train], y[:train], (X[train:], y[train:])


@contextmanager
def _eval_mode(model: Layer):
    """Evaluation mode for the block, then every layer back in its own mode (a model may mix
    them, e.g. a BatchNorm frozen with ``.eval()`` inside a model that trains)."""
    modes = [(layer, layer.training) for _, layer in model.named_layers()]
    model.eval()
    try:
        yield
    finally:
        for layer, training in modes:
            object.__setattr__(layer, "training", training)  # as Layer.train sets it


def _check_batch_size(who: str, batch_size) -> None:
    check_int(who, "batch_size", batch_size, low=1, allow_none=True)


def _numeric(a, name: str) -> np.ndarray:
    """``a`` as a numeric array, or a ValueError naming ``name`` and what it holds."""
    try:
        a = np.asarray(a)
    except ValueError as exc:  # e.g. rows of different lengths
        raise ValueError(f"{name} cannot be read as an array: {exc}") from None
    if a.dtype.kind == "O":  # e.g. a pandas object column: numbers are fine, others are not
        with suppress(TypeError, ValueError):
            a = a.astype(np.float64)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


def _all_finite(a: np.ndarray) -> bool:
    """Whether every value of the float array ``a`` is finite. A NaN or an infinity makes the
    sum non-finite, so a finite sum settles it in one pass with no temporary array (9 ms
    against 18 ms for ``isfinite(a).all()`` on 47M float32 values); only a sum that
    overflows, or a real non-finite value, is checked element by element."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):
            return True
    return bool(np.isfinite(a).all())


def _as_inputs(X, dtype, name: str) -> np.ndarray:
    X = _numeric(X, name)
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {X.shape}")
    X = _cast(X, dtype, name)
    if not _all_finite(X):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(X)))} non-finite value(s)")
    return X


def _cast(a: np.ndarray, dtype, name: str) -> np.ndarray:
    """``a`` in ``dtype``; a ValueError if finite values of ``a`` overflow it (1e300 into a
    float32 model becomes inf, which is not the data's fault of being "non-finite")."""
    with np.errstate(over="ignore"):  # said below, in words
        cast = a.astype(dtype, copy=False)
    if cast is not a and a.dtype.kind == "f" and not _all_finite(cast):
        with np.errstate(invalid="ignore"):
            over = np.isfinite(a) & ~np.isfinite(cast)
        if over.any():
            big = float(np.max(np.abs(a[over])))
            raise ValueError(
                f"{name} holds {int(over.sum())} value(s) too large for the model's dtype "
                f"{np.dtype(dtype).name} (largest magnitude {big:.3g}, {np.dtype(dtype).name} "
                f"holds up to {float(np.finfo(dtype).max):.3g}): they overflow to inf when "
                f"cast; scale the data, or use a float64 model"
            )
    return cast


def _prepare(X, y, dtype, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    X = _as_inputs(X, dtype, x_name)
    y = _numeric(y, y_name)
    if y.ndim == 0 or len(y) != len(X):
        raise ShapeError(
            f"{x_name} has {len(X)} samples but {y_name} has shape {y.shape}; they must have the "
            f"same length"
        )
    if y.dtype.kind == "f":
        y = _cast(y, dtype, y_name)
        if not _all_finite(y):
            raise ValueError(f"{y_name} contains {int(np.sum(~np.isfinite(y)))} non-finite "
                             f"value(s)")
    return X, y


__all__ = ["History", "Trainer", "TrainingDiverged", "evaluate", "fit", "predict"]
