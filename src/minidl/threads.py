"""How many BLAS threads a training loop runs on (``fit(threads=...)``).

NumPy hands its matrix products to a BLAS (OpenBLAS, in NumPy's wheels), which starts one
thread per core and splits each product among them. Training a small model alternates small
products with NumPy's single-threaded element-wise work; between products the BLAS threads
spin, waiting for the next one. On an idle machine that costs little, and for a small model
one thread is already as fast or faster; on a machine whose cores are busy with other work the
spinning threads and the other work take turns, and an epoch can take several times as long.
Measured on 2 cores, one epoch of :func:`minidl.fit` on MNIST-shaped rows, seconds on the
BLAS's 2 threads / on one (``python -m benchmarks threads``; ``--busy 2`` keeps both cores busy
with two other processes):

| model, batch, rows | idle machine | busy machine |
| --- | --- | --- |
| 784-128-128-10, batch 32, 30,000 (small) | 1.30 / 0.93 | 4.79 / 1.76 |
| 784-1024-1024-10, batch 256, 20,000 (large) | 1.95 / 2.78 | 6.47 / 4.50 |
| the Keras CNN, batch 128, 3,000 (large) | 5.86 / 7.17 | 24.07 / 12.97 |

So ``threads="auto"`` (the default of :func:`minidl.fit` and :class:`minidl.Trainer`) trains a
*small* model on one BLAS thread, where that is not slower even on an idle machine, and leaves
larger ones to the BLAS's own threads. Small means: rows per batch times the model's parameter
values under :data:`SMALL_WORK`, a rule that depends on the model and the batch alone, never on
the machine's load, because the number of threads can change the last bits of a product and a
run must repeat bit for bit. It acts only where nobody chose: with ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, or a limit already in force (threadpoolctl's
``threadpool_limits`` around ``fit``), it never raises the thread count. ``threads=N`` runs the
loop on N BLAS threads (on a busy machine, ``threads=1`` is the one to try for any model);
``threads=None`` leaves the BLAS as it is. The limit holds for the training loop only (and the
validation inside it), and is lifted when ``fit`` returns, even by an exception.

Limits are set through threadpoolctl (the ``fast`` extra: ``pip install -e ".[fast]"``); without
it ``"auto"`` leaves the BLAS alone and says once that it could not help, and ``threads=N``
raises.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

from .validation import check_int

#: Rows per batch times parameter values under which ``threads="auto"`` trains on one BLAS
#: thread. On 2 idle cores, one thread was faster up to about 5e6 (784-128-128-10 at batch 32,
#: 1.4x), even at about 3e7, and slower from about 4e7 (784-512-512-10 at batch 64, 1.2x).
SMALL_WORK = 30_000_000

#: Environment variables by which a user chooses the BLAS's threads before NumPy starts.
CHOSEN_BY = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_noticed = False


def check_threads(who: str, threads) -> int | str | None:
    """``threads`` as given to :func:`minidl.fit`: ``"auto"``, None or a count >= 1."""
    if threads is None or (isinstance(threads, str) and threads == "auto"):
        return threads
    if isinstance(threads, str):
        raise ValueError(f"{who}: threads must be 'auto', None or a number of threads >= 1, "
                         f"got {threads!r}")
    return check_int(who, "threads", threads, low=1)


def choose(threads: int | str | None, n_params: int, batch_rows: int) -> int | None:
    """The BLAS thread limit for a loop over batches of ``batch_rows`` rows through a model of
    ``n_params`` parameter values; None leaves the BLAS as it is (see the module docstring)."""
    if threads != "auto":
        return threads  # type: ignore[return-value]  # None or a count
    if batch_rows * n_params >= SMALL_WORK or any(os.environ.get(v) for v in CHOSEN_BY):
        return None
    return 1


@contextlib.contextmanager
def limited(threads: int | None, *, asked: bool = True, who: str = "fit") -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS threads (None: as the BLAS is). A limit
    never raises the count in force: a lower one set around the block stays. Without
    threadpoolctl a count the user ``asked`` for raises an ``ImportError``; one that
    ``"auto"`` chose is said once (a :class:`~minidl.optim.fused.PerformanceNotice`) and
    skipped."""
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError as exc:
        if asked:
            raise ImportError(f"{who}: threads={threads} needs threadpoolctl to limit the "
                              f"BLAS's threads: pip install -e '.[fast]' (or set "
                              f"OPENBLAS_NUM_THREADS before starting Python)") from exc
        _notice()
        yield
        return
    controller = ThreadpoolController().select(user_api="blas")
    if min((lib["num_threads"] for lib in controller.info()), default=0) <= threads:
        yield
        return
    with controller.limit(limits=threads):
        yield


def _notice() -> None:
    global _noticed
    if not _noticed:
        _noticed = True
        from .optim.fused import PerformanceNotice

        warnings.warn("this model is small enough to train faster on one BLAS thread (much "
                      "faster on a busy machine), but threadpoolctl is not installed, so the "
                      "BLAS keeps its threads: pip install -e '.[fast]', or set "
                      "OPENBLAS_NUM_THREADS=1 before starting Python", PerformanceNotice,
                      stacklevel=_first_outside())


def _first_outside() -> int:
    """The ``stacklevel`` of the nearest caller outside minidl (and contextlib): the line of
    the user's that called ``fit``, however deep inside minidl the warning is raised."""
    inside = (os.path.dirname(__file__) + os.sep, contextlib.__file__ or "")
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level
