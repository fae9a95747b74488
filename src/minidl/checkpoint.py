"""Checkpoints: :func:`save` and :func:`load`, one ``.npz`` file with JSON metadata, no pickle.

File format (version 2)
-----------------------
A NumPy ``.npz`` archive (a zip of uncompressed ``.npy`` arrays, read without pickle) holding:

=============================  ==================================================================
``__minidl__``                 UTF-8 JSON metadata, as a uint8 array (below)
``model/<path>``               every parameter and buffer, by its ``state_dict`` path
``optimizer/state/<i>/<name>`` the optimizer's per-parameter arrays, by parameter index
``history/columns/<name>``     the History columns
``trainer/...``, ``extra/...``  arrays inside the Trainer's state and the ``extra`` dict
=============================  ==================================================================

The metadata holds ``format`` (``"minidl-checkpoint"``), ``format_version``, the
``minidl_version`` and parameter ``dtype`` that wrote it, the model's class, architecture config
(:func:`~minidl.layer_config`, so built-in layers are rebuilt without the user's code) and
random state (Dropout's Generators), the optimizer's class, hyperparameters, step counts and the
model path of each of its parameters, every JSON value of the History, trainer state and
``extra``, and ``arrays``: the dtype, shape and CRC-32 of every array, by name.

Inside the JSON a value the JSON cannot hold is a one-key object, its *tag*: an array is
``{"__ndarray__": "<npz name>"}`` (the name is the value's own path, e.g. ``extra/split/w``), a
non-finite float ``{"__float__": "nan"}``, a tuple ``{"__tuple__": [...]}``, and a dict that
has keys other than strings, or a single key that looks like a tag, ``{"__dict__": [[key,
value], ...]}``. So user data is never read as the format's own encoding, and the JSON is
strict. NumPy scalars come back as Python numbers; anything else :func:`save` cannot give back
as it was (other key types, an ndarray subclass, a value that contains itself, nesting deeper
than :data:`MAX_DEPTH`) is refused when saving.

Format 1 (minidl 0.1.0) is read too: it has no ``arrays`` table, and its tags are those of a
dict with the tag's key alone (a user's ``{"__ndarray__": ...}`` was ambiguous in it).

Safety
------
:func:`save` writes to a temporary file in the target's folder, flushes and fsyncs it, then
``os.replace``-s it over the target: a crash at any moment leaves either the previous checkpoint
or the new one, never a mix (a stray ``*.tmp`` file at worst). :func:`load` opens only a
regular file (a named pipe or a device is refused, never waited on), reads only the entries
the metadata names and checks the archive holds no others, no entry twice, every array under
its own name, as large as its header says and at most as large as the file (a compressed entry
is refused), and with the dtype, shape and CRC-32 its table records. Then it checks the values:
finite weights (unless ``allow_nonfinite=True``), a training position inside its epoch. A
truncated, corrupt, altered or foreign file is a :class:`CheckpointError` that names the file
and what is wrong.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import stat
import sys
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .atomic import atomic_write
from .containers import build_layer, layer_config
from .errors import CheckpointError
from .history import History
from .layer import Layer
from .optim.optimizer import Optimizer
from .validation import check_bool

FORMAT = "minidl-checkpoint"
FORMAT_VERSION = 2
#: The formats :func:`load` reads: 1 (minidl 0.1.0) and 2.
READABLE_VERSIONS = (1, 2)
META_KEY = "__minidl__"
#: How deep the metadata's JSON may nest (the ``extra`` dict's values some levels less):
#: :func:`save` refuses deeper values, :func:`load` deeper metadata.
MAX_DEPTH = 100
_TAGS = ("__ndarray__", "__float__", "__tuple__", "__dict__")
_NONFINITE = ("nan", "inf", "-inf")
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Checkpoint:
    """What :func:`load` returns. ``extra`` is empty if none was saved; ``optimizer``,
    ``history`` and ``trainer_state`` are None if they were not saved. ``nonfinite`` names the
    model's arrays that hold NaN or inf (loaded only with
    ``allow_nonfinite=True``; empty otherwise). ``optimizer_skipped`` says why a saved
    optimizer was not rebuilt (its class cannot be found in this process; a warning says it
    too), None otherwise."""

    path: str
    model: Layer
    optimizer: Optimizer | None = None
    history: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    trainer_state: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    nonfinite: list[str] = field(default_factory=list)
    optimizer_skipped: str | None = None

    @property
    def epoch(self) -> int:
        """Epochs completed when the checkpoint was written."""
        if self.trainer_state is not None:
            return int(self.trainer_state["epoch"])
        return 0 if self.history is None else len(self.history)

    def __repr__(self) -> str:
        return (f"Checkpoint({self.path!r}, epoch={self.epoch}, model={type(self.model).__name__}, "
                f"optimizer={type(self.optimizer).__name__ if self.optimizer else None}, "
                f"extra={sorted(self.extra)})")


# ---------------------------------------------------------------------- save
def save(path, model: Layer, optimizer: Optimizer | None = None, history=None,
         extra: dict[str, Any] | None = None, *,
         trainer_state: Mapping[str, Any] | None = None, trainer: Any = None) -> None:
    """Write ``model`` (weights, buffers, random state, architecture), and optionally the
    ``optimizer`` state, a ``history`` (a :class:`~minidl.History`), an ``extra`` dict and a
    ``trainer_state`` (a :meth:`minidl.Trainer.state_dict`: what ``fit(..., resume=)``
    needs; :meth:`minidl.Trainer.save` passes it), to ``path``, atomically. ``extra`` and
    ``trainer_state`` hold JSON values (dicts with str or int keys, lists, tuples, str, int,
    float, bool, None; NumPy scalars come back as Python numbers) and NumPy arrays (of
    numbers or bools), nested at most :data:`MAX_DEPTH` deep; anything else, or a value that
    contains itself, is refused before anything is written (it could not come back as it
    was). ``path`` is used as given (no ``.npz`` is appended).

    Deprecated: ``trainer=`` (a Trainer, or its state dict); pass
    ``trainer_state=trainer.state_dict()``, or call ``trainer.save(path)``."""
    from . import __version__  # defined by minidl/__init__.py, which imports this module

    path = _fspath(path, "save")
    if not isinstance(model, Layer):
        raise TypeError(f"save: model must be a Layer, got {model!r}")
    if history is not None and not isinstance(history, History):
        raise TypeError(f"save: history must be a History (what fit returns) or None, got "
                        f"{type(history).__name__}")
    if trainer is not None:
        warnings.warn("save(..., trainer=) is deprecated: pass trainer_state="
                      "trainer.state_dict(), or call trainer.save(path)", DeprecationWarning,
                      stacklevel=2)
        if trainer_state is not None:
            raise TypeError("save: pass trainer_state, not trainer (deprecated) as well")
        trainer_state = trainer.state_dict() if hasattr(trainer, "state_dict") else trainer
    if trainer_state is not None and not isinstance(trainer_state, Mapping):
        raise TypeError(f"save: trainer_state must be a dict (a Trainer's state_dict()), got "
                        f"{type(trainer_state).__name__}"
                        + (": pass trainer.state_dict(), or call trainer.save(path)"
                           if hasattr(trainer_state, "state_dict") else ""))
    arrays: dict[str, np.ndarray] = {}
    state = model.state_dict()
    for key, value in state.items():
        arrays[f"model/{key}"] = value
    try:
        config = layer_config(model)
        json.dumps(config, allow_nan=False)
    except (NotImplementedError, TypeError, ValueError):
        config = None  # loadable only into a model the caller builds: load(path, model=...)
    params = list(model.parameters())
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minidl_version": __version__,
        "dtype": params[0].dtype.name if params else None,
        "model": {
            "class": type(model).__name__,
            "config": config,
            "keys": list(state),
            "rng_state": _encode(model.rng_state(), "model_rng", arrays),
        },
        "optimizer": None,
        "history": None,
        "trainer": None,
        "extra": None,
    }
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"save: optimizer must be an Optimizer, got {optimizer!r}")
        meta["optimizer"] = {
            "class": type(optimizer).__name__,
            "class_path": class_path(type(optimizer)),
            "param_paths": _param_paths(model, optimizer),
            "state": _encode(optimizer.state_dict(), "optimizer", arrays),
        }
    if history is not None:
        meta["history"] = _encode(history.state_dict(), "history", arrays)
    if trainer_state is not None:
        meta["trainer"] = _encode(dict(trainer_state), "trainer", arrays)
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"save: extra must be a dict, got {type(extra).__name__}")
        meta["extra"] = _encode(extra, "extra", arrays)
    if config is not None and _too_deep(config, MAX_DEPTH - 3):
        meta["model"]["config"] = None  # as for a model without get_config: load(model=...)
    meta["arrays"] = {name: _describe(value) for name, value in arrays.items()}
    text = json.dumps(meta, allow_nan=False)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    # numpy's stub gives savez an `allow_pickle: bool` keyword beside `**kwds`, and mypy checks
    # every value of `**arrays` against it too; the keys are array names, never allow_pickle.
    atomic_write(path, lambda f: np.savez(f, **arrays), who="save")  # type: ignore[arg-type]


def _param_paths(model: Layer, optimizer: Optimizer) -> list[str]:
    names = {id(p): name for name, p in model.named_parameters()}
    missing = [i for i, p in enumerate(optimizer.params) if id(p) not in names]
    if missing:
        raise ValueError(
            f"save: the optimizer's parameters {missing} are not parameters of the model; save "
            f"the model the optimizer trains"
        )
    return [names[id(p)] for p in optimizer.params]


def _fspath(path: Any, who: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{who}: path must be a str or an os.PathLike (a pathlib.Path), got "
                        f"{path!r}")
    result = os.fspath(path)
    if not isinstance(result, str):
        raise TypeError(f"{who}: path must be a str or an os.PathLike (a pathlib.Path), got "
                        f"{path!r}")
    return result


def _describe(array: np.ndarray) -> dict[str, Any]:
    """What the metadata records of an array, checked when it is read back."""
    return {"dtype": array.dtype.str, "shape": list(array.shape), "crc32": _crc32(array)}


def _crc32(array: np.ndarray) -> int:
    """The CRC-32 of the array's values, in C order, as stored (its byte order kept)."""
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)


