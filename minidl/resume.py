"""Saving and resuming a training run: the one module that owns the resume transaction.

A run is resumable from a checkpoint holding the model, the optimizer, the History and the
:class:`~minidl.Trainer`'s state (:func:`trainer_state`: epoch and step counters, the shuffling
settings and Generator state, and each callback's state). :func:`resume` puts such a
checkpoint, given as a path or as a loaded :class:`~minidl.checkpoint.Checkpoint` (both go
through :func:`minidl.checkpoint.prepare_load`), into a Trainer, all or nothing: everything is
read and checked before anything is written.

A Trainer interrupted inside an epoch (see :meth:`minidl.Trainer.fit`) saves its position in
it (:func:`trainer_state`'s ``"progress"``: the epoch's shuffled order, the next batch, the
partial loss sum and predictions, the time spent and the epoch's learning rate), so the run
resumed from such a checkpoint goes on from that batch, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .callbacks import Callback
from .checkpoint import prepare_load
from .errors import CheckpointError, StateDictError
from .history import History
from .validation import check_int

if TYPE_CHECKING:  # pragma: no cover
    from .training import Trainer


def callback_keys(trainer: Trainer) -> list[tuple[str, Callback]]:
    """Each callback with the key its state is saved under: ``"<class>:<n>"``, the n-th
    callback of that class."""
    counts: dict[str, int] = {}
    keys = []
    for cb in trainer.callbacks:
        name = type(cb).__name__
        keys.append((f"{name}:{counts.get(name, 0)}", cb))
        counts[name] = counts.get(name, 0) + 1
    return keys


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """What a resume needs beyond the model, optimizer and History: the epoch and step
    counters, the shuffling settings (``seed``, ``batch_size``, ``shuffle``) and the
    shuffling Generator's state, the callbacks' state, and the position inside an interrupted
    epoch (``"progress"``, None between epochs)."""
    callbacks = {}
    for key, cb in callback_keys(trainer):
        state = cb.state_dict()
        if state is not None:
            callbacks[key] = state
    return {"epoch": trainer.epoch, "step": trainer.step, "seed": trainer.seed,
            "batch_size": trainer.batch_size, "shuffle": trainer.shuffle,
            "train_time": trainer.train_time, "shuffle_rng": trainer.rng.bit_generator.state,
            "callbacks": callbacks, "progress": copy_progress(trainer._progress)}


def copy_progress(progress: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of a Trainer's position inside an epoch that later batches cannot change."""
    if progress is None:
        return None
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in progress.items()}


def check_progress_fits(progress: Mapping[str, Any], n: int) -> None:
    """Raise a ``ValueError`` unless the training data (``n`` rows) is the size of the data of
    the epoch being continued."""
    if progress["n"] != n:
        raise ValueError(
            f"fit: this run was interrupted inside epoch {progress['epoch'] + 1} (after "
            f"{progress['next_batch']} batches) of a training set of {progress['n']} rows, but "
            f"X has {n}; continue it with the same training data"
        )


