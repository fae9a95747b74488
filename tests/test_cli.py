"""The ``minidl`` command, run as a user would: in a subprocess, from a folder that is not the
repository (the installed entry point when there is one, else ``python -m minidl.cli``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(sys.executable).parent / "minidl"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "minidl.cli"]

LAYERS = '''
import numpy as np
from minidl import Layer, Parameter


class Scale(Layer):
    """y = x * w, one weight per column; bug=True doubles the weight's gradient."""

    def __init__(self, width, rng, bug=False):
        super().__init__()
        self.w = Parameter(np.random.default_rng(rng).standard_normal(width))
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x * self.w.data

    def backward(self, g):
        self.w.grad[...] = (g * self.x).sum(0) * (2.0 if self.bug else 1.0)
        return g * self.w.data


class NotALayer:
    pass
'''


def minidl(*args, cwd, env=None, timeout=120):
    return subprocess.run([*COMMAND, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def one_line_error(done, *words):
    """Exit code 2, one line on stderr naming ``words``, no traceback."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(("args", "default"), [
    ((), "gradcheck"),
    (("experiments",), "run"),
    (("experiments", "run"), "(default: runs)"),
    (("bench",), "(default: performance)"),
    (("data",), "~/.cache/minidl"),
    (("gradcheck",), "(default: 25)"),
])
def test_every_subcommand_has_help_with_defaults(tmp_path, args, default):
    done = minidl(*args, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert default in done.stdout


@pytest.mark.parametrize(("args", "words"), [
    ((), ["COMMAND"]),
    (("nonsense",), ["nonsense"]),
    (("experiments", "run", "nope"), ["unknown studies", "nope"]),
    (("experiments", "run", "optimizers", "--bogus"), ["--bogus"]),
    (("experiments", "run", "optimizers", "--jobs", "x"), ["--jobs", "'x'"]),
    (("bench", "--optimizer", "nomodule:Opt"), ["--optimizer", "nomodule"]),
    (("bench", "everything"), ["everything"]),
    (("data", "cifar"), ["cifar"]),
    (("gradcheck", "layers"), ["MODULE:CLASS", "'layers'"]),
    (("gradcheck", "nomodule:X"), ["no module named 'nomodule'"]),
    (("gradcheck", "layers:Nope"), ["no 'Nope'"]),
    (("gradcheck", "layers:NotALayer"), ["not a minidl Layer or Loss"]),
    (("gradcheck", "layers:Scale", "IN"), ["Scale(IN)", "'rng'"]),
    (("gradcheck", "minidl:MSE"), ["MSE is a Loss", "--target"]),
    (("gradcheck", "layers:Scale", "--max-examples", "0"), ["--max-examples"]),
])
def test_a_bad_argument_is_one_line_and_exit_code_2(tmp_path, args, words):
    (tmp_path / "layers.py").write_text(LAYERS)
    one_line_error(minidl(*args, cwd=tmp_path), *words)


def test_experiments_list_works_from_another_folder(tmp_path):
    done = minidl("experiments", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names[:2] == ["optimizers", "adaptive"] and "mnist_cnn" in names


def test_experiments_run_from_another_folder_writes_under_it(tmp_path):
    """The shipped data is found relative to the package; the results go under the current
    folder."""
    done = minidl("experiments", "run", "one_layer", "--quick", "--seeds", "42", "--epochs",
                  "1", "--jobs", "1", "--out", "out", "--no-report", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "out" / "one_layer" / "summary.csv")
    assert len(summary) > 0 and summary["test_accuracy_mean"].between(0, 1).all()


def test_experiments_without_the_shipped_data_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    from experiments import __main__ as runner
    from experiments.qa import features

    monkeypatch.setattr(features, "DATA", tmp_path / "nowhere" / "qa")
    code = runner.main(["run", "one_layer", "--quick", "--jobs", "1", "--out", str(tmp_path),
                        "--no-report"], prog="minidl experiments")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "shipped question/answer data is not here" in err and "--data DIR" in err


def _cache(folder: Path) -> None:
    from minidl.datasets.mnist import _write_cache

    rng = np.random.default_rng(0)
    _write_cache(folder / "mnist.npz", (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
                                        np.arange(5), rng.integers(0, 256, (3, 28, 28),
                                                                    dtype=np.uint8),
                                        np.arange(3)))


def test_data_mnist_prints_where_the_cache_is_and_its_source(tmp_path):
    _cache(tmp_path / "cache")
    done = minidl("data", "mnist", "--no-download", cwd=tmp_path,
                  env={"MINIDL_DATA": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert f"MNIST cache: {tmp_path / 'cache' / 'mnist.npz'}" in done.stdout
    assert "source: cache" in done.stdout and "5 train, 3 test" in done.stdout


def test_data_mnist_builds_the_cache_from_an_idx_folder(tmp_path):
    from tests.test_mnist_data import write_idx

    rng = np.random.default_rng(1)
    write_idx(tmp_path / "idx", (rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
                                 np.arange(4, dtype=np.uint8),
                                 rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
                                 np.arange(2, dtype=np.uint8)))
    done = minidl("data", "mnist", "--path", "idx", "--cache-dir", "c", "--no-download",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "source: IDX folder 'idx'" in done.stdout and "4 train, 2 test" in done.stdout
    assert (tmp_path / "c" / "mnist.npz").is_file()


def test_data_mnist_unavailable_lists_the_sources_without_a_traceback(tmp_path):
    done = minidl("data", "mnist", "--no-download", "--cache-dir", str(tmp_path / "none"),
                  cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "MNIST is not available" in done.stderr and str(tmp_path / "none") in done.stderr


def test_gradcheck_passes_a_correct_layer(tmp_path):
    (tmp_path / "layers.py").write_text(LAYERS)
    done = minidl("gradcheck", "layers:Scale", "IN", "rng=RNG", "--max-examples", "5",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS: Scale(IN, rng=RNG)")


def test_gradcheck_prints_the_counterexample_of_a_wrong_gradient(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "layers.py").write_text(LAYERS)
    done = minidl("gradcheck", "sub/layers.py:Scale", "IN", "RNG", "bug=True",
                  "--max-examples", "5", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Draw 1 (IN): 1" in done.stdout  # hypothesis' smallest example: one column
    fail = done.stdout.strip().splitlines()[-1]
    assert fail.startswith("FAIL: Scale(IN, RNG, bug=True): GradcheckError")
    assert "parameter 'w'" in fail


def test_gradcheck_of_a_loss_needs_and_uses_a_target(tmp_path):
    done = minidl("gradcheck", "minidl:MSE", "--target", "normal", "--max-examples", "5",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("PASS: MSE(): every gradient agrees with finite "
                                   "differences over 5 examples")


def test_the_module_docstring_names_every_subcommand():
    from minidl import cli

    for name in ("experiments", "bench", "data mnist", "gradcheck"):
        assert f"minidl {name}" in textwrap.dedent(cli.__doc__)