def _is_tag_like(value: dict) -> bool:
    """A dict that a reader could take for a tag: one key, of the form ``__name__``."""
    if len(value) != 1:
        return False
    key = next(iter(value))
    return isinstance(key, str) and len(key) > 4 and key.startswith("__") and key.endswith("__")


def _encode(value: Any, prefix: str, arrays: dict[str, np.ndarray], depth: int = 2,
            open_: set[int] | None = None) -> Any:
    """A JSON-compatible copy of ``value`` (tags as the module says); arrays go to ``arrays``
    under ``prefix/...``. ``depth``: how deep in the metadata the value sits; ``open_``: the
    ids of the containers it sits in."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save: cannot store {prefix!r}: it is nested deeper than a checkpoint "
                         f"holds (a metadata depth of {MAX_DEPTH})")
    if isinstance(value, np.ndarray):
        if type(value) is not np.ndarray:
            raise TypeError(f"save: cannot store {prefix!r}: a {type(value).__name__} (an "
                            f"ndarray subclass) would come back as a plain ndarray, without "
                            f"what it adds; store np.asarray(value) if that is what you mean")
        if value.dtype.kind not in "biufc":
            raise TypeError(f"save: cannot store {prefix!r}: arrays of dtype {value.dtype} need "
                            f"pickle, which minidl never uses")
        if prefix in arrays:
            raise ValueError(f"save: two entries map to the same name {prefix!r}")
        arrays[prefix] = value
        return {"__ndarray__": prefix}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(float(value))}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if not isinstance(value, (dict, list, tuple)):
        raise TypeError(f"save: cannot store {prefix!r}: {type(value).__name__} is neither a "
                        f"JSON value nor a NumPy array")
    open_ = set() if open_ is None else open_
    if id(value) in open_:
        raise ValueError(f"save: cannot store {prefix!r}: it contains itself (a value inside "
                         f"it is the value), which no file can hold")
    open_.add(id(value))
    try:
        if isinstance(value, tuple):
            return {"__tuple__": [_encode(v, f"{prefix}/{i}", arrays, depth + 2, open_)
                                  for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [_encode(v, f"{prefix}/{i}", arrays, depth + 1, open_)
                    for i, v in enumerate(value)]
        for k in value:
            if not isinstance(k, (str, int, np.integer)) or isinstance(k, (bool, np.bool_)):
                raise TypeError(f"save: cannot store {prefix!r}: dict keys must be str or int, "
                                f"got {k!r}")
        if all(isinstance(k, str) for k in value) and not _is_tag_like(value):
            return {k: _encode(v, f"{prefix}/{k}", arrays, depth + 1, open_)
                    for k, v in value.items()}
        return {"__dict__": [[k if isinstance(k, str) else int(k),
                              _encode(v, f"{prefix}/{k}", arrays, depth + 3, open_)]
                             for k, v in value.items()]}
    finally:
        open_.discard(id(value))


def _too_deep(value: Any, limit: int) -> bool:
    """Whether the JSON ``value`` nests deeper than ``limit`` (walked without recursion)."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                 else item))
    return False


