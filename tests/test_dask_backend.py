"""The studies' runs on a Dask distributed cluster give the files of a local run.

A ``distributed.LocalCluster`` of two worker processes on 127.0.0.1 (one thread each, small
memory), closed after the module; optuna studies in a sqlite file of a temporary folder."""

from __future__ import annotations

import json
import sys

import optuna
import pandas as pd
import pytest

pytest.importorskip("distributed", reason="the dask extra: pip install -e '.[dask]'")

from experiments import __main__ as runner
from experiments import hyperparams, parallel

TIMING = {"elapsed", "elapsed_mean", "elapsed_std", "train_seconds", "train_seconds_to_best"}


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", memory_limit="1GiB")
    try:
        yield cluster.scheduler_address
    finally:
        parallel.close()
        cluster.close()


def run(study, out, *flags, expect=0):
    code = runner.main(["run", study, "--quick", "--epochs", "2", "--out", str(out),
                        "--no-report", *flags])
    assert code == expect


def same_table(a, b):
    left, right = pd.read_csv(a), pd.read_csv(b)
    assert list(left.columns) == list(right.columns)
    kept = [c for c in left.columns if c not in TIMING]
    pd.testing.assert_frame_equal(left[kept], right[kept], check_exact=True)


def test_a_study_on_the_cluster_equals_the_local_run(tmp_path, scheduler):
    run("optimizers", tmp_path / "local", "--jobs", "2")
    run("optimizers", tmp_path / "dask", "--scheduler", scheduler)
    for name in ("epochs.csv", "summary.csv"):
        same_table(tmp_path / "local" / "optimizers" / name,
                   tmp_path / "dask" / "optimizers" / name)
    config = json.loads((tmp_path / "dask" / "optimizers" / "config.json").read_text())
    assert config["argv"]["scheduler"] == scheduler


def test_the_runs_really_go_to_the_workers(scheduler):
    import os

    from joblib import delayed

    pids = list(parallel.Parallel(1, parallel.Backend("dask", scheduler))(
        delayed(os.getpid)() for _ in range(4)))
    assert os.getpid() not in pids


def test_bayesian_search_shares_its_studies_through_a_storage_url(tmp_path, scheduler):
    """The searches' trials spread over the cluster's two worker processes, each opening its
    trial in the sqlite storage and recording on it, with the results of a local run of one
    process without a storage."""
    import os

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run("hyperparams", tmp_path / "local", "--jobs", "1")
    run("hyperparams", tmp_path / "dask", "--scheduler", scheduler, "--storage", storage)
    for name in ("epochs.csv", "summary.csv", "trials.csv", "strategies.csv"):
        same_table(tmp_path / "local" / "hyperparams" / name,
                   tmp_path / "dask" / "hyperparams" / name)
    shared = json.loads((tmp_path / "dask" / "hyperparams" / "optuna.json").read_text())
    assert shared["storage"] == storage and len(shared["studies"]) == 3
    trials = pd.read_csv(tmp_path / "dask" / "hyperparams" / "trials.csv")
    pids = {}
    for strategy, name in shared["studies"].items():  # what the workers wrote into the storage
        stored = optuna.load_study(study_name=name, storage=storage).trials
        mine = trials[trials["strategy"] == strategy]
        assert len(stored) == len(mine) == hyperparams.QUICK_TRIALS
        assert [t.params["hidden"] for t in stored] == mine["hidden"].tolist()
        assert [t.params["lr"] for t in stored] == mine["lr"].tolist()
        assert [t.value for t in stored] == mine["val_accuracy"].tolist()
        assert [t.user_attrs["test_accuracy"] for t in stored] == mine["test_accuracy"].tolist()
        assert [len(t.intermediate_values) for t in stored] == mine["epochs_run"].tolist()
        assert [t.user_attrs["batch"] for t in stored] == [0, 0, 0, 0, 1, 1]
        pids[strategy] = {t.user_attrs["pid"] for t in stored}
        assert shared["workers"][strategy] == sorted(
            {f"{t.user_attrs['host']}:{t.user_attrs['pid']}" for t in stored})
    assert os.getpid() not in set().union(*pids.values())  # the workers ran every trial
    assert max(len(p) for p in pids.values()) > 1  # one study's trials on both workers


def test_an_unusable_storage_is_one_line(tmp_path, capsys):
    run("hyperparams", tmp_path, "--jobs", "1", "--storage", "nosuchdb://x", expect=2)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--storage 'nosuchdb://x'" in err
    assert not (tmp_path / "hyperparams").exists()  # checked before any run


def test_a_storage_error_of_two_lines_is_one_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"  # sqlalchemy: two lines
    run("hyperparams", tmp_path, "--jobs", "1", "--storage", url, expect=2)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: hyperparams: --storage {url!r}: optuna cannot create")


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", "1s")
    run("one_layer", tmp_path, "--scheduler", f"tcp://127.0.0.1:{port}", expect=2)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err


@pytest.mark.parametrize("flags", [["--backend", "dask"], ["--scheduler", "tcp://h:1"]])
def test_without_dask_the_options_say_what_to_install(tmp_path, capsys, monkeypatch, flags):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(SystemExit) as stop:
        run("one_layer", tmp_path, *flags)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'minidl[dask]'" in err


def test_backend_dask_without_a_scheduler_starts_a_local_cluster_on_loopback(monkeypatch):
    import os

    import dask
    from joblib import delayed

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set({"scheduler-address": None}):
        try:
            pids = list(parallel.Parallel(1, parallel.Backend("dask"))(
                delayed(os.getpid)() for _ in range(2)))
            made = parallel.client(None, 1)
            assert made.scheduler.address.startswith("tcp://127.0.0.1:")
            assert len(made.scheduler_info()["workers"]) == 1
        finally:
            parallel.close()
    assert os.getpid() not in pids


def test_a_worker_that_cannot_open_its_trial_says_so_in_one_line(tmp_path):
    """A storage the driver reaches but a worker does not (a sqlite file on another disk): the
    worker's error names the URL, the study and the worker."""
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"  # an empty database: no such study

    def objective(key, params):
        return {"value": 0.5, "steps": [0.5], "attrs": {}}

    with pytest.raises(parallel.BackendUnavailableError) as error:
        parallel.run_trial(objective, "random", {}, (), storage, "minidl-nosuchstudy", 0)
    message = str(error.value)
    assert f"--storage {storage!r}" in message and "'minidl-nosuchstudy'" in message
    assert len(message.splitlines()) == 1
