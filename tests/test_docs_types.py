"""The docs' examples type-check: mypy, run as a user runs it, on the Python blocks of README.md
and docs/*.md, against the installed minidl.

Each Markdown file becomes one module (its blocks share a namespace when they run, see
tests/test_docs.py), each block at its own lines, so mypy's line numbers are the Markdown
file's. mypy runs from a folder outside the repository, with no configuration of ours, on the
interpreter running the tests: it finds minidl the way it finds it for a user after the README's
``pip install -e``. Errors are reported in the examples alone (``--follow-imports silent``:
minidl's own types are CI's ``mypy`` step; the repository's runners are not typed API), and
``import-untyped`` is switched off (scikit-learn and pandas ship no types, which is theirs to
fix, not the examples').
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_docs import DOC_FILES, ROOT, python_blocks

pytest.importorskip("mypy")

MYPY = [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes",
        "--python-version", "3.10", "--disable-error-code", "import-untyped",
        "--no-incremental", "--follow-imports", "silent"]
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def as_module(path: Path) -> str:
    """The Python blocks of ``path`` that run, at their lines, blank lines between."""
    text = path.read_text(encoding="utf-8")
    lines = [""] * (len(text.splitlines()) + 1)  # lines[k]: line k of the page, 1-based
    for block in python_blocks(text, path.name):
        if block.run:  # block.line is its opening fence; the code starts below it
            for offset, line in enumerate(block.code.splitlines(), start=block.line + 1):
                lines[offset] = line
    return "\n".join(lines[1:]) + "\n"


def mypy(folder: Path, modules: dict[str, str]) -> list[str]:
    """mypy's errors on ``modules`` (file name -> source) written into ``folder``, run there."""
    for name, source in modules.items():
        (folder / name).write_text(source, encoding="utf-8")
    # the checkout's root on mypy's path, as when a user runs mypy there: the runner the docs
    # import (experiments) is found; minidl is not there (it is in src/), so it is found as
    # installed
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    done = subprocess.run([*MYPY, "--cache-dir", str(folder / ".cache"), *modules],
                          cwd=folder, capture_output=True, text=True, timeout=600, env=env)
    errors = [line for line in done.stdout.splitlines() if ERROR.match(line)]
    assert done.returncode in (0, 1) and (done.returncode == 0) == (not errors), (
        done.stdout + done.stderr)
    return errors


def test_the_docs_examples_type_check(tmp_path):
    modules = {}
    for path in DOC_FILES:
        if any(b.run for b in python_blocks(path.read_text(encoding="utf-8"), path.name)):
            # one module per page; the name says which (README.md -> doc_README.py)
            modules[f"doc_{path.stem}.py"] = as_module(path)
    assert len(modules) >= 8
    errors = mypy(tmp_path, modules)
    named = [re.sub(r"^doc_(\w+)\.py", lambda m: _page(m[1]), e) for e in errors]
    assert not named, "mypy on the docs' examples:\n" + "\n".join(named)


def test_mypy_sees_minidl_types(tmp_path):
    """The check above means something only if minidl's types are seen (not ``Any``, as for a
    package mypy cannot find): a misuse of minidl is an error, and a name is revealed."""
    errors = mypy(tmp_path, {"user.py": (
        "import minidl as md\n"
        "layer = md.Dense(3, 2)\n"
        "n: str = layer.in_features\n"
        "md.fit(layer, md.MSE(), md.SGD(layer.parameters()), 1, 2, epochs='ten')\n")})
    assert any(":3: error:" in e and "assignment" in e for e in errors), errors
    assert any(":4: error:" in e and "epochs" in e for e in errors), errors
    assert not any("import-not-found" in e or "Cannot find implementation" in e
                   for e in errors), errors


def _page(stem: str) -> str:
    matches = [p for p in DOC_FILES if p.stem == stem]
    return matches[0].relative_to(ROOT).as_posix() if matches else stem


def test_a_module_keeps_the_markdown_line_numbers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx: int = 1\n```\nmore\n```python\ny: str = x\n```\n")
    source = as_module(page).splitlines()
    assert source[3] == "x: int = 1" and source[7] == "y: str = x"
    errors = mypy(tmp_path, {"page.py": as_module(page)})
    assert len(errors) == 1 and errors[0].startswith("page.py:8: error:"), errors