class _Collect:
    """Stands for the arrays while the metadata is first decoded: records each name asked
    for (refusing one asked twice) and answers None."""

    def __init__(self, path: str, held: Mapping[str, Any]):
        self.path, self.held = path, held
        self.names: dict[str, str] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.held

    def __getitem__(self, name: str) -> None:
        if name in self.names:
            raise CheckpointError(f"{self.path}: corrupt checkpoint: the array {name!r} is "
                                  f"used twice, as {self.names[name]!r} and again")
        self.names[name] = name
        return None


def _decode(value: Any, arrays: Any, path: str, where: str, version: int) -> Any:
    """The value that :func:`_encode` stored as ``value`` at ``where`` (its path, the name of
    any array there), its arrays read from ``arrays``."""
    if isinstance(value, dict):
        if version >= 2:
            tag = next(iter(value)) if len(value) == 1 else None
            if tag is not None and _is_tag_like(value):
                return _decode_tag(tag, value[tag], arrays, path, where, version)
        elif set(value) in ({"__ndarray__"}, {"__float__"}):
            (tag,) = value
            return _decode_tag(tag, value[tag], arrays, path, where, version)
        return {k: _decode(v, arrays, path, f"{where}/{k}", version) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, path, f"{where}/{i}", version) for i, v in enumerate(value)]
    return value


