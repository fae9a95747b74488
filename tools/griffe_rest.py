"""A griffe extension for the API reference (mkdocs.yml loads it): minidl's docstrings use the
reST that Sphinx reads, and mkdocstrings renders them as Markdown. Before they are parsed, it
rewrites in every docstring of the package:

- a role, :func:`x` (also ``:class:``, ``:meth:``, ``:attr:``, ``:data:``, ``:mod:``, ``:exc:``,
  ``:obj:``, ``:const:``; ``~a.b.c`` shows ``c``), into the code span ``x`` linked to x's entry
  in the reference. The name is resolved where the docstring is, as Sphinx does (``update`` in
  a class, ``._kernels_numba`` relative to the package). The link is an optional autorefs
  reference: a name without an entry (a private module, say) stays a plain code span, with no
  warning, so the strict build does not depend on what the pages show;
- a paragraph ending in ``::`` into one ending in ``:`` (a lone ``::`` goes); the indented block
  after it is already a Markdown code block.
"""

from __future__ import annotations

import html
import re
from typing import Any

from griffe import Extension, Module, Object

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const):`([^`]+)`")
LITERAL_MARK = re.compile(r"(\s*)::$")


def _target(obj: Object, name: str) -> str:
    """The full dotted path ``name`` stands for in ``obj``'s docstring (``name`` if unknown)."""
    if name.startswith("."):  # relative to the docstring's package, as an import is
        module = obj if obj.is_module else obj.module
        package = module.path if module.is_init_module else module.path.rpartition(".")[0]
        rest = name[1:]
        while rest.startswith("."):
            package, rest = package.rpartition(".")[0], rest[1:]
        return f"{package}.{rest}"
    head, _, tail = name.partition(".")
    try:
        resolved = obj.resolve(head)
    except Exception:  # not a name in scope: already a full path (minidl.fit)
        return name
    return f"{resolved}.{tail}" if tail else resolved


def _role(obj: Object, match: re.Match[str]) -> str:
    text = match[1].strip()
    short = text.startswith("~")
    name = text.lstrip("~")
    title = name.rpartition(".")[2] if short else name
    target = html.escape(_target(obj, name), quote=True)
    return f'<autoref identifier="{target}" optional><code>{html.escape(title)}</code></autoref>'


def markdown(obj: Object, text: str) -> str:
    """``text``, a docstring of ``obj`` in reST, with its roles and ``::`` in Markdown."""
    lines = []
    for line in text.split("\n"):
        mark = LITERAL_MARK.search(line)
        if mark:
            if not line[: mark.start()].strip():
                continue  # a lone "::": the paragraph before already ends
            line = line[: mark.start()] + ("" if mark[1] else ":")
        lines.append(ROLE.sub(lambda m: _role(obj, m), line))
    return "\n".join(lines)


class RestRoles(Extension):
    """Rewrites the package's docstrings once it is loaded (see the module docstring)."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        stack: list[Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = markdown(obj, obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
