"""Where a study's independent runs go: processes on this machine, or a Dask cluster.

Locally, :func:`Parallel` is joblib's (loky processes, ``--jobs`` of them). With ``--scheduler
tcp://HOST:PORT`` or ``--backend dask`` the same tasks go to a Dask distributed cluster through
joblib's Dask backend; each run is seeded and pinned to one BLAS thread, so a run gives the same
numbers wherever it runs, and the results come back in the order of the runs, into the same
files. The workers import the studies: they need the same clone of the repository (its
``experiments`` extra installed) with its root on their ``PYTHONPATH``.

``--backend dask`` without ``--scheduler`` uses the dask configuration's ``scheduler-address``
(``DASK_SCHEDULER_ADDRESS``) when set, else starts a cluster of ``--jobs`` worker processes on
127.0.0.1 for the run. One client per address is kept for the process (a ``run all`` connects
once) and closed at exit, or by :func:`close`.

Optuna searches (:func:`searches`, the ``hyperparams`` study) spread the trials of each study
over the same workers, one task per trial, and stay reproducible: the driver asks trials in
batches of a fixed size with samplers seeded per batch, and tells the values in trial order.
With ``--storage URL`` the studies live in that optuna storage, where every worker opens its
own trial and records on it.
"""

from __future__ import annotations

import atexit
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from minidl.errors import MinidlError

DASK_EXTRA = "pip install 'minidl[dask]'"
CONNECT_TIMEOUT = "10s"


class BackendUnavailableError(MinidlError, RuntimeError):
    """The Dask backend was asked for but cannot be had (not installed, scheduler unreachable)."""


@dataclass(frozen=True)
class Backend:
    """``name``: ``"loky"`` or ``"dask"``; ``scheduler``: the Dask scheduler's address."""

    name: str = "loky"
    scheduler: str | None = None


def backend(args) -> Backend:
    """The backend the flags ``--backend`` and ``--scheduler`` ask for."""
    scheduler = getattr(args, "scheduler", None)
    dask = scheduler is not None or getattr(args, "backend", "loky") == "dask"
    return Backend("dask" if dask else "loky", scheduler)


def require_dask() -> None:
    """Raise :class:`BackendUnavailableError`, saying what to install, unless dask and
    distributed are importable."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--backend dask and --scheduler need dask and distributed ({exc.name} is "
            f"missing): {DASK_EXTRA}") from None


_CLIENTS: dict[str, tuple] = {}


def client(scheduler: str | None = None, workers: int = 1):
    """The process's Dask client for ``scheduler`` (see the module docstring)."""
    key = scheduler or "<config or local>"
    if key in _CLIENTS:
        return _CLIENTS[key][0]
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or dask.config.get("scheduler-address", None)
    cluster = None
    try:
        if address:
            made = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                   processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0")  # loopback only
            made = Client(cluster, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BackendUnavailableError(f"cannot reach the Dask scheduler at {address}: "
                                      f"{exc}") from None
    if not _CLIENTS:
        atexit.register(close)
    _CLIENTS[key] = (made, cluster)
    return made


def close() -> None:
    """Close every client (and local cluster) this process opened."""
    while _CLIENTS:
        _, (made, cluster) = _CLIENTS.popitem()
        made.close()
        if cluster is not None:
            cluster.close()


def Parallel(jobs: int, where: Backend | None = None, batch_size: int | str = "auto"):
    """A ``joblib.Parallel`` returning a generator of results in task order: ``jobs`` loky
    processes, or every worker of the Dask cluster of ``where``. ``batch_size=1`` makes every
    task its own job (joblib's ``"auto"`` groups short tasks, which then run on one worker)."""
    import joblib

    if where is None or where.name == "loky":
        return joblib.Parallel(n_jobs=jobs, return_as="generator", batch_size=batch_size)
    from joblib._dask import DaskDistributedBackend

    class OnTheCluster(DaskDistributedBackend):
        """joblib's Dask backend, except that a cluster of one thread still gets the tasks
        (joblib runs them here, in this process, when the backend says 1)."""

        def effective_n_jobs(self, n_jobs):
            return max(2, super().effective_n_jobs(n_jobs))

    made = client(where.scheduler, jobs)
    return joblib.Parallel(n_jobs=-1, return_as="generator", batch_size=batch_size,
                           backend=OnTheCluster(client=made))



# ---------------------------------------------------------------------------- optuna searches
OPTUNA_EXTRA = "pip install 'minidl[experiments]'"


def require_optuna() -> None:
    """Raise :class:`BackendUnavailableError`, saying what to install, unless optuna is
    importable."""
    try:
        import optuna  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the hyperparameter searches and --storage need optuna ({exc.name} is missing): "
            f"{OPTUNA_EXTRA}") from None