def _decode_tag(tag: str, body: Any, arrays: Any, path: str, where: str, version: int) -> Any:
    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: corrupt checkpoint: {why}")

    if tag == "__ndarray__":
        if not isinstance(body, str) or body not in arrays:
            raise corrupt(f"the metadata refers to an array {body!r} that the archive does "
                          f"not hold")
        if body != where:
            raise corrupt(f"the array at {where!r} is stored as {body!r}: every array is "
                          f"stored under its own path")
        return arrays[body]
    if tag == "__float__":
        ok = body in _NONFINITE if version >= 2 else isinstance(body, str)
        try:
            if ok:
                return float(body)
        except ValueError:
            pass
        raise corrupt(f"{ {tag: body}!r} is not a number")
    if tag == "__tuple__" and isinstance(body, list):
        return tuple(_decode(v, arrays, path, f"{where}/{i}", version)
                     for i, v in enumerate(body))
    if tag == "__dict__" and isinstance(body, list):
        out: dict[Any, Any] = {}
        for item in body:
            if not (isinstance(item, list) and len(item) == 2
                    and isinstance(item[0], (str, int)) and not isinstance(item[0], bool)
                    and item[0] not in out):
                raise corrupt(f"the dict at {where!r} holds {item!r}, not a [key, value] pair "
                              f"of a new str or int key")
            out[item[0]] = _decode(item[1], arrays, path, f"{where}/{item[0]}", version)
        return out
    raise corrupt(f"the value at {where!r} is {json.dumps({tag: body})[:200]}, not a tag "
                  f"this minidl knows ({', '.join(_TAGS)})")


