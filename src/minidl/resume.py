"""What a training run carries from one batch, ``fit`` call or process to the next, and the
resume transaction.

A *run* is one training of a model: the epochs a :class:`~minidl.Trainer` trains, over as many
``fit`` calls, interruptions and processes as it takes. It continues bit for bit from a
checkpoint holding the model, the optimizer, the History and the Trainer's
:meth:`~minidl.Trainer.state_dict`. This module holds the pieces of that state and the one way
a checkpoint goes back into a Trainer:

- :class:`EpochProgress`: where an epoch stands between two of its batches (the shuffled
  order, the next batch, the partial sums), so an epoch interrupted part-way goes on from its
  next batch; plain state (:meth:`~EpochProgress.state_dict`) and checked back
  (:meth:`~EpochProgress.from_state_dict`);
- :func:`read_trainer_state`: a Trainer's state dict read back and checked against a Trainer,
  changing nothing (:class:`TrainerState`);
- :func:`callback_states` and :func:`load_callback_states`: the callbacks' part of it;
- :func:`resume`: a checkpoint (a path, or a loaded :class:`~minidl.checkpoint.Checkpoint`,
  both through :func:`minidl.checkpoint.prepare_load`) into a Trainer, all or nothing, through
  the Trainer's public methods.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .callbacks import Callback
from .checkpoint import prepare_load
from .errors import CheckpointError, StateDictError
from .history import History
from .validation import check_int, check_number

if TYPE_CHECKING:  # pragma: no cover
    from .training import Trainer


# ---------------------------------------------------------------------- inside an epoch
@dataclass
class EpochProgress:
    """Where epoch ``epoch`` (0-based) of a training set of ``n`` rows stands between two of
    its batches: everything the loop needs to go on from ``next_batch`` as if it had never
    stopped.

    ``order`` is the epoch's permutation of the rows (None: in order, without shuffling or
    with one batch per epoch); ``lr`` the learning rate when the epoch began (its History row
    logs it); ``next_batch`` the first batch not trained yet; ``loss_sum`` the sum of the batch
    losses, each times its rows; ``train_pred`` the predictions so far, by row (for the
    training metrics; None without metrics); ``elapsed`` the seconds its batches took.
    """

    epoch: int
    n: int
    order: np.ndarray | None
    lr: float
    next_batch: int = 0
    loss_sum: float = 0.0
    train_pred: np.ndarray | None = None
    elapsed: float = 0.0

    def batches(self, batch_size: int) -> Iterator[tuple[int, slice | np.ndarray]]:
        """``(index, rows)`` of each batch from ``next_batch`` on, in ``batch_size`` chunks of
        ``order`` (the last partial batch is kept)."""
        for index in range(self.next_batch, -(-self.n // batch_size)):
            begin = index * batch_size
            yield index, (slice(begin, begin + batch_size) if self.order is None
                          else self.order[begin:begin + batch_size])

    def record(self, rows: slice | np.ndarray, loss: float, pred: np.ndarray,
               keep_pred: bool) -> None:
        """Batch ``next_batch`` (``rows``) is trained: add its loss and, with ``keep_pred``,
        its predictions."""
        self.loss_sum += loss * len(pred)
        if keep_pred:
            if self.train_pred is None:
                self.train_pred = np.empty((self.n, *pred.shape[1:]), dtype=pred.dtype)
            self.train_pred[rows] = pred
        self.next_batch += 1

    def check_fits(self, n: int, keep_pred: bool) -> None:
        """Raise a ``ValueError`` unless the training data (``n`` rows) is the size of the data
        of this epoch, and, if the predictions are to be kept (``keep_pred``, for metrics),
        those of the batches already trained were."""
        if n != self.n:
            raise ValueError(
                f"fit: this run was interrupted inside epoch {self.epoch + 1} (after "
                f"{self.next_batch} batches) of a training set of {self.n} rows, but X has {n}; "
                f"continue it with the same training data"
            )
        if keep_pred and self.train_pred is None and self.next_batch > 0:
            raise ValueError(
                f"fit: epoch {self.epoch + 1} of this run began without metrics: the "
                f"predictions of its first {self.next_batch} batches, which the training "
                f"metrics need, were not kept; continue it with the metrics it began with"
            )

    def copy(self) -> EpochProgress:
        """A copy that later batches cannot change."""
        return replace(self, order=None if self.order is None else self.order.copy(),
                       train_pred=None if self.train_pred is None else self.train_pred.copy())

    def state_dict(self) -> dict[str, Any]:
        """Plain state (numbers and arrays, copied): the ``"progress"`` of a Trainer's
        :meth:`~minidl.Trainer.state_dict`."""
        progress = self.copy()
        return {"epoch": progress.epoch, "n": progress.n, "next_batch": progress.next_batch,
                "order": progress.order, "loss_sum": progress.loss_sum,
                "train_pred": progress.train_pred, "elapsed": progress.elapsed,
                "lr": progress.lr}

    @classmethod
    def from_state_dict(cls, state: Any, epoch: int, *, batches: int | None = None,
                        shuffled: bool | None = None) -> EpochProgress:
        """:meth:`state_dict` read back (in new arrays) and checked to continue epoch
        ``epoch``; a ``ValueError``, ``TypeError`` or ``KeyError`` if it does not. Counts are
        ints, ``lr``, ``loss_sum`` and ``elapsed`` finite (``lr`` and ``elapsed`` >= 0); given
        the epoch's number of ``batches``, ``next_batch`` is at most that, and given whether
        the epoch is ``shuffled``, it has an order exactly then."""
        if not isinstance(state, Mapping):
            raise TypeError(f"progress is a {type(state).__name__}, not a dict")
        counts = {key: check_int("progress", key, state[key])
                  for key in ("epoch", "n", "next_batch")}
        for key, low in (("lr", 0.0), ("loss_sum", None), ("elapsed", 0.0)):
            check_number("progress", key, state[key], low=low)
        progress = cls(epoch=counts["epoch"], n=counts["n"], order=None,
                       lr=float(state["lr"]), next_batch=counts["next_batch"],
                       loss_sum=float(state["loss_sum"]), elapsed=float(state["elapsed"]))
        if progress.epoch != epoch or progress.n < 1 or progress.next_batch < 0:
            raise ValueError(f"progress {dict(state)!r} does not continue epoch {epoch + 1}")
        if batches is not None and progress.next_batch > batches:
            raise ValueError(f"progress: next_batch is {progress.next_batch}, but epoch "
                             f"{epoch + 1} has {batches} batches")
        if shuffled is not None and shuffled != (state["order"] is not None):
            kind = "a shuffled" if shuffled else "an unshuffled"
            raise ValueError(f"progress: the order of {kind} epoch is "
                             f"{'missing' if shuffled else 'given'}")
        if state["order"] is not None:
            order = np.array(state["order"])
            if (order.dtype.kind not in "iu" or order.shape != (progress.n,)
                    or not np.array_equal(np.sort(order), np.arange(progress.n))):
                raise ValueError(f"progress: the order is not a permutation of {progress.n} "
                                 f"rows")
            progress.order = order
        if state["train_pred"] is not None:
            train_pred = np.array(state["train_pred"])
            if train_pred.dtype.kind != "f" or len(train_pred) != progress.n:
                raise ValueError("progress: the partial predictions do not fit")
            progress.train_pred = train_pred
        return progress


# ---------------------------------------------------------------------- a Trainer's state
@dataclass
class TrainerState:
    """A Trainer's :meth:`~minidl.Trainer.state_dict` read back and checked: what
    :meth:`~minidl.Trainer.load_state_dict` writes. ``rng`` is a new shuffling Generator in
    the saved state; ``callbacks`` the saved callback states, by :func:`callback_keys` key."""

    epoch: int
    step: int
    seed: int
    train_time: float
    rng: np.random.Generator
    progress: EpochProgress | None
    callbacks: Mapping[str, Any]


def check_trainer_state(state: Any, path: str | None = None) -> TrainerState:
    """``state`` (a Trainer's :meth:`~minidl.Trainer.state_dict`) read and checked on its own:
    its counts, shuffling state, position inside an epoch and callback states are of the right
    types and in range. A malformed one raises :class:`~minidl.errors.StateDictError` (with
    ``path``: a :class:`~minidl.errors.CheckpointError` naming the file). :func:`minidl.load`
    runs it on a checkpoint's training state; a resume runs it again, then compares the state
    with the Trainer (:func:`read_trainer_state`)."""
    def corrupt(why: str) -> Exception:
        if path is None:
            return StateDictError(f"Trainer.load_state_dict: {why}")
        return CheckpointError(f"{path}: corrupt training state: {why}")

    if not isinstance(state, Mapping):
        raise corrupt(f"expected a dict, got {type(state).__name__}")
    try:
        epoch, step, seed = (check_int("state", key, state[key], low=0)
                             for key in ("epoch", "step", "seed"))
        check_number("state", "train_time", state["train_time"], low=0.0)
        rng = np.random.default_rng(seed)
        rng.bit_generator.state = state["shuffle_rng"]
        # checkpoints written before positions inside an epoch were saved have none
        progress = state.get("progress")
        saved = TrainerState(
            epoch=epoch, step=step, seed=seed,
            train_time=float(state["train_time"]), rng=rng, callbacks={},
            progress=None if progress is None else EpochProgress.from_state_dict(
                progress, epoch, **_epoch_shape(state, progress)))
    except (KeyError, TypeError, ValueError) as exc:
        why = (f"no {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}")
        raise corrupt(why) from exc
    callbacks = state.get("callbacks", {})
    if not isinstance(callbacks, Mapping):
        raise corrupt(f"the callback states are a {type(callbacks).__name__}, not a dict")
    saved.callbacks = callbacks
    for key, ok in (("epoch", saved.epoch >= 0), ("step", saved.step >= 0),
                    ("seed", saved.seed >= 0),
                    ("batch_size", _valid_batch_size(state.get("batch_size"))),
                    ("shuffle", isinstance(state.get("shuffle", True), (bool, np.bool_)))):
        if not ok:
            raise corrupt(f"{key} is {state[key]!r}")
    return saved


def read_trainer_state(state: Any, trainer: Trainer, path: str | None = None) -> TrainerState:
    """``state`` (a Trainer's :meth:`~minidl.Trainer.state_dict`, from the checkpoint at
    ``path`` if given) read and checked against ``trainer``, changing nothing.

    A malformed state raises as in :func:`check_trainer_state`; one saved with another
    ``seed`` (when ``trainer`` was given one), ``batch_size`` or ``shuffle`` a ``ValueError``:
    the run would not continue exactly."""
    saved = check_trainer_state(state, path)
    mismatches = []
    if trainer.requested_seed is not None and saved.seed != trainer.seed:
        mismatches.append(
            f"seed={trainer.seed} differs from the seed of the run being resumed "
            f"({saved.seed}); leave seed unset or pass seed={saved.seed}"
        )
    # checkpoints written before batch_size and shuffle were saved have neither
    if "batch_size" in state:
        batch_size = None if state["batch_size"] is None else int(state["batch_size"])
        if batch_size != trainer.batch_size:
            mismatches.append(
                f"batch_size={trainer.batch_size!r} differs from the batch_size of the run "
                f"being resumed ({batch_size!r}); pass batch_size={batch_size!r}"
                + (" (the full batch)" if batch_size is None else "")
            )
    if "shuffle" in state and bool(state["shuffle"]) != trainer.shuffle:
        mismatches.append(
            f"shuffle={trainer.shuffle} differs from the run being resumed "
            f"(shuffle={bool(state['shuffle'])}); pass shuffle={bool(state['shuffle'])}"
        )
    if mismatches:
        where = f" {path}" if path is not None else ""
        raise ValueError(f"fit: cannot resume{where} exactly: " + "; ".join(mismatches))
    return saved


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """Deprecated: ``trainer.state_dict()``."""
    warnings.warn("minidl.resume.trainer_state(trainer) is deprecated: use trainer.state_dict()",
                  DeprecationWarning, stacklevel=2)
    return trainer.state_dict()


def load_trainer_state(trainer: Trainer, state: Mapping[str, Any]) -> None:
    """Deprecated: ``trainer.load_state_dict(state)``."""
    warnings.warn("minidl.resume.load_trainer_state(trainer, state) is deprecated: use "
                  "trainer.load_state_dict(state)", DeprecationWarning, stacklevel=2)
    trainer.load_state_dict(state)


def _epoch_shape(state: Mapping[str, Any], progress: Any) -> dict[str, Any]:
    """How many batches the saved epoch has and whether it is shuffled, when the state says
    (checkpoints written before batch_size and shuffle were saved do not)."""
    if not ("batch_size" in state and _valid_batch_size(state["batch_size"])
            and isinstance(progress, Mapping) and isinstance(progress.get("n"), int)
            and progress["n"] >= 1):
        return {}
    n, size = progress["n"], state["batch_size"]
    batch = n if size is None else min(int(size), n)
    shuffle = state.get("shuffle", True)
    return {"batches": -(-n // batch),
            "shuffled": bool(shuffle) and batch < n if isinstance(shuffle, (bool, np.bool_))
            else None}


def _valid_batch_size(value) -> bool:
    try:
        check_int("resume", "batch_size", value, low=1, allow_none=True)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------- callback states
def callback_keys(callbacks: Sequence[Callback]) -> list[tuple[str, Callback]]:
    """Each callback with the key its state is saved under: ``"<class>:<n>"``, the n-th
    callback of that class. (Given a Trainer, as before 0.2: its callbacks, with a
    DeprecationWarning.)"""
    if not isinstance(callbacks, Sequence):  # a Trainer: its callbacks
        warnings.warn("minidl.resume.callback_keys(trainer) is deprecated: pass "
                      "trainer.callbacks", DeprecationWarning, stacklevel=2)
        callbacks = callbacks.callbacks
    counts: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        keys.append((f"{name}:{counts.get(name, 0)}", cb))
        counts[name] = counts.get(name, 0) + 1
    return keys


def callback_states(callbacks: Sequence[Callback]) -> dict[str, Any]:
    """The state of each callback that has one (``state_dict()`` not None), by key."""
    states = {}
    for key, cb in callback_keys(callbacks):
        state = cb.state_dict()
        if state is not None:
            states[key] = state
    return states


def load_callback_states(callbacks: Sequence[Callback], saved: Mapping[str, Any]) -> None:
    """Give each callback its state in ``saved`` (callbacks without one keep theirs), all or
    nothing: if one refuses (its ``load_state_dict`` raises), those already given theirs get
    back what their ``state_dict()`` returned before, and a
    :class:`~minidl.errors.StateDictError` names the callback."""
    done: list[tuple[Callback, Any]] = []
    for key, cb in callback_keys(callbacks):
        if key not in saved:
            continue
        done.append((cb, cb.state_dict()))
        try:
            cb.load_state_dict(saved[key])
        except Exception as exc:
            for earlier, before in reversed(done):
                if before is not None:
                    earlier.load_state_dict(before)
            raise StateDictError(
                f"Trainer.load_state_dict: the saved state of callback {key} does not fit it: "
                f"{type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------- resume
def resume(trainer: Trainer, checkpoint) -> Trainer:
    """Continue the run saved in ``checkpoint`` (a path, or what :func:`minidl.load`
    returned): its weights, random state and optimizer state go into the Trainer's model and
    optimizer, its training state into the Trainer (:meth:`~minidl.Trainer.load_state_dict`:
    counters, shuffling state, callback states, the position inside an interrupted epoch), and
    its History becomes the Trainer's ``history``.

    Everything is checked before anything is written: a checkpoint without training state
    or optimizer, one that does not fit the model or optimizer, or one saved with another
    ``seed``, ``batch_size`` or ``shuffle`` raises and leaves the model, the optimizer and
    the Trainer as they were."""
    pending = prepare_load(checkpoint, trainer.model, trainer.optimizer, who="resume")
    if pending.trainer_state is None or pending.optimizer is None:
        missing = "training state" if pending.trainer_state is None else "optimizer"
        raise ValueError(
            f"resume: {pending.path} has no {missing}, so the run cannot continue "
            f"exactly; write checkpoints with ModelCheckpoint or Trainer.save, or start a "
            f"new fit from the loaded model"
        )
    saved = read_trainer_state(pending.trainer_state, trainer, pending.path)  # names the file
    if saved.progress is not None:  # an epoch begun without metrics cannot end with them
        saved.progress.check_fits(saved.progress.n, keep_pred=bool(trainer.metrics))
    history = History() if pending.history is None else History.from_state_dict(
        pending.history.state_dict())
    # checked: now write. The Trainer first (only a callback refusing its state can stop it,
    # and then it changes nothing), then the model and optimizer (checked, so they do not
    # refuse; should they, the Trainer goes back to where it was).
    before = trainer.state_dict()
    try:
        trainer.load_state_dict(pending.trainer_state)
    except StateDictError as exc:
        raise CheckpointError(f"{pending.path}: {exc}") from exc
    try:
        pending.commit()
    except BaseException:
        trainer.load_state_dict(before)
        raise
    trainer.history = history
    return trainer
