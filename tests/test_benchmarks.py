"""The benchmark suite runs end to end on tiny sizes (no timed assertions): tables, JSON, the
plot, and a user's optimizer (the Lion of docs/custom_optimizer.md) beside the built-ins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl
from benchmarks import optim, report
from benchmarks.__main__ import main
from tests.test_custom_optimizer import load_lion


def test_quick_run_writes_json_markdown_and_plot(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    module = tmp_path / "userlion.py"
    module.write_text("from tests.test_custom_optimizer import load_lion\n"
                      "Lion = load_lion()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "performance.md").write_text(
        f"# Kept\n\nhand-written\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    result = main(["--quick", "--no-torch", "--optimizer", "userlion:Lion",
                   "--out", str(tmp_path / "out")])
    saved = json.loads((tmp_path / "out" / "performance.json").read_text())
    assert {c["optimizer"] for c in saved["optim"]["cases"]} >= {"Adam", "SGD+momentum", "Lion"}
    for case in result["optim"]["cases"]:
        assert case["bound_s"] > 0 and all(t["median"] > 0 for t in case["times"].values())
    lion = [c for c in result["optim"]["cases"] if c["optimizer"] == "Lion"]
    assert lion and lion[0]["state_arrays"] == 1 and list(lion[0]["times"]) == ["minidl"]
    md = (tmp_path / "out" / "performance.md").read_text()
    assert md.startswith("# Kept\n\nhand-written") and md.rstrip().endswith("after")
    assert "old" not in md and "| Lion |" in md and "### Targets" in md
    assert (tmp_path / "out" / "performance.png").stat().st_size > 10_000
    assert saved["conv2d"]["times"]["minidl"]["median"] > 0 and saved["train"][0]["times"]
    assert saved["cnn_epoch"]["samples"] == 256 and saved["cnn_epoch"]["times"]


def test_the_torch_cnn_is_the_same_network_with_the_same_weights():
    torch = pytest.importorskip("torch")
    from benchmarks import train

    model = train.cnn_model(0).eval()
    net = train.torch_cnn(torch, model).eval()  # dropout off on both sides
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x),
                               theirs, rtol=1e-4, atol=1e-5)


def test_bad_optimizer_spec(capsys):
    for spec, says in (("no_colon", "expected MODULE:CLASS"),
                       ("json:JSONDecoder", "not a minidl.Optimizer subclass")):
        with pytest.raises(SystemExit) as exit_:
            optim.load_optimizer(spec)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("python -m benchmarks --optimizer: ") and says in err
    assert optim.load_optimizer("minidl:Adam") is minidl.Adam
    root = Path(__file__).resolve().parents[1]
    assert optim.load_optimizer(f"{root / 'examples' / 'lion.py'}:Lion").__name__ == "Lion"
    assert load_lion() is not None


@pytest.mark.parametrize("budget", ["-1", "0", "nan", "inf", "soon"])
def test_a_budget_that_is_not_a_positive_number_is_refused_before_work(budget, tmp_path,
                                                                       capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--budget", budget, "--out", str(tmp_path / "perf")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "argument --budget: must be a " in err and repr(budget) in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "perf").exists()


def test_runs_without_the_extras(tmp_path):
    """A plain install (no pandas, matplotlib, threadpoolctl, torch): it times and says what
    it leaves out, no ModuleNotFoundError."""
    code = ("import sys\n"
            "for n in ('pandas', 'matplotlib', 'threadpoolctl', 'torch', 'sklearn'):\n"
            "    sys.modules[n] = None\n"
            "from benchmarks.__main__ import main\n"
            f"main(['optim', '--quick', '--out', {str(tmp_path / 'p')!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed" in done.stdout
    assert (tmp_path / "p" / "performance.json").is_file()


def test_threads_quick_times_each_case_on_all_threads_and_on_one(tmp_path):
    """``python -m benchmarks threads``: each case on the BLAS's threads and on one, with the
    choice ``fit(threads="auto")`` makes for it, written to threads.json; ``--busy 1`` starts
    a spinning process for the run and stops it."""
    pytest.importorskip("threadpoolctl")
    result = main(["threads", "--quick", "--busy", "1", "--out", str(tmp_path / "t")])
    saved = json.loads((tmp_path / "t" / "threads.json").read_text())
    assert saved["busy"] == 1 and saved["cases"] == result["cases"]
    assert [c["case"] for c in saved["cases"]] == ["small MLP", "Keras CNN"]
    for case in saved["cases"]:
        assert set(case["times"]) == {"all", "one"}
        assert all(t["median"] > 0 for t in case["times"].values())
        small = case["case"] != "Keras CNN" and case["work"] < saved["small_work"]
        assert case["auto"] == ("one" if small else "all")


@pytest.mark.parametrize("busy", ["-1", "two"])
def test_threads_busy_must_be_a_count(busy, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["threads", "--busy", busy, "--out", str(tmp_path / "t")])
    assert exit_.value.code == 2 and "argument --busy" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
