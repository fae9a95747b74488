"""Checkpoints: :func:`save` and :func:`load`, one ``.npz`` file with JSON metadata, no pickle.

File format (version 1)
-----------------------
A NumPy ``.npz`` archive (a zip of ``.npy`` arrays, read with ``allow_pickle=False``) holding:

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
model path of each of its parameters, and every JSON value of the History, trainer state and
``extra``. Inside it an array appears as ``{"__ndarray__": "<npz key>"}`` and a non-finite
float as ``{"__float__": "nan"}``, so the JSON is strict.

Safety
------
:func:`save` writes to a temporary file in the target's folder, flushes and fsyncs it, then
``os.replace``-s it over the target: a crash at any moment leaves either the previous checkpoint
or the new one, never a mix (a stray ``*.tmp`` file at worst). :func:`load` reads everything
eagerly and turns a truncated, corrupt or foreign file into a :class:`CheckpointError` that
names the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import os
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

FORMAT = "minidl-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__minidl__"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Checkpoint:
    """What :func:`load` returns. ``extra`` is empty if none was saved; ``optimizer``,
    ``history`` and ``trainer_state`` are None if they were not saved."""

    path: str
    model: Layer
    optimizer: Optimizer | None = None
    history: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    trainer_state: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

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
    ``trainer_state`` hold JSON values and NumPy arrays. ``path`` is used as given (no
    ``.npz`` is appended).

    Deprecated: ``trainer=`` (a Trainer, or its state dict); pass
    ``trainer_state=trainer.state_dict()``, or call ``trainer.save(path)``."""
    from . import __version__  # defined by minidl/__init__.py, which imports this module

    path = os.fspath(path)
    if not isinstance(model, Layer):
        raise TypeError(f"save: model must be a Layer, got {model!r}")
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


def _encode(value: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-compatible copy of ``value``; arrays go to ``arrays`` under ``prefix/...``."""
    if isinstance(value, np.ndarray):
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
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: cannot store {prefix!r}: dict keys must be str or int, "
                                f"got {k!r}")
            out[str(k)] = _encode(v, f"{prefix}/{k}", arrays)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{prefix}/{i}", arrays) for i, v in enumerate(value)]
    raise TypeError(f"save: cannot store {prefix!r}: {type(value).__name__} is neither a JSON "
                    f"value nor a NumPy array")


def _decode(value: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            key = value["__ndarray__"]
            if key not in arrays:
                raise CheckpointError(f"{path}: corrupt checkpoint: the metadata refers to an "
                                      f"array {key!r} that the archive does not hold")
            return arrays[key]
        if set(value) == {"__float__"}:
            try:
                return float(value["__float__"])
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{path}: corrupt checkpoint: {value!r} is not a "
                                      f"number") from exc
        return {k: _decode(v, arrays, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, path) for v in value]
    return value


# ---------------------------------------------------------------------- load
def load(path, *, model: Layer | None = None, optimizer: Optimizer | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    The model is rebuilt from its saved architecture (:func:`~minidl.build_layer`: every
    built-in layer class, and user classes once their module is imported), or, with
    ``model=``, the weights go into the model given. The same holds for the optimizer
    (``optimizer=``). Random state is restored too.

    Everything is read and checked before anything is written: when the checkpoint does not fit
    the ``model`` or ``optimizer`` given, they are left exactly as they were. Raises
    :class:`CheckpointError` (naming the file and what is wrong) for a file that is not a
    readable checkpoint or does not fit, and ``FileNotFoundError`` for a missing one.
    """
    return _prepare_load(path, model, optimizer).commit()


def prepare_load(source, model: Layer, optimizer: Optimizer, *, who: str = "load") -> PendingLoad:
    """What putting ``source`` (a checkpoint path, or a :class:`Checkpoint` already loaded)
    into ``model`` and ``optimizer`` would write, read and checked, writing nothing yet: call
    ``commit()`` on the result to write it. The one way in for both kinds of source."""
    if isinstance(source, (str, os.PathLike)):
        return _prepare_load(source, model, optimizer)
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
                          trainer_state=self.trainer_state, metadata=self.metadata)


