"""Checkpoints: :func:`save` and :func:`load`, one ``.npz`` file with JSON metadata, no pickle.

File format (version 1)
-----------------------
A NumPy ``.npz`` archive (a zip of ``.npy`` arrays, read with ``allow_pickle=False``) holding:

=============================  ==================================================================
``__minidl__``                 UTF-8 JSON metadata, as a uint8 array (below)
``model/<path>``               every parameter and buffer, by its ``state_dict`` path
``optimizer/state/<i>/<name>`` the optimizer's per-parameter arrays, by parameter index
``history/columns/<name>``     the History columns
``trainer/...``, ``extra/...``  arrays inside the trainer state and the ``extra`` dict
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

import contextlib
import json
import math
import os
import secrets
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .containers import build_layer, layer_config
from .errors import CheckpointError, StateDictError
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
         extra: dict[str, Any] | None = None, *, trainer=None) -> None:
    """Write ``model`` (weights, buffers, random state, architecture), and optionally the
    ``optimizer`` state, a ``history``, an ``extra`` dict (JSON values and NumPy arrays) and a
    ``trainer``'s state (a :class:`~minidl.Trainer`: what ``fit(..., resume=)`` needs), to
    ``path``, atomically. ``path`` is used as given (no ``.npz`` is appended)."""
    from . import __version__

    path = os.fspath(path)
    if not isinstance(model, Layer):
        raise TypeError(f"save: model must be a Layer, got {model!r}")
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
    if trainer is not None:
        trainer_state = trainer.state_dict() if hasattr(trainer, "state_dict") else trainer
        meta["trainer"] = _encode(trainer_state, "trainer", arrays)
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"save: extra must be a dict, got {type(extra).__name__}")
        meta["extra"] = _encode(extra, "extra", arrays)
    text = json.dumps(meta, allow_nan=False)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_savez(path, arrays)


def _param_paths(model: Layer, optimizer: Optimizer) -> list[str]:
    names = {id(p): name for name, p in model.named_parameters()}
    missing = [i for i, p in enumerate(optimizer.params) if id(p) not in names]
    if missing:
        raise ValueError(
            f"save: the optimizer's parameters {missing} are not parameters of the model; save "
            f"the model the optimizer trains"
        )
    return [names[id(p)] for p in optimizer.params]


def _atomic_savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


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
            return float(value["__float__"])
        return {k: _decode(v, arrays, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, path) for v in value]
    return value


# ---------------------------------------------------------------------- load
def load(path, *, model: Layer | None = None, optimizer: Optimizer | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    The model is rebuilt from its saved architecture (any layer class in
    ``minidl.layer.LAYER_REGISTRY``: every built-in one, and user classes once their module is
    imported), or, with ``model=``, the weights go into the model given. The same holds for the
    optimizer (``optimizer=``). Random state is restored too. Raises
    :class:`CheckpointError` for a file that is not a readable checkpoint, and
    ``FileNotFoundError`` for a missing one.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    model_meta = meta.get("model")
    if not isinstance(model_meta, dict) or "keys" not in model_meta:
        raise CheckpointError(f"{path}: corrupt checkpoint: the metadata has no model section")
    state = {}
    for key in model_meta["keys"]:
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
        except ValueError as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild the model: {exc}; or pass model= to load into a model "
                f"you build"
            ) from exc
    try:
        model.load_state_dict(state)
        model.set_rng_state(rng_state)
    except StateDictError as exc:
        raise CheckpointError(f"{path}: the checkpoint does not fit the model: {exc}") from exc

    opt_meta = meta.get("optimizer")
    if opt_meta is None:
        optimizer = None
    else:
        optimizer = _load_optimizer(path, opt_meta, arrays, model, optimizer)

    history = None
    if meta.get("history") is not None:
        from .history import History

        history = History.from_state_dict(_decode(meta["history"], arrays, path))
    trainer_state = None
    if meta.get("trainer") is not None:
        trainer_state = _decode(meta["trainer"], arrays, path)
    extra = {} if meta.get("extra") is None else _decode(meta["extra"], arrays, path)
    return Checkpoint(path=path, model=model, optimizer=optimizer, history=history, extra=extra,
                      trainer_state=trainer_state, metadata=meta)


def _load_optimizer(path, opt_meta, arrays, model, optimizer) -> Optimizer:
    state = _decode(opt_meta["state"], arrays, path)
    paths = opt_meta["param_paths"]
    named = dict(model.named_parameters())
    if optimizer is None:
        classes = _optimizer_classes()
        cls = classes.get(opt_meta["class"])
        if cls is None:
            raise CheckpointError(
                f"{path}: unknown optimizer class {opt_meta['class']!r}: import the module that "
                f"defines it, or pass optimizer= to load its state into one you build"
            )
        missing = [p for p in paths if p not in named]
        if missing:
            raise CheckpointError(f"{path}: the optimizer's parameters {missing} are not in the "
                                  f"model")
        try:
            optimizer = cls([named[p] for p in paths], **state["hparams"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild {opt_meta['class']} from its saved hyperparameters "
                f"({exc}); pass optimizer= to load its state into one you build"
            ) from exc
    else:
        names = {id(p): name for name, p in named.items()}
        own = [names.get(id(p)) for p in optimizer.params]
        if own != paths:
            raise CheckpointError(
                f"{path}: the optimizer given trains the parameters {own}, but the saved one "
                f"trained {paths}"
            )
    try:
        optimizer.load_state_dict(state)
    except StateDictError as exc:
        raise CheckpointError(f"{path}: the optimizer state does not fit: {exc}") from exc
    return optimizer


def _optimizer_classes() -> dict[str, type[Optimizer]]:
    classes: dict[str, type[Optimizer]] = {}
    todo = [Optimizer]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            classes.setdefault(sub.__name__, sub)
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
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if META_KEY not in names:
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                problem = (f"a .npz archive, but not a minidl checkpoint: it has no "
                           f"{META_KEY!r} metadata entry (it holds: {shown or 'nothing'})")
            else:
                problem = None
                for name in names:
                    arrays[name] = npz[name]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
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
