"""One training run of the protocol, its cache key, and the cache.

A run is a dict of plain values (:func:`spec`): the problem (its settings), the optimizer's
import path, keyword arguments and a hash of its source, the learning rate, the seed, the
epochs, the tuning budget's settings and minidl's version. Its key is the SHA-256 of that dict
as sorted JSON; its result is ``<cache>/<key[:2]>/<key>.json``, written atomically as soon as
the run is back, so an interrupted benchmark resumes where it stopped.

:func:`train` runs in a worker process (or on a Dask worker): it imports the optimizer again by
its path, trains on one BLAS thread (``threads=1``, so every backend computes the same bits),
scores the validation and test splits after every epoch, and returns the per-epoch rows. A run
that diverges (a non-finite loss or prediction, or a non-finite score) is returned with
``diverged`` set, not raised.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from pathlib import Path

import numpy as np

import minidl as md
from minidl.atomic import atomic_write

from . import problems

WHO = "python -m benchmarks optimizer"


def load(path: str) -> type:
    """The class of ``MODULE:CLASS`` (``minidl:Adam``, ``mymodule:MyOpt``, ``file.py:MyOpt``);
    exits with one line naming what is wrong (see :func:`minidl.cli.load_class`)."""
    from minidl.cli import fail, load_class

    cls = load_class(path, WHO)
    if not (isinstance(cls, type) and issubclass(cls, md.Optimizer)):
        fail(f"{WHO}: {path} is {cls!r}, not a minidl.Optimizer subclass")
    return cls


def source_hash(cls: type) -> str:
    """SHA-256 of the class's source (a changed optimizer is a new one), or of its name when
    the source is not to be had."""
    try:
        text = inspect.getsource(cls)
    except (OSError, TypeError):
        text = f"{cls.__module__}.{cls.__qualname__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec(problem: problems.Problem, quick: bool, optimizer: str, kwargs: dict,
         source: str, lr: float, seed: int, budget: dict) -> dict:
    return {"problem": problem.key(), "quick": quick, "optimizer": optimizer,
            "kwargs": kwargs, "source": source, "lr": lr, "seed": seed,
            "epochs": problem.epochs, "budget": budget, "minidl": md.__version__}


def key(run: dict) -> str:
    return hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()


class Cache:
    """Finished runs as JSON files under ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, run: dict) -> Path:
        k = key(run)
        return self.folder / k[:2] / f"{k}.json"

    def get(self, run: dict) -> dict | None:
        """The stored result of ``run``, or None (none yet, or unreadable: redone)."""
        try:
            stored = json.loads(self.path(run).read_text())
        except (OSError, ValueError):
            return None
        return stored if stored.get("run") == run else None

    def put(self, run: dict, result: dict) -> None:
        text = json.dumps({**result, "run": run}, indent=1, allow_nan=True)
        atomic_write(self.path(run), lambda f: f.write(text.encode()), who="cache",
                     make_parents=True)


class _Scores(md.callbacks.Callback):
    """After every epoch: the problem's metric on the validation and test splits."""

    def __init__(self, model, problem, data):
        self.model, self.problem, self.data, self.rows = model, problem, data, []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        d, score = self.data, self.problem.score
        self.rows.append({"epoch": int(logs.get("epoch", epoch + 1)),
                          "train_loss": float(logs.get("train_loss", math.nan)),
                          "val": score(self.model, d.X_val, d.y_val),
                          "test": score(self.model, d.X_test, d.y_test),
                          "elapsed": float(logs.get("time", math.nan))})


def warm_up(cls: type, run: dict, model: md.Layer) -> None:
    """Two steps of the optimizer on zero-gradient copies of the model's parameters, so the
    first epoch's seconds do not include compiling the built-ins' fused kernels (numba, once
    per process and dtype): seconds to target compare training, not start-up."""
    copies = [md.Parameter(p.data.copy()) for p in model.parameters()]
    with np.errstate(all="ignore"):
        try:
            opt = cls(copies, lr=run["lr"], **run["kwargs"])
            opt.step()
            opt.step()
        except Exception:  # the real run reports what is wrong
            pass


def train(run: dict) -> dict:
    """Train one run (see the module docstring); returns ``{"rows", "diverged", "val",
    "test", "seconds"}`` (``val``, ``test``: the last epoch's, NaN when diverged)."""
    problem = problems.get(run["problem"]["name"], run["quick"])
    cls = load(run["optimizer"])
    data = problem.data()
    model = problem.model(run["seed"])
    warm_up(cls, run, model)
    start = time.perf_counter()
    scores = _Scores(model, problem, data)
    diverged = None
    with np.errstate(all="ignore"):
        try:
            opt = cls(model.parameters(), lr=run["lr"], **run["kwargs"])
            md.fit(model, problem.loss(run["seed"]), opt, data.X, data.y, epochs=run["epochs"],
                   batch_size=problem.batch_size, shuffle=problem.shuffle, seed=run["seed"],
                   callbacks=[scores], verbose=0, threads=1)
        except md.TrainingDiverged as exc:
            diverged = f"epoch {exc.epoch}, step {exc.step}"
    rows = scores.rows
    last = rows[-1] if rows else {"val": math.nan, "test": math.nan}
    if diverged is None and not (math.isfinite(last["val"]) and math.isfinite(last["test"])):
        diverged = f"non-finite score at epoch {len(rows)}"
    if diverged is not None:
        last = {"val": math.nan, "test": math.nan}
    return {"rows": rows, "diverged": diverged, "val": last["val"], "test": last["test"],
            "seconds": time.perf_counter() - start}
