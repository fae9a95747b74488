"""Where a study's independent runs go: processes on this machine, or a Dask cluster.

Locally, :func:`Parallel` is joblib's (loky processes, ``--jobs`` of them). With ``--scheduler
tcp://HOST:PORT`` or ``--backend dask`` the same tasks go to a Dask distributed cluster through
joblib's Dask backend; each run is seeded and pinned to one BLAS thread, so a run gives the same
numbers wherever it runs, and the results come back in the order of the runs, into the same
files. The workers need the same minidl (with the ``experiments`` extra) installed.

``--backend dask`` without ``--scheduler`` uses the dask configuration's ``scheduler-address``
(``DASK_SCHEDULER_ADDRESS``) when set, else starts a cluster of ``--jobs`` worker processes on
127.0.0.1 for the run. One client per address is kept for the process (a ``run all`` connects
once) and closed at exit, or by :func:`close`.
"""

from __future__ import annotations

import atexit
import json
import os
import time
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


def Parallel(jobs: int, where: Backend | None = None):
    """A ``joblib.Parallel`` returning a generator of results in task order: ``jobs`` loky
    processes, or every worker of the Dask cluster of ``where``."""
    import joblib

    if where is None or where.name == "loky":
        return joblib.Parallel(n_jobs=jobs, return_as="generator")
    from joblib._dask import DaskDistributedBackend

    class OnTheCluster(DaskDistributedBackend):
        """joblib's Dask backend, except that a cluster of one thread still gets the tasks
        (joblib runs them here, in this process, when the backend says 1)."""

        def effective_n_jobs(self, n_jobs):
            return max(2, super().effective_n_jobs(n_jobs))

    made = client(where.scheduler, jobs)
    return joblib.Parallel(n_jobs=-1, return_as="generator", backend=OnTheCluster(client=made))


# ---------------------------------------------------------------------------- optuna storage
def create_studies(storage: str, prefix: str, keys) -> dict[str, str]:
    """One new optuna study (maximising) per key in ``storage``, for workers to load: ``{key:
    name}``; the names carry ``prefix``, the key and this run's time and process id, so a rerun
    never mixes its trials with an earlier run's."""
    import optuna

    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    names = {}
    for key in keys:
        name = f"minidl-{prefix}-{key.replace('+', '-').replace(' ', '-')}-{stamp}"
        try:
            optuna.create_study(study_name=name, storage=storage, direction="maximize")
        except Exception as exc:  # optuna raises many kinds for a URL it cannot open
            raise BackendUnavailableError(f"--storage {storage!r}: optuna cannot create a "
                                          f"study there: {type(exc).__name__}: {exc}") from None
        names[key] = name
    return names


def study(storage: str | None, name: str | None, sampler):
    """The study ``name`` of ``storage`` (made by :func:`create_studies`) with ``sampler``, or
    without a storage a new one in memory (maximising)."""
    import optuna

    if storage is None:
        return optuna.create_study(direction="maximize", sampler=sampler)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler)


def check_studies(storage: str, names: dict[str, str], trials: int, record: Path) -> None:
    """Read the studies back from ``storage``: each must hold ``trials`` finished trials;
    ``record`` (JSON) names the storage and the studies."""
    import optuna

    for name in names.values():
        done = optuna.load_study(study_name=name, storage=storage).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(done) != trials:
            raise RuntimeError(f"optuna study {name!r} in {storage!r} holds {len(done)} "
                               f"finished trials, expected {trials}")
    record.write_text(json.dumps({"storage": storage, "studies": names}, indent=2) + "\n")


def searches(args, search, keys, search_args: tuple, prefix: str, trials: int,
             record: Path) -> list:
    """``search(key, *search_args, storage, study_name)`` for every key, side by side (each
    search's trials in order, so its results do not depend on where it ran), in processes or on
    the Dask cluster of ``args``. With ``args.storage`` each search's optuna study is created
    in that storage first (:func:`create_studies`), the worker running the search loads it from
    there, and afterwards every study must hold its ``trials``; ``record`` names them."""
    from joblib import delayed

    names = create_studies(args.storage, prefix, keys) if args.storage else {}
    tasks = [delayed(search)(key, *search_args, args.storage, names.get(key)) for key in keys]
    results = list(Parallel(min(args.jobs, len(tasks)), backend(args))(tasks))
    if args.storage:
        check_studies(args.storage, names, trials, record)
    return results
