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
| 784-128-128-10, batch 32, 30,000 (small) | 0.59 / 0.57 | 3.83 / 0.99 |
| 784-512-512-10, batch 64, 20,000 (large) | 0.80 / 1.06 | 3.38 / 1.73 |
| 784-1024-1024-10, batch 256, 20,000 (large) | 1.41 / 2.42 | 4.80 / 3.90 |
| the Keras CNN, batch 128, 3,000 (large) | 3.39 / 4.58 | 16.38 / 7.49 |

So ``threads="auto"`` (the default of :func:`minidl.fit` and :class:`minidl.Trainer`) trains a
*small* model on one BLAS thread, where that is not slower even on an idle machine, and leaves
larger ones to the BLAS's own threads. Small means: rows per batch times the model's parameter
values under :data:`SMALL_WORK`, and no :class:`~minidl.Conv2D` in the model (a convolution
uses each weight once per output position, so its parameters understate its work by that
factor; the Keras CNN trains faster on 2 threads on an idle machine), a rule that depends on
the model and the batch alone, never on
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
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from .validation import check_int

#: Rows per batch times parameter values under which ``threads="auto"`` trains on one BLAS
#: thread. On 2 idle cores, an epoch of MNIST-shaped rows on one thread took, against two:
#: 0.52x at 3.8e6 (784-128-128-10, batch 32), 0.96x at 7.6e6 (the same at batch 64), 1.03x at
#: 1.3e7 (784-128-10, batch 128), 1.24x at 1.3e7 (784-256-10, batch 64) and 1.31x at 2.6e7
#: (784-256-10, batch 128).
SMALL_WORK = 10_000_000

#: Environment variables by which a user chooses the BLAS's threads before NumPy starts.
CHOSEN_BY = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_noticed = False


def check_threads(who: str, threads) -> int | str | None:
    """``threads`` as given to :func:`minidl.fit`: ``"auto"``, None or a count >= 1; a count
    needs threadpoolctl (an ImportError naming the extra, before any training)."""
    if threads is None or (isinstance(threads, str) and threads == "auto"):
        return threads
    says = f"{who}: threads must be 'auto', None or a number of threads >= 1, got {threads!r}"
    if isinstance(threads, str):
        raise ValueError(says)
    try:
        count = check_int(who, "threads", threads, low=1)
    except (TypeError, ValueError) as exc:  # (0, 2.0, True, [1]): say every accepted value
        raise type(exc)(says) from None
    _threadpoolctl(who, count)
    return count


def choose(threads: int | str | None, n_params: int, batch_rows: int,
           convolutional: bool = False) -> int | None:
    """The BLAS thread limit for a loop over batches of ``batch_rows`` rows through a model of
    ``n_params`` parameter values; None leaves the BLAS as it is (see the module docstring).
    A ``convolutional`` model (one with a :class:`~minidl.Conv2D`) is never small: its weights
    are used once per output position, so its parameter count says little of its work."""
    if threads != "auto":
        return threads  # type: ignore[return-value]  # None or a count
    if (convolutional or batch_rows * n_params >= SMALL_WORK
            or any(os.environ.get(v) for v in CHOSEN_BY)):
        return None
    return 1


def _threadpoolctl(who: str, threads: int):
    """threadpoolctl's ThreadpoolController, or an ImportError saying how to install it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError as exc:
        raise ImportError(f"{who}: threads={threads} needs threadpoolctl to limit the "
                          f"BLAS's threads: pip install -e '.[fast]' (or set "
                          f"OPENBLAS_NUM_THREADS before starting Python)") from exc
    return ThreadpoolController


#: The limits in force: how many blocks are inside :func:`limited`, and each BLAS library's
#: count from before the first of them (restored when the last one leaves).
_lock = threading.Lock()
_inside = 0
_before: list[tuple[Any, int]] = []


@contextlib.contextmanager
def limited(threads: int | None, *, asked: bool = True, who: str = "fit") -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS threads in each BLAS library loaded (None:
    as they are). A limit never raises a library's count: a lower one set around the block
    stays. Without threadpoolctl a count the user ``asked`` for raises an ``ImportError``; one
    that ``"auto"`` chose is said once (a :class:`~minidl.optim.fused.PerformanceNotice`) and
    skipped.

    Blocks may overlap in several threads (two ``fit`` calls in a thread pool): the counts
    from before the first block come back only when the last block leaves, so the end of one
    run does not lift the limit under another."""
    global _inside
    if threads is None:
        yield
        return
    try:
        controller_class = _threadpoolctl(who, threads)
    except ImportError:
        if asked:
            raise
        _notice()
        yield
        return
    with _lock:
        for lib in controller_class().select(user_api="blas").lib_controllers:
            if lib.num_threads > threads:
                _before.append((lib, lib.num_threads))
                lib.set_num_threads(threads)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                while _before:
                    lib, count = _before.pop()
                    lib.set_num_threads(count)


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