# ---------------------------------------------------------------------- load
def load(path, *, model: Layer | None = None, optimizer: Optimizer | None = None,
         allow_nonfinite: bool = False) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    The model is rebuilt from its saved architecture (:func:`~minidl.build_layer`: every
    built-in layer class, and user classes once their module is imported), or, with
    ``model=``, the weights go into the model given. The same holds for the optimizer
    (``optimizer=``). Random state is restored too.

    Everything is read and checked before anything is written: when the checkpoint does not fit
    the ``model`` or ``optimizer`` given, they are left exactly as they were. Raises
    :class:`CheckpointError` (naming the file and what is wrong) for a file that is not a
    readable checkpoint or does not fit, and ``FileNotFoundError`` for a missing one.

    Weights and buffers that hold NaN or inf (a run that had diverged, or a damaged file) are
    refused too, naming them (an optimizer refuses such states of its own); with
    ``allow_nonfinite=True`` they load and :attr:`Checkpoint.nonfinite` names them.
    """
    allow = check_bool("load", "allow_nonfinite", allow_nonfinite)
    return _prepare_load(_fspath(path, "load"), model, optimizer, allow_nonfinite=allow).commit()


def prepare_load(source, model: Layer, optimizer: Optimizer, *, who: str = "load") -> PendingLoad:
    """What putting ``source`` (a checkpoint path, or a :class:`Checkpoint` already loaded)
    into ``model`` and ``optimizer`` would write, read and checked, writing nothing yet: call
    ``commit()`` on the result to write it. The one way in for both kinds of source."""
    if isinstance(source, (str, os.PathLike)):
        return _prepare_load(_fspath(source, who), model, optimizer)
    if isinstance(source, Checkpoint):
        return _prepare_restore(source, model, optimizer)
    raise TypeError(f"{who}: expected a path or a Checkpoint, got {source!r}")


@dataclass
class PendingLoad:
    """A checkpoint read and checked against the objects it goes into; :meth:`commit` writes
    it. ``None`` for a state means there is nothing to write (the object already holds it)."""

    path: str
    model: Layer
    optimizer: Optimizer | None
    model_state: dict[str, np.ndarray] | None
    rng_state: dict[str, Any] | None
    optimizer_state: dict[str, Any] | None
    history: Any
    extra: dict[str, Any]
    trainer_state: dict[str, Any] | None
    metadata: dict[str, Any]
    nonfinite: list[str] = field(default_factory=list)
    optimizer_skipped: str | None = None

    def commit(self) -> Checkpoint:
        # The _check_* functions ran these writes' checks beforehand, so they do not refuse;
        # Layer.load_state_dict, first, changes nothing if it does. Should a later one still
        # fail, the error names the file.
        try:
            if self.model_state is not None:
                self.model.load_state_dict(self.model_state)
            if self.rng_state is not None:
                self.model.set_rng_state(self.rng_state)
            if self.optimizer_state is not None:
                assert self.optimizer is not None  # a state is prepared only with an optimizer
                self.optimizer.load_state_dict(self.optimizer_state)
        except Exception as exc:
            raise CheckpointError(f"{self.path}: the checkpoint does not fit: {_why(exc)}"
                                  ) from exc
        return Checkpoint(path=self.path, model=self.model, optimizer=self.optimizer,
                          history=self.history, extra=self.extra,
                          trainer_state=self.trainer_state, metadata=self.metadata,
                          nonfinite=self.nonfinite, optimizer_skipped=self.optimizer_skipped)


def _prepare_load(path: str, model: Layer | None, optimizer: Optimizer | None, *,
                  allow_nonfinite: bool = False) -> PendingLoad:
    """Read the checkpoint at ``path`` and check it against ``model`` and ``optimizer`` (or
    rebuild them), writing nothing into the objects given."""
    if model is not None and not isinstance(model, Layer):
        raise TypeError(f"load: model must be a Layer or None, got {model!r}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"load: optimizer must be an Optimizer or None, got {optimizer!r}")
    archive = _read(path)
    meta, arrays, version = archive.meta, archive.arrays, archive.version
    model_meta = meta["model"]  # checked by _read
    state = {key: arrays[f"model/{key}"] for key in model_meta["keys"]}
    nonfinite = [name for name, value in arrays.items()
                 if name.startswith("model/") and value.dtype.kind in "fc"
                 and not np.isfinite(value).all()]
    if nonfinite and not allow_nonfinite:
        raise CheckpointError(
            f"{path}: the checkpoint's {', '.join(nonfinite)} hold non-finite values (NaN or "
            f"inf): the run it saved had diverged, or the file was altered; "
            f"load(path, allow_nonfinite=True) loads it anyway (Checkpoint.nonfinite names them)")
    rng_state = _decode(model_meta.get("rng_state", {}), arrays, path, "model_rng", version)

    if model is None:
        config = model_meta.get("config")
        if config is None:
            raise CheckpointError(
                f"{path}: the checkpoint has no architecture config (its model, a "
                f"{model_meta.get('class')}, does not define get_config()); build the model "
                f"yourself and pass it: load(path, model=...)"
            )
        try:
            model = build_layer(config)
        except Exception as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild the model: {_why(exc)}; or pass model= to load into a "
                f"model you build"
            ) from exc
        _check_model_fits(path, model, state, rng_state)
    else:  # weights that fit (else that error, more precise) into the same architecture
        _check_model_fits(path, model, state, rng_state)
        _check_same_architecture(path, model, model_meta.get("config"))

    opt_meta = meta.get("optimizer")
    optimizer_state = skipped = None
    if opt_meta is None:
        optimizer = None
    else:
        optimizer, optimizer_state, skipped = _prepare_optimizer(path, opt_meta, arrays, model,
                                                                 optimizer, version)
        if skipped is not None:  # the model loads all the same
            warnings.warn(skipped, stacklevel=4)

    history = None
    if meta.get("history") is not None:
        try:
            history = History.from_state_dict(
                _decode(meta["history"], arrays, path, "history", version))
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt checkpoint: its History cannot be rebuilt: "
                                  f"{_why(exc)}") from exc
    trainer_state = None
    if meta.get("trainer") is not None:
        trainer_state = _decode(meta["trainer"], arrays, path, "trainer", version)
        if not isinstance(trainer_state, dict):
            raise CheckpointError(f"{path}: corrupt checkpoint: the training state is a "
                                  f"{type(trainer_state).__name__}, not a dict")
        from .resume import check_trainer_state  # resume.py imports this module

        check_trainer_state(trainer_state, str(path))  # a CheckpointError naming the file
    extra = ({} if meta.get("extra") is None
             else _decode(meta["extra"], arrays, path, "extra", version))
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint: extra is a {type(extra).__name__}, "
                              f"not a dict")
    if archive.unused:  # after the sections' own checks, which say more about what is wrong
        raise CheckpointError(f"{path}: corrupt checkpoint: it holds {_some(archive.unused)}, "
                              f"which its metadata does not name; a checkpoint holds what it "
                              f"names, once")
    return PendingLoad(path, model, optimizer, state, rng_state, optimizer_state, history, extra,
                       trainer_state, meta, nonfinite, skipped)


def _prepare_restore(checkpoint: Checkpoint, model: Layer, optimizer: Optimizer) -> PendingLoad:
    """What putting a loaded ``checkpoint`` into ``model`` and ``optimizer`` writes, checked
    (for :meth:`minidl.Trainer.resume`); states already in place are not written again."""
    path = checkpoint.path
    model_state = rng_state = optimizer_state = None
    if checkpoint.model is not model:
        model_state = checkpoint.model.state_dict()
        rng_state = checkpoint.model.rng_state()
        _check_model_fits(path, model, model_state, rng_state)
    target = None
    if checkpoint.optimizer is not None:
        target = optimizer
        if checkpoint.optimizer is not optimizer:
            saved = _own_paths(checkpoint.model, checkpoint.optimizer)
            _check_same_paths(path, _own_paths(model, optimizer), saved)
            optimizer_state = checkpoint.optimizer.state_dict()
            _check_optimizer_fits(path, optimizer, optimizer_state)
    return PendingLoad(path, model, target, model_state, rng_state, optimizer_state,
                    checkpoint.history, checkpoint.extra, checkpoint.trainer_state,
                    checkpoint.metadata)


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _check_same_architecture(path: str, model: Layer, saved: Any) -> None:
    """Raise :class:`CheckpointError` if the checkpoint's architecture config and ``model``'s
    differ (a Tanh checkpoint into a same-shaped ReLU model), dtypes aside (loading casts).
    Either side without a config (a user model without ``get_config``) is not compared."""
    if saved is None:
        return
    try:
        own = json.loads(json.dumps(layer_config(model), allow_nan=False))
    except (NotImplementedError, TypeError, ValueError):
        return
    if _without_dtype(own) != _without_dtype(saved):
        raise CheckpointError(
            f"{path}: the checkpoint was saved from another architecture: it holds "
            f"{json.dumps(saved)}, but the model given is {json.dumps(own)}; build the model "
            f"the checkpoint was saved from, or load(path) to rebuild it"
        )


def _without_dtype(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _without_dtype(v) for k, v in config.items() if k != "dtype"}
    if isinstance(config, list):
        return [_without_dtype(v) for v in config]
    return config


def _check_model_fits(path: str, model: Layer, state: dict, rng_state: Any) -> None:
    """Raise :class:`CheckpointError` unless ``model.load_state_dict(state)`` and
    ``model.set_rng_state(rng_state)`` would both succeed; changes nothing."""
    problems = model.state_dict_problems(state)
    if problems:
        raise CheckpointError(f"{path}: the checkpoint does not fit the model: cannot load "
                              f"state dict into {type(model).__name__}: " + "; ".join(problems))
    own = model.rng_state()
    if not isinstance(rng_state, dict) or set(own) != set(rng_state):
        got = sorted(rng_state) if isinstance(rng_state, dict) else repr(rng_state)
        raise CheckpointError(f"{path}: the checkpoint does not fit the model: random state "
                              f"keys differ: model has {sorted(own)}, got {got}")
    for key, current in own.items():
        cls = getattr(np.random, str(current.get("bit_generator")), None)
        if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
            continue  # a bit generator NumPy does not name: set_rng_state will judge
        try:
            cls(0).state = rng_state[key]  # a throwaway generator of the same kind
        except Exception as exc:
            raise CheckpointError(f"{path}: the checkpoint does not fit the model: its random "
                                  f"state {key!r} is not a {cls.__name__} state: {_why(exc)}"
                                  ) from exc


def _check_optimizer_fits(path: str, optimizer: Optimizer, state: Any) -> None:
    """Raise :class:`CheckpointError` unless ``optimizer.load_state_dict(state)`` would
    succeed; changes nothing."""
    try:
        optimizer.check_state_dict(state)
    except Exception as exc:
        raise CheckpointError(f"{path}: the optimizer state does not fit: {_why(exc)}") from exc


def _own_paths(model: Layer, optimizer: Optimizer) -> list[str | None]:
    names = {id(p): name for name, p in model.named_parameters()}
    return [names.get(id(p)) for p in optimizer.params]


def _check_same_paths(path: str, own: list, saved: list) -> None:
    if own != saved:
        raise CheckpointError(
            f"{path}: the optimizer given trains the parameters {own}, but the saved one "
            f"trained {saved}"
        )


def _prepare_optimizer(path, opt_meta, arrays, model, optimizer, version
                       ) -> tuple[Optimizer | None, Any, str | None]:
    """The optimizer to load into (``optimizer``, or one rebuilt from the checkpoint), its
    state checked, and None; or, when the saved optimizer's class cannot be found, (None,
    None, why): the model loads without it."""
    if not isinstance(opt_meta, dict) or "state" not in opt_meta:
        raise CheckpointError(f"{path}: corrupt checkpoint: the optimizer section has no state")
    state = _decode(opt_meta["state"], arrays, path, "optimizer", version)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint: the optimizer state is a "
                              f"{type(state).__name__}, not a dict")
    paths = opt_meta.get("param_paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise CheckpointError(f"{path}: corrupt checkpoint: the optimizer's parameter names are "
                              f"{paths!r}, not a list of names")
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise CheckpointError(f"{path}: corrupt checkpoint: the optimizer trains {twice} twice")
    named = dict(model.named_parameters())
    if optimizer is None:
        class_name = opt_meta.get("class")
        cls, why = _find_optimizer_class(class_name, opt_meta.get("class_path"))
        if cls is None:
            return None, None, (
                f"{path}: the model loaded, but not its optimizer: {why}. Import the module "
                f"that defines the class before loading, or build the optimizer yourself and "
                f"pass it: load(path, model=..., optimizer=...)")
        missing = [p for p in paths if p not in named]
        if missing:
            raise CheckpointError(f"{path}: the optimizer's parameters {missing} are not in the "
                                  f"model")
        try:  # the saved groups, by parameter index (their lr and weight_decay load below)
            params = [named[p] for p in paths]
            groups = [{"params": [params[i] for i in group["params"]]}
                      for group in state.get("param_groups") or [{"params": range(len(params))}]]
            optimizer = cls(groups, **_accepted(cls, state["hparams"]))
        except Exception as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild {class_name} from its saved hyperparameters "
                f"({_why(exc)}); pass optimizer= to load its state into one you build"
            ) from exc
    else:
        _check_same_paths(path, _own_paths(model, optimizer), paths)
    _check_optimizer_fits(path, optimizer, state)
    return optimizer, state, None


def class_path(cls: type) -> str:
    """``module:qualname``, what a checkpoint records of its optimizer's class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _find_optimizer_class(name: Any, path: Any) -> tuple[type[Optimizer] | None, str]:
    """The Optimizer class a checkpoint names: by its import path ``module:qualname``
    (importing the module, unless it is ``__main__``, which is looked up as it is), else by
    name among the Optimizer subclasses defined so far; or (None, why not)."""
    why = f"its class {name!r} is not an Optimizer subclass defined in this process"
    if isinstance(path, str) and path.count(":") == 1:
        module_name, qualname = path.split(":")
        where = (f"{path} (defined in the script that saved the checkpoint)"
                 if module_name == "__main__" else path)
        try:
            obj: Any = (sys.modules.get("__main__") if module_name == "__main__"
                        else importlib.import_module(module_name))
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            why = f"its class {where} cannot be found ({_why(exc)})"
        else:
            if isinstance(obj, type) and issubclass(obj, Optimizer):
                return obj, ""
            why = f"{path} is not an Optimizer subclass"
    cls = _optimizer_classes().get(name) if isinstance(name, str) else None
    return cls, why