def _parse_progress(value: Any, epoch: int) -> dict[str, Any] | None:
    """A saved ``"progress"`` checked and converted, or a ValueError/TypeError/KeyError."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"progress is a {type(value).__name__}, not a dict")
    progress: dict[str, Any] = {"epoch": int(value["epoch"]), "n": int(value["n"]),
                "next_batch": int(value["next_batch"]), "loss_sum": float(value["loss_sum"]),
                "elapsed": float(value["elapsed"]), "lr": float(value["lr"]),
                "order": None, "train_pred": None}
    if progress["epoch"] != epoch or progress["n"] < 1 or progress["next_batch"] < 0:
        raise ValueError(f"progress {dict(value)!r} does not continue epoch {epoch + 1}")
    if value["order"] is not None:
        order = np.array(value["order"])
        if (order.dtype.kind not in "iu" or order.shape != (progress["n"],)
                or not np.array_equal(np.sort(order), np.arange(progress["n"]))):
            raise ValueError(f"progress: the order is not a permutation of {progress['n']} rows")
        progress["order"] = order
    if value["train_pred"] is not None:
        train_pred = np.array(value["train_pred"])
        if train_pred.dtype.kind != "f" or len(train_pred) != progress["n"]:
            raise ValueError("progress: the partial predictions do not fit")
        progress["train_pred"] = train_pred
    return progress


def load_trainer_state(trainer: Trainer, state: Mapping[str, Any]) -> None:
    """Restore :meth:`state_dict`. Callback states go to the callbacks of the same class, in
    the same order; callbacks with no saved state keep theirs.

    Checked first: a state saved with another ``seed`` (when this Trainer was given one),
    ``batch_size`` or ``shuffle`` raises a ``ValueError``, a malformed one a
    :class:`~minidl.errors.StateDictError`, and this Trainer is left unchanged."""
    parsed = _check_state(trainer, state, None)
    _load_callback_states(trainer, parsed["callbacks"], None)
    _set_state(trainer, parsed)


def _check_state(trainer: Trainer, state: Any, path: str | None) -> dict[str, Any]:
    """``state`` (a :meth:`state_dict`, from the checkpoint at ``path``) read and checked
    against this Trainer, changing nothing."""
    def corrupt(why: str) -> Exception:
        if path is None:
            return StateDictError(f"Trainer.load_state_dict: {why}")
        return CheckpointError(f"{path}: corrupt training state: {why}")

    if not isinstance(state, Mapping):
        raise corrupt(f"expected a dict, got {type(state).__name__}")
    try:
        parsed: dict[str, Any] = {"epoch": int(state["epoch"]), "step": int(state["step"]),
                  "seed": int(state["seed"]), "train_time": float(state["train_time"])}
        rng = np.random.default_rng(parsed["seed"])
        rng.bit_generator.state = state["shuffle_rng"]
        parsed["rng"] = rng
        # checkpoints written before positions inside an epoch were saved have none
        parsed["progress"] = _parse_progress(state.get("progress"), parsed["epoch"])
    except (KeyError, TypeError, ValueError) as exc:
        why = (f"no {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}")
        raise corrupt(why) from exc
    callbacks = state.get("callbacks", {})
    if not isinstance(callbacks, Mapping):
        raise corrupt(f"the callback states are a {type(callbacks).__name__}, not a dict")
    parsed["callbacks"] = callbacks
    for key, ok in (("epoch", parsed["epoch"] >= 0), ("step", parsed["step"] >= 0),
                    ("seed", parsed["seed"] >= 0),
                    ("batch_size", _valid_batch_size(state.get("batch_size"))),
                    ("shuffle", isinstance(state.get("shuffle", True), (bool, np.bool_)))):
        if not ok:
            raise corrupt(f"{key} is {state[key]!r}")

    mismatches = []
    if trainer.requested_seed is not None and parsed["seed"] != trainer.seed:
        mismatches.append(
            f"seed={trainer.seed} differs from the seed of the run being resumed "
            f"({parsed['seed']}); leave seed unset or pass seed={parsed['seed']}"
        )
    # checkpoints written before batch_size and shuffle were saved have neither
    if "batch_size" in state:
        saved = None if state["batch_size"] is None else int(state["batch_size"])
        if saved != trainer.batch_size:
            mismatches.append(
                f"batch_size={trainer.batch_size!r} differs from the batch_size of the run "
                f"being resumed ({saved!r}); pass batch_size={saved!r}"
                + (" (the full batch)" if saved is None else "")
            )
    if "shuffle" in state and bool(state["shuffle"]) != trainer.shuffle:
        mismatches.append(
            f"shuffle={trainer.shuffle} differs from the run being resumed "
            f"(shuffle={bool(state['shuffle'])}); pass shuffle={bool(state['shuffle'])}"
        )
    if mismatches:
        where = f" {path}" if path is not None else ""
        raise ValueError(f"fit: cannot resume{where} exactly: " + "; ".join(mismatches))
    return parsed


def _load_callback_states(trainer: Trainer, saved: Mapping[str, Any],
                      path: str | None) -> list:
    """Give each callback its saved state. If one refuses, those already given theirs get
    their previous state back and the error names the callback. Returns what
    :meth:`_undo_callback_states` needs to undo the lot."""
    done: list[tuple[Callback, Any]] = []
    for key, cb in callback_keys(trainer):
        if key not in saved:
            continue
        done.append((cb, cb.state_dict()))
        try:
            cb.load_state_dict(saved[key])
        except Exception as exc:
            _undo_callback_states(done)
            why = (f"the saved state of callback {key} does not fit it: "
                   f"{type(exc).__name__}: {exc}")
            if path is None:
                raise StateDictError(f"Trainer.load_state_dict: {why}") from exc
            raise CheckpointError(f"{path}: {why}") from exc
    return done


def _undo_callback_states(done: list) -> None:
    for cb, before in reversed(done):
        if before is not None:
            cb.load_state_dict(before)


def _set_state(trainer: Trainer, parsed: dict[str, Any]) -> None:
    trainer.seed = parsed["seed"]
    trainer.rng = parsed["rng"]
    trainer.epoch = parsed["epoch"]
    trainer.step = parsed["step"]
    trainer.train_time = parsed["train_time"]
    trainer._progress = parsed["progress"]
    trainer._broken = None


def resume(trainer: Trainer, checkpoint) -> Trainer:
    """Continue the run saved in ``checkpoint`` (a path, or what :func:`minidl.load`
    returned): its weights, random state and optimizer state go into this Trainer's model
    and optimizer, and the epoch counter, shuffling state, callback state and History into
    this Trainer.

    Everything is checked before anything is written: a checkpoint without training state
    or optimizer, one that does not fit the model or optimizer, or one saved with another
    ``seed``, ``batch_size`` or ``shuffle`` raises and leaves the model, the optimizer and
    this Trainer as they were."""
    pending = prepare_load(checkpoint, trainer.model, trainer.optimizer, who="resume")
    if pending.trainer_state is None or pending.optimizer is None:
        missing = "training state" if pending.trainer_state is None else "optimizer"
        raise ValueError(
            f"resume: {pending.path} has no {missing}, so the run cannot continue "
            f"exactly; write checkpoints with ModelCheckpoint or Trainer.save, or start a "
            f"new fit from the loaded model"
        )
    parsed = _check_state(trainer, pending.trainer_state, pending.path)
    history = History() if pending.history is None else History.from_state_dict(
        pending.history.state_dict())
    # checked: now write. Callbacks first (they undo themselves if one refuses), then the
    # model and optimizer, then the counters, which cannot fail.
    done = _load_callback_states(trainer, parsed["callbacks"], pending.path)
    try:
        pending.commit()
    except BaseException:
        _undo_callback_states(done)
        raise
    _set_state(trainer, parsed)
    trainer.history = history
    return trainer


def _valid_batch_size(value) -> bool:
    try:
        check_int("resume", "batch_size", value, low=1, allow_none=True)
    except ValueError:
        return False
    return True


