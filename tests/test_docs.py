"""Docs whose code runs: the Python code blocks of README.md and docs/*.md are executed.

Rules
-----
- A block opened by a fence whose info string starts with ``python`` or ``py`` (```` ```python ````)
  is run; blocks in other languages (```` ```bash ````, ```` ```text ````, a bare ```` ``` ````)
  never are. Fences may be indented (inside a list item) and may use ``~~~``.
- A Python block is **skipped** when its info string also carries the word ``no-run``::

      ```python no-run
      model.fit(some_dataset_you_do_not_have)
      ```

- The blocks of one file run in order, in one fresh namespace per file, so a later block can use
  what an earlier one defined. The working directory is a fresh temporary directory, so files a
  block writes vanish.
- A failure names the file, the block number (1-based, counting that file's Python blocks, run
  or skipped) and its line; the traceback points at the line of the Markdown file.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARKER = "no-run"
PYTHON_LANGS = {"python", "py", "python3"}

OPENING = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass
class Block:
    number: int  # 1-based among the file's Python blocks
    line: int  # 1-based line of the opening fence
    code: str
    run: bool


class DocBlockError(AssertionError):
    """A code block of a Markdown file raised, or the file's fences are malformed."""


def python_blocks(text: str, name: str = "<markdown>") -> list[Block]:
    """The Python code blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = OPENING.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        words = match["info"].split()
        start, body = i + 1, []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                break
            body.append(_dedent(lines[i], indent))
            i += 1
        else:
            raise DocBlockError(f"{name}: the code fence opened on line {start} is never closed")
        i += 1
        if words and words[0].lower() in PYTHON_LANGS:
            blocks.append(Block(number=len(blocks) + 1, line=start, code="\n".join(body),
                                run=SKIP_MARKER not in words[1:]))
    return blocks


def _dedent(line: str, indent: int) -> str:
    """Remove up to ``indent`` leading spaces (the indentation of the opening fence)."""
    n = len(line) - len(line.lstrip(" "))
    return line[min(n, indent):]


def run_markdown(path: Path, name: str | None = None) -> int:
    """Run the Python blocks of ``path`` in order in one fresh namespace; return how many ran.
    Raise :class:`DocBlockError` naming the file, block and line of the first failure."""
    name = name or path.name
    namespace: dict = {"__name__": "__main__"}
    ran = 0
    for block in python_blocks(path.read_text(encoding="utf-8"), name):
        if not block.run:
            continue
        # pad with newlines so line numbers in tracebacks are those of the Markdown file
        source = "\n" * block.line + block.code + "\n"
        try:
            exec(compile(source, str(path), "exec"), namespace)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            # the traceback from the block's own frame on (not this function's)
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))
            raise DocBlockError(
                f"{name}: python block {block.number} (line {block.line}) failed:\n{tb}"
            ) from None
        ran += 1
    return ran


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_doc_code_runs(path, tmp_path, monkeypatch):
    name = path.relative_to(ROOT).as_posix()
    blocks = python_blocks(path.read_text(encoding="utf-8"), name)
    if not any(b.run for b in blocks):
        pytest.skip(f"{name} has no Python code blocks to run")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # a block that plots must not open a window
    try:
        run_markdown(path, name)
    except DocBlockError as err:
        message = str(err)
    else:
        return
    pytest.fail(message, pytrace=False)  # outside `except`: no chained traceback


def test_docs_are_found():
    assert (ROOT / "docs" / "custom_optimizer.md") in DOC_FILES
    assert DOC_FILES[0].name == "README.md"


# ------------------------------------------------------------------ the runner itself
SAMPLE = """\
# Title

```python
x = 1
```

```bash
exit 1
```

```python no-run
raise RuntimeError("skipped")
```

1. In a list:

   ```py
   x += 1
   ```

~~~python
assert x == 2
y = 1 / 0
~~~
"""


def test_extracts_python_blocks_only():
    blocks = python_blocks(SAMPLE)
    assert [(b.number, b.line, b.run) for b in blocks] == [
        (1, 3, True), (2, 11, False), (3, 17, True), (4, 21, True)]
    assert blocks[2].code == "x += 1"
    assert blocks[3].code == "assert x == 2\ny = 1 / 0"


def test_failure_names_file_block_and_line(tmp_path):
    path = tmp_path / "sample.md"
    path.write_text(SAMPLE, encoding="utf-8")
    with pytest.raises(DocBlockError,
                       match=r"^sample\.md: python block 4 \(line 21\) failed:") as info:
        run_markdown(path)
    message = str(info.value)
    assert "ZeroDivisionError" in message
    assert f'File "{path}", line 23' in message  # the Markdown line of `y = 1 / 0`
    assert "y = 1 / 0" in message
    assert "run_markdown" not in message


def test_blocks_share_one_namespace_per_file(tmp_path):
    path = tmp_path / "ok.md"
    path.write_text("```python\nvalue = 41\n```\ntext\n```python\nvalue += 1\n"
                    "assert value == 42\n```\n", encoding="utf-8")
    assert run_markdown(path) == 2
    assert run_markdown(path) == 2  # a fresh namespace each time, or `value` would be 43


def test_unclosed_fence_is_an_error():
    with pytest.raises(DocBlockError, match=r"^bad\.md: the code fence opened on line 2 is never "
                                            r"closed$"):
        python_blocks("text\n```python\nx = 1\n", "bad.md")