def _accepted(cls: type, hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` without what ``cls.__init__`` does not take by name (the base class keeps
    ``weight_decay`` among the hyperparameters of a class that has no such argument); all of
    them if it takes ``**kwargs``."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return dict(hparams)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(hparams)
    names = {p.name for p in parameters
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return {k: v for k, v in hparams.items() if k in names}


def _optimizer_classes() -> dict[str, type[Optimizer]]:
    classes: dict[str, type[Optimizer]] = {}
    todo = [Optimizer]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            for name in (sub.__name__, *sub.former_names):
                classes.setdefault(name, sub)
            todo.append(sub)
    return classes


@dataclass
class _Archive:
    """A checkpoint's metadata, format version, the arrays its metadata names (read and
    checked) and the names of the entries it does not name."""

    meta: dict[str, Any]
    version: int
    arrays: dict[str, np.ndarray]
    unused: list[str]


def _some(names: list[str], n: int = 8) -> str:
    shown = ", ".join(repr(name) for name in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _open_regular(path: str):
    """``path`` opened for reading if it is a regular file. Opened without blocking, so a named
    pipe is refused rather than waited on; a folder is an ``IsADirectoryError``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory", path)
        if not stat.S_ISREG(mode):
            kind = ("a named pipe" if stat.S_ISFIFO(mode) else
                    "a character device" if stat.S_ISCHR(mode) else
                    "a block device" if stat.S_ISBLK(mode) else
                    "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise CheckpointError(f"{path}: not a minidl checkpoint: it is {kind}; a "
                                  f"checkpoint is a file that save wrote")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _read(path: str) -> _Archive:
    """The metadata of the checkpoint at ``path`` and the arrays it names, checked, or a
    clear error. Reads nothing the metadata does not name."""
    with _open_regular(path) as f:  # FileNotFoundError and the like speak for themselves
        head = f.read(4)
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            raise CheckpointError(f"{path}: not a minidl checkpoint: the file is empty (0 bytes)")
        if head != _ZIP_MAGIC:
            raise CheckpointError(
                f"{path}: not a minidl checkpoint: a checkpoint is a .npz (zip) archive, but "
                f"this file starts with {head!r}"
            )
        f.seek(0)
        name = None
        try:
            with zipfile.ZipFile(f) as archive:
                entries: dict[str, zipfile.ZipInfo] = {}
                for info in archive.infolist():
                    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    if name in entries:
                        raise CheckpointError(f"{path}: corrupt checkpoint: the archive holds "
                                              f"two entries named {info.filename!r}")
                    entries[name] = info
                name = None
                if META_KEY not in entries:
                    shown = ", ".join(list(entries)[:8]) + (", ..." if len(entries) > 8 else "")
                    raise CheckpointError(
                        f"{path}: a .npz archive, but not a minidl checkpoint: it has no "
                        f"{META_KEY!r} metadata entry (it holds: {shown or 'nothing'})")
                name = META_KEY
                text = _read_entry(path, archive, entries[META_KEY], size, None)
                name = None
                meta, version = _parse_metadata(path, text)
                names = _named_arrays(path, meta, version, entries)
                table = _array_table(path, meta, version, names)
                arrays = {}
                for name in names:
                    arrays[name] = _read_entry(path, archive, entries[name], size, table.get(name))
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                NotImplementedError, RuntimeError) as exc:
            # NotImplementedError: a zip version or compression zipfile cannot read;
            # RuntimeError: an entry flagged as encrypted. In a checkpoint both mean damage.
            where = f" while reading entry {name!r}" if name else ""
            raise CheckpointError(
                f"{path}: truncated or corrupt checkpoint{where}: {type(exc).__name__}: {exc}"
            ) from exc
    unused = [n for n in entries if n != META_KEY and n not in arrays]
    if version >= 2:
        unused += [f"{n} (in the metadata's table of arrays)" for n in meta["arrays"]
                   if n not in arrays]
    return _Archive(meta, version, arrays, unused)


def _parse_metadata(path: str, data: np.ndarray) -> tuple[dict[str, Any], int]:
    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: corrupt checkpoint: {why}")

    if data.dtype != np.uint8 or data.ndim != 1:
        raise corrupt(f"its metadata is a {data.dtype} array of shape {data.shape}, not bytes")
    try:
        meta = json.loads(data.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(f"unreadable metadata ({exc})") from exc
    except RecursionError as exc:  # the C parser's own bound, far deeper than any save writes
        raise corrupt(f"its metadata is nested deeper than a checkpoint holds ({MAX_DEPTH} "
                      f"levels)") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(
            f"{path}: not a minidl checkpoint: its metadata format is {found!r}, expected "
            f"{FORMAT!r}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise corrupt(f"format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer minidl ({meta.get('minidl_version')}, checkpoint format "
            f"{version}); this minidl reads formats {', '.join(map(str, READABLE_VERSIONS))}: "
            f"upgrade minidl"
        )
    if version not in READABLE_VERSIONS:
        raise corrupt(f"format_version is {version!r}")
    if _too_deep(meta, MAX_DEPTH):
        raise corrupt(f"its metadata is nested deeper than a checkpoint holds ({MAX_DEPTH} "
                      f"levels)")
    model_meta = meta.get("model")
    if not isinstance(model_meta, dict) or "keys" not in model_meta:
        raise corrupt("the metadata has no model section")
    keys = model_meta["keys"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise corrupt(f"the model's weight names are {keys!r}, not a list of names")
    return meta, version


def _named_arrays(path: str, meta: dict[str, Any], version: int,
                  entries: Mapping[str, Any]) -> list[str]:
    """The names of the arrays the metadata refers to, each once, each in the archive, each at
    its own path: the metadata decoded without its arrays."""
    collect = _Collect(path, entries)
    for key in meta["model"]["keys"]:
        if f"model/{key}" not in entries:
            raise CheckpointError(f"{path}: corrupt checkpoint: weight {key!r} is missing")
        collect[f"model/{key}"]
    model_meta, opt_meta = meta["model"], meta.get("optimizer")
    sections = [(model_meta.get("rng_state", {}), "model_rng"),
                (opt_meta.get("state") if isinstance(opt_meta, dict) else None, "optimizer"),
                (meta.get("history"), "history"), (meta.get("trainer"), "trainer"),
                (meta.get("extra"), "extra")]
    for value, where in sections:
        _decode(value, collect, path, where, version)
    return list(collect.names)


def _array_table(path: str, meta: dict[str, Any], version: int,
                 names: list[str]) -> dict[str, dict[str, Any]]:
    """The metadata's record of each array in ``names`` (format 2; none in format 1)."""
    if version < 2:
        return {}
    table = meta.get("arrays")
    if not isinstance(table, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint: the metadata has no table of arrays")
    for name in names:
        entry = table.get(name)
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list)
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                        for n in entry["shape"])
                and isinstance(entry.get("crc32"), int)):
            raise CheckpointError(f"{path}: corrupt checkpoint: the metadata's table of arrays "
                                  f"records {name!r} as {entry!r}, not its dtype, shape and "
                                  f"crc32")
    return table


def _read_entry(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int,
                expect: Mapping[str, Any] | None) -> np.ndarray:
    """The array stored in ``info``, read with bounds: an uncompressed entry inside the file
    (``size`` bytes), a ``.npy`` header that describes exactly the entry's size, a dtype
    without pickle, and (format 2) the dtype, shape and CRC-32 of ``expect``."""
    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename

    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: corrupt checkpoint: entry {name!r} {why}")

    if info.compress_type != zipfile.ZIP_STORED:
        raise corrupt(f"is compressed (zip method {info.compress_type}); minidl writes and "
                      f"reads checkpoints uncompressed, so reading one never takes more memory "
                      f"than the file's size")
    if info.file_size != info.compress_size or info.header_offset + info.file_size > size:
        raise corrupt(f"claims {info.file_size} bytes in a file of {size}")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise corrupt(f"is a .npy file of version {version}, which checkpoints do not use")
        if dtype.hasobject or dtype.kind not in "biufc":
            raise corrupt(f"holds an array of dtype {dtype}, which checkpoints do not hold")
        nbytes = math.prod(shape) * dtype.itemsize
        if f.tell() + nbytes != info.file_size:
            raise corrupt(f"says it holds a {dtype} array of shape {shape} ({nbytes} bytes), "
                          f"but it holds {info.file_size - f.tell()} bytes of data")
        if expect is not None and (np.dtype(expect["dtype"]) != dtype
                                   or list(shape) != expect["shape"]):
            raise corrupt(f"holds a {dtype} array of shape {shape}, but the metadata records "
                          f"{expect['dtype']} {tuple(expect['shape'])}")
        buffer = bytearray(nbytes)
        view, done = memoryview(buffer), 0
        while done < nbytes:  # in pieces: never a second copy of a large array in memory
            piece = f.read(min(nbytes - done, 1 << 24))
            if not piece:
                raise corrupt(f"ends after {done} of its {nbytes} bytes of data")
            view[done:done + len(piece)] = piece
            done += len(piece)
        f.read()  # to the end: zipfile checks the entry's CRC
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if expect is not None and _crc32(array) != expect["crc32"]:
        raise corrupt("does not hold the values the metadata records (their CRC-32 differs): "
                      "the file was altered, entries swapped or renamed")
    return array


__all__ = ["Checkpoint", "CheckpointError", "load", "save"]