def batch_seed(seed: int, batch: int) -> int:
    """The sampler seed of batch ``batch`` of a search seeded with ``seed``: a function of the
    two alone (numpy's ``SeedSequence``), never of the workers, the timing or the strategy."""
    import numpy as np

    return int(np.random.SeedSequence([seed, batch]).generate_state(1)[0])


def create_studies(storage: str, prefix: str, keys) -> dict[str, str]:
    """One new optuna study (maximising) per key in ``storage``: ``{key: name}``; the names
    carry ``prefix``, the key, this run's time and a random tag, so a run never mixes its
    trials with an earlier (or a concurrent) run's in the same storage."""
    import optuna

    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    names = {}
    for key in keys:
        name = f"minidl-{prefix}-{key.replace('+', '-').replace(' ', '-')}-{stamp}"
        try:
            optuna.create_study(study_name=name, storage=storage, direction="maximize")
        except Exception as exc:  # optuna raises many kinds for a URL it cannot open
            raise BackendUnavailableError(
                f"--storage {storage!r}: optuna cannot create a study there: "
                f"{type(exc).__name__}: {first_line(exc)}") from None
        names[key] = name
    return names


def new_studies(storage: str | None, prefix: str, keys) -> dict[str, str | None]:
    """The studies of a run's searches, ``{key: name}``, made before anything runs, so that a
    missing optuna or an unusable ``storage`` stops the run at once: with a storage, one new
    study per key there (:func:`create_studies`); without, ``{key: None}`` (:func:`searches`
    keeps them in memory)."""
    require_optuna()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study, trial or tell
    return create_studies(storage, prefix, keys) if storage else dict.fromkeys(keys)


def first_line(exc: BaseException) -> str:
    """An exception's message, up to its first line break (SQLAlchemy's add a second line)."""
    return (str(exc).strip().splitlines() or [""])[0]


def _record(trial, out: dict) -> None:
    """Write what a trial's run learnt onto its optuna ``trial``: the per-epoch values
    (``trial.report``, steps 1, 2, ...) and the user attributes (the worker's pid and host
    among them)."""
    for step, value in enumerate(out["steps"], 1):
        trial.report(value, step)
    for key, value in out["attrs"].items():
        trial.set_user_attr(key, value)


_OPENED: dict = {}  # a worker process's storages, by URL: one database engine per URL


def _open_trial(storage: str, name: str, number: int):
    """Trial ``number`` (asked by the driver, still running) of study ``name`` in ``storage``,
    opened by the worker itself from the URL."""
    import optuna

    try:
        if storage not in _OPENED:
            _OPENED[storage] = optuna.storages.RDBStorage(storage)
        opened = _OPENED[storage]
        study = optuna.load_study(study_name=name, storage=opened,  # the sampler is not used
                                  sampler=optuna.samplers.RandomSampler())
        trial_id = opened.get_trial_id_from_study_id_trial_number(
            opened.get_study_id_from_name(name), number)
        return optuna.trial.Trial(study, trial_id)
    except Exception as exc:  # a URL the worker cannot reach, a sqlite file not on its disk
        raise BackendUnavailableError(
            f"--storage {storage!r}: the worker {socket.gethostname()}:{os.getpid()} cannot "
            f"open trial {number} of study {name!r} there: {type(exc).__name__}: "
            f"{first_line(exc)}") from None


def run_trial(objective, key: str, params: dict, objective_args: tuple, storage: str | None,
              name: str | None, number: int) -> dict:
    """One trial, on a worker: ``objective(key, params, *objective_args)`` returns ``{"value":
    the final value, "steps": per-epoch values, "attrs": JSON-able facts}``; the worker's pid
    and host join the attrs. With a ``storage`` the worker opens the trial there itself and
    records the steps and attrs on it (:func:`_record`); the driver tells the value."""
    out = dict(objective(key, params, *objective_args))
    out["attrs"] = {**out.get("attrs", {}), "pid": os.getpid(), "host": socket.gethostname()}
    if storage is not None:
        _record(_open_trial(storage, name or "", number), out)
    return out


