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
from dataclasses import dataclass

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
                                   processes=True, host="127.0.0.1", dashboard_address=None)
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
    with joblib.parallel_config(backend="dask", client=client(where.scheduler, jobs)):
        return joblib.Parallel(n_jobs=-1, return_as="generator")  # the backend is fixed here
