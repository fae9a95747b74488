"""fit(threads=...): the BLAS thread limit around the training loop (minidl.threads)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import minidl as md
from minidl import threads
from minidl.optim.fused import PerformanceNotice

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads() -> dict[str, int]:
    return {info["filepath"]: info["num_threads"]
            for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}


@pytest.fixture
def blas(monkeypatch):
    """The BLAS libraries loaded now and their thread counts, with no thread variable set; the
    tests need a BLAS that runs on 2 threads or more to see a limit."""
    for name in threads.CHOSEN_BY:
        monkeypatch.delenv(name, raising=False)
    before = blas_threads()
    if not before or min(before.values()) < 2:
        pytest.skip("the BLAS runs on one thread here: no limit to see")
    return before


class Spy(md.callbacks.Callback):
    """The BLAS thread counts seen inside the loop, at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.seen: list[dict[str, int]] = []

    def on_epoch_end(self, epoch, logs):
        self.seen.append(blas_threads())


def train(width: int = 4, batch: int = 8, **kwargs) -> Spy:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 6))
    y = X[:, :1] * 0.5
    model = md.Sequential(md.Dense(6, width, rng=0), md.Tanh(), md.Dense(width, 1, rng=1))
    spy = Spy()
    md.fit(model, md.MSE(), md.SGD(model.parameters(), lr=0.01), X, y, epochs=2,
           batch_size=batch, verbose=0, callbacks=[spy, *kwargs.pop("callbacks", [])],
           **kwargs)
    return spy


def seen_on(spy: Spy, before: dict[str, int]) -> set[int]:
    """The thread counts inside the loop of the libraries loaded before it."""
    return {counts[path] for counts in spy.seen for path in before}


def test_auto_trains_a_small_model_on_one_thread_and_gives_the_threads_back(blas):
    assert seen_on(train(), blas) == {1}
    assert blas_threads().items() >= blas.items()


def test_auto_leaves_a_large_model_to_the_blas(blas, monkeypatch):
    monkeypatch.setattr(threads, "SMALL_WORK", 8 * 33)  # batch 8 x 33 parameter values
    assert threads.choose("auto", 33, 8) is None and threads.choose("auto", 33, 7) == 1
    assert seen_on(train(), blas) == set(blas.values())


@pytest.mark.parametrize("name", threads.CHOSEN_BY)
def test_auto_leaves_alone_a_count_the_user_chose(blas, monkeypatch, name):
    monkeypatch.setenv(name, "2")
    assert seen_on(train(), blas) == set(blas.values())


def test_a_count_is_a_limit_that_never_raises_one_in_force(blas):
    assert seen_on(train(threads=1), blas) == {1}
    assert seen_on(train(threads=None), blas) == set(blas.values())
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert seen_on(train(threads=max(blas.values()) + 1), blas) == {1}
        assert seen_on(train(threads=None), blas) == {1}
    assert blas_threads().items() >= blas.items()


def test_the_threads_come_back_after_an_exception(blas):
    class Boom(md.callbacks.Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(threads=1, callbacks=[Boom()])
    assert blas_threads().items() >= blas.items()


def test_the_threads_do_not_change_what_is_computed_beyond_the_blas():
    """One thread or the BLAS's own: the same run on a model whose products are exact."""
    a, b = (md.Sequential(md.Dense(6, 4, rng=0)) for _ in range(2))
    X = np.arange(48.0).reshape(8, 6) / 8
    y = np.ones((8, 4))
    for model, n in ((a, 1), (b, None)):
        md.fit(model, md.MSE(), md.SGD(model.parameters(), lr=0.5 ** 6), X, y, epochs=3,
               batch_size=4, shuffle=False, verbose=0, threads=n)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "one", "AUTO", [1]])
def test_a_bad_count_is_refused_before_training(bad):
    model = md.Sequential(md.Dense(2, 1, rng=0))
    with pytest.raises((TypeError, ValueError), match="fit: threads"):
        md.Trainer(model, md.MSE(), md.SGD(model.parameters()), threads=bad)


def test_without_threadpoolctl_auto_says_so_once_and_a_count_is_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    monkeypatch.setattr(threads, "_noticed", False)
    for name in threads.CHOSEN_BY:
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train()
        train()
    notices = [w for w in caught if issubclass(w.category, PerformanceNotice)]
    assert len(notices) == 1 and "threadpoolctl" in str(notices[0].message)
    assert notices[0].filename == __file__  # points at the user's call of fit
    began = []

    class Began(md.callbacks.Callback):
        def on_train_begin(self, logs=None):
            began.append(True)

    with pytest.raises(ImportError, match=r"fit: threads=1 needs threadpoolctl.*\[fast\]"):
        train(threads=1, callbacks=[Began()])
    assert not began  # refused when the Trainer is built, before any callback ran


def test_auto_leaves_a_convolutional_model_to_the_blas(blas):
    """A Conv2D's weights serve every output position: few parameters, much work."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 1, 6, 6))
    model = md.Sequential(md.Conv2D(1, 2, 3, rng=0), md.Flatten(), md.Dense(32, 1, rng=1))
    spy = Spy()
    md.fit(model, md.MSE(), md.SGD(model.parameters(), lr=0.01), X, np.zeros((8, 1)),
           epochs=1, batch_size=4, verbose=0, callbacks=[spy])
    assert seen_on(spy, blas) == set(blas.values())
    assert threads.choose("auto", 10, 4, convolutional=True) is None
    assert threads.choose("auto", 10, 4) == 1


def test_overlapping_limits_hold_until_the_last_one_leaves(blas):
    """The thread count is the process's: when two fits in two threads overlap, B's limit
    must not be lifted when A's block, entered first, ends first (the blocks entered and left
    here in that order, by hand)."""
    a, b = threads.limited(1), threads.limited(1)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert {blas_threads()[path] for path in blas} == {1}  # B still limited
    b.__exit__(None, None, None)
    assert blas_threads().items() >= blas.items()  # and back after the last


def test_each_blas_library_is_limited_on_its_own(blas):
    """With two BLAS libraries loaded (NumPy's and SciPy's OpenBLAS), one already on one
    thread must not stop the other from being limited."""
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    libs = [lib for lib in controller.lib_controllers if lib.filepath in blas]
    if len(libs) < 2:
        pytest.skip("one BLAS library loaded here")
    first = libs[0]
    first.set_num_threads(1)
    try:
        with threads.limited(1):
            assert {blas_threads()[lib.filepath] for lib in libs} == {1}
        assert blas_threads()[libs[1].filepath] == blas[libs[1].filepath]
    finally:
        first.set_num_threads(blas[first.filepath])