def check_studies(storage: str, names: dict[str, str], trials: int, record: Path,
                  batch: int) -> None:
    """Read the studies back from ``storage``: each must hold ``trials`` finished trials, each
    recorded by a worker (its pid); ``record`` (JSON) names the storage, the studies and, per
    study, the workers (host:pid) that ran its trials."""
    import optuna

    workers = {}
    for key, name in names.items():
        done = optuna.load_study(study_name=name, storage=storage).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(done) != trials or any("pid" not in t.user_attrs for t in done):
            raise RuntimeError(f"optuna study {name!r} in {storage!r} holds {len(done)} "
                               f"finished trials, expected {trials}, each run by a worker")
        workers[key] = sorted({f"{t.user_attrs['host']}:{t.user_attrs['pid']}" for t in done})
    from experiments import files

    files.write_json(record, {"storage": storage, "studies": names, "batch": batch,
                              "workers": workers})


def searches(args, names: dict[str, str | None], sampler, suggest, objective,
             objective_args: tuple, *, seed: int, trials: int, batch: int,
             record: Path) -> dict[str, list[dict]]:
    """Optuna searches, one study (maximising) per key of ``names`` (:func:`new_studies`), each
    trial its own task, in processes or on the Dask cluster of ``args``; ``{key: [result per
    trial, in trial order]}``, each result :func:`run_trial`'s with the trial's ``params``.

    Reproducible wherever the trials run. This process, the driver, owns the studies and asks
    their trials in batches of ``batch``, a fixed number (part of the search's definition, not
    of the machine: ``--jobs`` or the cluster's size never change it). Batch ``b`` of study
    ``key`` is asked with a new ``sampler(key, batch_seed(seed, b))`` (TPE with
    ``constant_liar=True``, so a batch's asks differ) and ``suggest(trial)`` (its params), after
    every earlier batch was told: the asks depend on earlier results only, never on timing or
    on which worker finished first. The batches of all the studies run side by side, one round
    of tasks (``len(keys) * batch``) at a time, so every core has work; the driver tells the
    values in trial order after they come back.

    Without ``args.storage`` the studies live in this process, which records each trial's
    steps and attrs itself. With it (an optuna storage URL: ``sqlite:///PATH`` here, any
    database URL optuna supports on a cluster) the studies are the new ones ``names`` names
    there, every worker opens its trial from the URL and records on it (:func:`run_trial`),
    and afterwards every study must hold its ``trials`` (:func:`check_studies`); ``record``
    (JSON) names the studies and the workers of each.
    """
    import optuna
    from joblib import delayed

    storage, keys = args.storage, list(names)
    studies = {key: optuna.load_study(study_name=names[key], storage=storage) if storage else
               optuna.create_study(direction="maximize") for key in keys}
    found: dict[str, list[dict]] = {key: [] for key in keys}
    for first in range(0, trials, batch):
        asked = []
        for key in keys:
            studies[key].sampler = sampler(key, batch_seed(seed, first // batch))
            for _ in range(first, min(first + batch, trials)):
                trial = studies[key].ask()
                trial.set_user_attr("batch", first // batch)
                asked.append((key, trial, suggest(trial)))
        tasks = [delayed(run_trial)(objective, key, params, objective_args, storage,
                                    names[key], trial.number) for key, trial, params in asked]
        done = Parallel(min(args.jobs, len(tasks)), backend(args), batch_size=1)(tasks)
        for (key, trial, params), out in zip(asked, done, strict=True):
            if storage is None:
                _record(trial, out)
            studies[key].tell(trial, out["value"])
            found[key].append({"params": params, **out})
    if storage:
        check_studies(storage, names, trials, record, batch)
    return found


def sampler(kind: str, seed: int, startup: int = 10):
    """A seeded optuna sampler: ``"random"``, or ``"tpe"`` (``startup`` random trials first),
    with ``constant_liar=True``: the trials of a batch, asked before any of them is told, count
    as bad ones while they run, so a batch's asks spread out instead of landing together."""
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)