def _prepare_load(path, model: Layer | None, optimizer: Optimizer | None) -> PendingLoad:
    """Read the checkpoint at ``path`` and check it against ``model`` and ``optimizer`` (or
    rebuild them), writing nothing into the objects given."""
    path = os.fspath(path)
    meta, arrays = _read(path)
    model_meta = meta.get("model")
    if not isinstance(model_meta, dict) or "keys" not in model_meta:
        raise CheckpointError(f"{path}: corrupt checkpoint: the metadata has no model section")
    keys = model_meta["keys"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{path}: corrupt checkpoint: the model's weight names are "
                              f"{keys!r}, not a list of names")
    state = {}
    for key in keys:
        name = f"model/{key}"
        if name not in arrays:
            raise CheckpointError(f"{path}: corrupt checkpoint: weight {key!r} is missing")
        state[key] = arrays[name]
    rng_state = _decode(model_meta.get("rng_state", {}), arrays, path)

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
    optimizer_state = None
    if opt_meta is None:
        optimizer = None
    else:
        optimizer, optimizer_state = _prepare_optimizer(path, opt_meta, arrays, model, optimizer)

    history = None
    if meta.get("history") is not None:
        try:
            history = History.from_state_dict(_decode(meta["history"], arrays, path))
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt checkpoint: its History cannot be rebuilt: "
                                  f"{_why(exc)}") from exc
    trainer_state = None
    if meta.get("trainer") is not None:
        trainer_state = _decode(meta["trainer"], arrays, path)
        if not isinstance(trainer_state, dict):
            raise CheckpointError(f"{path}: corrupt checkpoint: the training state is a "
                                  f"{type(trainer_state).__name__}, not a dict")
    extra = {} if meta.get("extra") is None else _decode(meta["extra"], arrays, path)
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint: extra is a {type(extra).__name__}, "
                              f"not a dict")
    return PendingLoad(path, model, optimizer, state, rng_state, optimizer_state, history, extra,
                    trainer_state, meta)


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


def _prepare_optimizer(path, opt_meta, arrays, model, optimizer) -> tuple[Optimizer, Any]:
    if not isinstance(opt_meta, dict) or "state" not in opt_meta:
        raise CheckpointError(f"{path}: corrupt checkpoint: the optimizer section has no state")
    state = _decode(opt_meta["state"], arrays, path)
    paths = opt_meta.get("param_paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise CheckpointError(f"{path}: corrupt checkpoint: the optimizer's parameter names are "
                              f"{paths!r}, not a list of names")
    named = dict(model.named_parameters())
    if optimizer is None:
        class_name = opt_meta.get("class")
        cls = _optimizer_classes().get(class_name) if isinstance(class_name, str) else None
        if cls is None:
            raise CheckpointError(
                f"{path}: unknown optimizer class {class_name!r}: import the module that "
                f"defines it, or pass optimizer= to load its state into one you build"
            )
        missing = [p for p in paths if p not in named]
        if missing:
            raise CheckpointError(f"{path}: the optimizer's parameters {missing} are not in the "
                                  f"model")
        try:  # the saved groups, by parameter index (their lr and weight_decay load below)
            params = [named[p] for p in paths]
            groups = [{"params": [params[i] for i in group["params"]]}
                      for group in state.get("param_groups") or [{"params": range(len(params))}]]
            optimizer = cls(groups, **state["hparams"])
        except Exception as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild {class_name} from its saved hyperparameters "
                f"({_why(exc)}); pass optimizer= to load its state into one you build"
            ) from exc
    else:
        _check_same_paths(path, _own_paths(model, optimizer), paths)
    _check_optimizer_fits(path, optimizer, state)
    return optimizer, state


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


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and every array of the checkpoint at ``path``, or a clear error."""
    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError speak for themselves
        head = f.read(4)
        size = f.seek(0, os.SEEK_END)
    if size == 0:
        raise CheckpointError(f"{path}: not a minidl checkpoint: the file is empty (0 bytes)")
    if head != _ZIP_MAGIC:
        raise CheckpointError(
            f"{path}: not a minidl checkpoint: a checkpoint is a .npz (zip) archive, but this "
            f"file starts with {head!r}"
        )
    arrays: dict[str, np.ndarray] = {}
    name = None
    try:
        # np.load is given an open file, not the path: on a damaged archive np.load raises
        # without closing a file it opened itself (a ResourceWarning, a leaked descriptor)
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            names = list(npz.files)
            if META_KEY not in names:
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                problem = (f"a .npz archive, but not a minidl checkpoint: it has no "
                           f"{META_KEY!r} metadata entry (it holds: {shown or 'nothing'})")
            else:
                problem = None
                for name in names:
                    arrays[name] = npz[name]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError) as exc:
        # NotImplementedError: a zip version or compression zipfile cannot read; RuntimeError:
        # an entry flagged as encrypted. In a checkpoint both mean damaged bytes.
        where = f" while reading entry {name!r}" if name else ""
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint{where}: {type(exc).__name__}: {exc}"
        ) from exc
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint: unreadable metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(
            f"{path}: not a minidl checkpoint: its metadata format is {found!r}, expected "
            f"{FORMAT!r}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: corrupt checkpoint: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer minidl ({meta.get('minidl_version')}, checkpoint format "
            f"{version}); this minidl reads format {FORMAT_VERSION}: upgrade minidl"
        )
    if version < 1:
        raise CheckpointError(f"{path}: corrupt checkpoint: format_version is {version!r}")
    return meta, arrays


__all__ = ["Checkpoint", "CheckpointError", "load", "save"]
