"""Run the studies and write the report: ``python -m experiments run all|NAME... [flags]``.

    python -m experiments list
    python -m experiments run all                       # every study, full settings
    python -m experiments run optimizers --quick --out /tmp/r --report /tmp/r/report.md
    python -m experiments run optimizers --data DIR --features e5-small --out DIR

Flags after the names go to every study (``--epochs --seeds --features --data --out --quick
--jobs --backend --scheduler --storage``; see ``run --help``); the MNIST studies' own flags
(``--dataset --mnist-dir --protocol``) go to them alone. ``--report PATH`` (default
``docs/report.md``) is where the report goes, its figures beside it in ``figures/``;
``--no-report`` skips it. Paths are relative to the current folder.

A study is a module listed in :data:`STUDIES`. It exposes ``main(argv)``, which writes
``<out>/<name>/`` (epochs.csv, summary.csv, config.json and PNG figures), and
``report_section(results_dir) -> str``, a markdown section whose figures are referred to as
``figures/<name>/<file>.png`` (the report copies ``<out>/<name>/*.png`` there); optionally
``headline(results_dir) -> dict``, its row in the report's table of headline numbers. To add
studies (the MNIST ones: ``experiments.mnist_scratch``, ``mnist_pipeline``, ``mnist_cnn``,
``mnist_improvements``), append their module names to :data:`STUDIES`: ``list`` reads each
module's docstring from its source without importing it, so listing stays instant.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import shlex
import sys
import time
from pathlib import Path

#: The registered studies, in report order.
STUDIES = [f"experiments.{name}" for name in (
    "optimizers", "adaptive", "train_size", "features", "one_layer", "deep", "fitting",
    "hyperparams", "trajectories", "quadratic",
    "mnist_scratch", "mnist_pipeline", "mnist_cnn", "mnist_improvements")]


def short(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def resolve(names: list[str]) -> list[str]:
    """Module names for ``names`` (``all``: every registered study), in registry order."""
    known = {short(m): m for m in STUDIES}
    if "all" in names:
        return list(STUDIES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown studies {unknown}; known: {', '.join(known)}")
    return [m for m in STUDIES if short(m) in names]


def main(argv=None, prog: str = "python -m experiments") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["list"]:  # instant: imports neither minidl nor numpy
        from argparse import ArgumentParser
    else:  # one-line errors, defaults in --help
        from minidl.cli import ArgumentParser, fail

    parser = ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered studies")
    report = sub.add_parser("report", help="write the report from existing results")
    report.add_argument("--out", type=Path, default=Path("results"), help="the results folder")
    report.add_argument("--report", type=Path, default=Path("docs/report.md"),
                        help="where the report goes, its figures beside it")
    study_flags, mnist_flags = [], []
    if argv[:1] not in (["list"], ["report"]):  # its flags import numpy: list stays instant
        from experiments.flags import add_mnist_flags, add_study_flags

        run = sub.add_parser("run", help="run studies, then write the report",
                             description="Run studies, then write the report.")
        run.add_argument("names", nargs="+", help="'all' or study names (see list)")
        run.add_argument("--report", type=Path, default=Path("docs/report.md"),
                         help="where the report goes, its figures beside it")
        run.add_argument("--no-report", action="store_true", help="write no report")
        study_flags = add_study_flags(run.add_argument_group("flags for every study"))
        mnist_flags = add_mnist_flags(run.add_argument_group("flags of the MNIST studies"))
    args = parser.parse_args(argv)
    if args.command == "list":
        for module in STUDIES:
            print(f"{short(module):14s} {summary_line(module)}")
        return 0
    if args.command == "report":
        from experiments.report import write_report

        print(f"report: {write_report(args.out, STUDIES, args.report)}", file=sys.stderr)
        return 0
    from experiments import parallel
    from experiments.flags import to_argv
    from experiments.qa.embedders import ModelUnavailableError

    try:
        modules = resolve(args.names)
    except SystemExit as exc:
        fail(f"{prog}: {exc.code}")
    if parallel.backend(args).name == "dask":
        try:
            parallel.require_dask()
        except parallel.BackendUnavailableError as exc:
            fail(f"{prog}: {exc}")
    rest, mnist_rest = to_argv(args, study_flags), to_argv(args, mnist_flags)
    out = args.out
    timing_path = out / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    timing.setdefault("studies", {})
    start, load = time.perf_counter(), os.getloadavg()[0]
    for module in modules:
        t = time.perf_counter()
        print(f"[{short(module)}] running", file=sys.stderr, flush=True)
        try:
            importlib.import_module(module).main(
                rest + mnist_rest if short(module).startswith("mnist") else rest)
        except (ModelUnavailableError, FileNotFoundError,
                parallel.BackendUnavailableError) as exc:  # data or a model not here: one line
            print(f"error: {short(module)}: {exc}", file=sys.stderr)
            return 2
        timing["studies"][short(module)] = round(time.perf_counter() - t, 1)
        print(f"[{short(module)}] done in {timing['studies'][short(module)]:.1f} s",
              file=sys.stderr, flush=True)
    total = round(time.perf_counter() - start, 1)
    if "all" in args.names:
        timing.update(total=total, command="python -m experiments " + shlex.join(argv),
                      load=[load, os.getloadavg()[0]], cpus=os.cpu_count())
    out.mkdir(parents=True, exist_ok=True)
    timing_path.write_text(json.dumps(timing, indent=2) + "\n")
    print(f"all done in {total:.1f} s", file=sys.stderr)
    if not args.no_report:
        from experiments.report import write_report

        path = write_report(out, STUDIES, args.report)
        print(f"report: {path}", file=sys.stderr)
    return 0


def summary_line(module: str) -> str:
    """The first line of a study module's docstring, read from its source (nothing imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return "(not installed)"
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


if __name__ == "__main__":
    raise SystemExit(main())
