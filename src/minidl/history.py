"""``History``: what happened during training, one row per completed epoch.

:func:`minidl.fit` fills these columns (``X`` stands for each metric, e.g. ``accuracy``)::

    epoch        epochs completed, 1, 2, ...
    train_loss   mean of the batch losses over the epoch, weighted by batch size
    train_X      metric X on the predictions made during the epoch (training mode)
    val_loss     loss on validation_data after the epoch (evaluation mode)
    val_X        metric X on validation_data after the epoch
    lr           learning rate the epoch's steps used (its value when the epoch began)
    steps        optimizer steps taken so far (cumulative)
    time         seconds spent training so far (cumulative); evaluation, metrics, callbacks
                 and checkpoints are not counted

``history["train_loss"]`` is a NumPy array. Keras's names are answered too, as aliases read
from the same column (nothing is stored twice): ``history["loss"]`` is ``history["train_loss"]``
and ``history["accuracy"]`` is ``history["train_accuracy"]`` (any ``X`` with a ``train_X``
column); ``val_loss`` and ``val_accuracy`` are the same in both. ``keys()`` lists minidl's names.
``history.history`` is Keras's ``History.history``: a dict of lists under Keras's names
(``{"loss": [...], "accuracy": [...], "val_loss": [...], ...}``, every column but ``epoch``),
and ``history.epoch`` Keras's 0-based epoch indices.

``events`` lists what ended or interrupted training
(a non-finite loss with ``on_nonfinite="stop"``, early stopping), as dicts with an ``"event"``
key. A History converts to a pandas DataFrame and to and from JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: Integer-valued columns (every other column is float).
INT_COLUMNS = ("epoch", "steps")


class History:
    """Per-epoch arrays of a training run, plus the events that stopped it. See the module."""

    def __init__(self, columns: Mapping[str, Iterable] | None = None,
                 events: Iterable[Mapping[str, Any]] | None = None):
        self._columns: dict[str, list] = {}
        for key, values in (columns or {}).items():
            self._columns[str(key)] = [_scalar(v) for v in values]
        lengths = {key: len(col) for key, col in self._columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"History: columns must have equal lengths, got {lengths}")
        self.events: list[dict[str, Any]] = [dict(e) for e in (events or [])]

    # ------------------------------------------------------------------ filling
    def append(self, row: Mapping[str, Any]) -> None:
        """Add one epoch. A new key gets NaN for the earlier epochs; a missing key gets NaN."""
        n = len(self)
        for key in row:
            if key not in self._columns:
                self._columns[key] = [math.nan] * n
        for key, col in self._columns.items():
            col.append(_scalar(row.get(key, math.nan)))

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), []))

    def column_name(self, key: str) -> str | None:
        """The column ``key`` reads: ``key`` itself, or for a Keras name ``X`` (``"loss"``,
        ``"accuracy"``) the column ``train_X``; None if there is neither."""
        if key in self._columns:
            return key
        if isinstance(key, str) and f"train_{key}" in self._columns:
            return f"train_{key}"
        return None

    def __getitem__(self, key: str) -> np.ndarray:
        name = self.column_name(key)
        if name is None:
            raise KeyError(f"History has no column {key!r}; it has {self.keys()} (and, as in "
                           f"Keras, X for each train_X)")
        key, col = name, self._columns[name]
        if key in INT_COLUMNS and not any(isinstance(v, float) for v in col):
            return np.asarray(col, dtype=np.int64)
        return np.asarray(col, dtype=np.float64)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.column_name(key) is not None

    def __iter__(self):
        """The column names, as iterating a dict or a DataFrame gives."""
        return iter(list(self._columns))

    def keys(self) -> list[str]:
        return list(self._columns)

    @property
    def history(self) -> dict[str, list]:
        """Keras's ``History.history``: ``{name: list of per-epoch values}`` under Keras's
        names (``train_X`` becomes ``X``: ``"loss"``, ``"accuracy"``; ``val_X``, ``lr`` and
        the others as they are), every column but ``epoch`` (see :attr:`epoch`). A new dict
        of new lists at each call: changing it leaves the History as it is."""
        out: dict[str, list] = {}
        for key, col in self._columns.items():
            if key == "epoch":
                continue
            short = key[len("train_"):] if key.startswith("train_") else key
            out[key if short in self._columns else short] = list(col)
        return out

    @property
    def epoch(self) -> list[int]:
        """Keras's ``History.epoch``: the 0-based index of each epoch (``history["epoch"]``
        holds minidl's 1-based counts)."""
        return [int(e) - 1 for e in self._columns.get("epoch", [])]

    @property
    def last(self) -> dict[str, Any]:
        """The last epoch's row as a dict (empty if no epoch has completed)."""
        return {key: col[-1] for key, col in self._columns.items() if col}

    @property
    def diverged(self) -> bool:
        """True if training stopped on a non-finite loss (``on_nonfinite="stop"``)."""
        return any(e.get("event") == "nonfinite" for e in self.events)

    # ------------------------------------------------------------------ conversion
    def state_dict(self) -> dict[str, Any]:
        """Columns as arrays and the events: what a checkpoint stores (exactly)."""
        return {"columns": {key: self[key] for key in self._columns},
                "events": [dict(e) for e in self.events]}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> History:
        return cls(state.get("columns", {}), state.get("events", []))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and dicts, JSON-compatible (a non-finite float becomes ``None``)."""
        return {"columns": {key: [_json_float(v) for v in col]
                            for key, col in self._columns.items()},
                "events": [{k: _json_float(v) for k, v in e.items()} for e in self.events]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, owner: str = "History.from_dict") -> History:
        """The History that :meth:`to_dict` described; anything else is a ``ValueError``
        (a dict without ``columns`` is not an empty History: its data would be lost)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{owner}: expected an object with 'columns' and 'events', got "
                             f"{type(data).__name__}")
        unknown = sorted(set(data) - {"columns", "events"})
        if unknown:
            raise ValueError(f"{owner}: unknown keys {unknown}; expected 'columns' and 'events'")
        raw = data.get("columns", {})
        if not isinstance(raw, Mapping):
            raise ValueError(f"{owner}: 'columns' must be an object of lists, got {raw!r}")
        for key, col in raw.items():
            if not isinstance(col, (list, tuple)):
                raise ValueError(f"{owner}: column {key!r} must be a list, got {col!r}")
        events = data.get("events", [])
        if not isinstance(events, (list, tuple)) or not all(isinstance(e, Mapping)
                                                             for e in events):
            raise ValueError(f"{owner}: 'events' must be a list of objects, got {events!r}")
        columns = {key: [math.nan if v is None else v for v in col] for key, col in raw.items()}
        try:
            return cls(columns, events)
        except TypeError as exc:
            raise ValueError(f"{owner}: {exc}") from None

    def to_json(self, indent: int | None = None) -> str:
        """Strict JSON (no NaN literals): ``History.from_json(h.to_json())`` gives ``h`` back."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> History:
        """The History that :meth:`to_json` wrote; text that is not one is a ``ValueError``."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"History.from_json: not JSON: {exc}") from None
        return cls.from_dict(data, owner="History.from_json")

    def to_dataframe(self):
        """A pandas DataFrame, one row per epoch (pandas is needed for this method only)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is in the dev and experiments extras
            raise ImportError("History.to_dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame({key: self[key] for key in self._columns})

    # ------------------------------------------------------------------ printing
    def to_string(self, max_rows: int | None = 20) -> str:
        """A table of the epochs (the first and last ones if there are more than ``max_rows``),
        followed by the events."""
        n = len(self)
        rows = list(range(n))
        if max_rows is not None and n > max_rows:
            head = max_rows // 2
            rows = [*range(head), -1, *range(n - (max_rows - head), n)]
        keys = self.keys()
        cells = [[_format(key, self._columns[key][i]) if i >= 0 else "..." for key in keys]
                 for i in rows]
        widths = [max([len(key)] + [len(r[j]) for r in cells]) for j, key in enumerate(keys)]
        lines = ["  ".join(key.rjust(w) for key, w in zip(keys, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        for event in self.events:
            lines.append(f"[{event.get('event')}] {event.get('message', '')}".rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, columns={self.keys()}, events={len(self.events)})"


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"History values must be numbers, got {value!r}")
    return value


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format(key: str, value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if key == "time":
        return f"{value:.3f}"
    if key == "lr":
        return f"{value:.4g}"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.4f}"
    return f"{value:.3e}"


__all__ = ["History"]
