"""Turn a local LLM's reply into candidate CSV lines, keeping a record of what was removed.

Asked for bare ``soru,cevap,etiket`` rows, a model still tends to wrap them in a ``<think>``
block, an announcement ("Veri üretmeye başlıyorum:"), a code fence, a header line, numbering
(``1.``, ``2)``, ``- ``) or a closing remark. :func:`clean_reply` removes those and keeps the rest
for :func:`minidl.datasets.qa.parse_qa` to validate. Each non-blank line of the reply is either
kept or listed in ``removed`` with the reason, under its line number in the reply (a line that is
only partly inside a ``<think>`` block is listed in ``removed`` and its remainder kept); blank
lines are only counted. Every kept line whose text was changed (its numbering removed) is listed
in ``changed`` with its original text and what was removed.

Numbering is removed only where it is numbering, since real questions start with what looks
like it ("1. Dünya Savaşı", "19. yüzyılda", "3 - 2 kaçtır?"): a run of consecutive lines (blank
lines aside) numbered ``1, 2, 3, ...`` in the same style (``1.``, ``1)``, ...), at least two long;
or a run of at least two lines with the same bullet (``-``, ``*``) that are not all one
question (the two rows of one pair that start with ``- `` are a question starting with ``- ``);
``•``, which no question starts with, is removed from any line. A code fence (with a language
name such as ``csv``) is removed from the start or the end of a line holding a row, the change
recorded; a line that is only a fence is removed.
Only the first numbering of a line is removed (``3. 19. yüzyılda ...`` keeps ``19. yüzyılda``).

Think blocks nest (``<think>a<think>b</think>c</think>`` is one block). A closing tag that is the
first tag of the reply normally ends a block whose opening tag was in the chat template, so
everything before it is thinking; but when every non-blank line before it looks like a CSV row,
the tag is taken as a stray one and those rows are kept. Any other closing tag without an opening
one is removed as a stray tag; the text around it is kept.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

from minidl.datasets.qa import HEADER, Rejected, split_lines

_THINK_TAG = re.compile(r"<(/?)(think|thinking|reasoning)>", re.IGNORECASE)
_THINK_ANY = _THINK_TAG
_NUMBER = re.compile(r"^\s*(\d{1,4})\s*([.)\]:-])\s+")
_BULLET = re.compile(r"^\s*(?:([-*])\s+|(•)\s*)")  # "•" with or without a space after it
#: A code fence at the start of a line (with a language name such as ``csv`` and a space
#: after it), or at its end.
_FENCE_START = re.compile(r"^\s*(```|~~~)(?:(?:csv|text|plaintext|txt)\s+)?", re.IGNORECASE)
_FENCE_END = re.compile(r"(```|~~~)\s*$")
#: Bullets no question starts with: removed from a single line too.
_ALWAYS_BULLET = "•"
_LABEL_END = re.compile(r",\s*\"?\s*[+-]?1\s*\"?\s*$")
INSIDE_THINK = "inside a <think> block"
STRAY_CLOSE = "stray </think> with no opening tag"


@dataclass
class CleanedReply:
    """``lines``: ``(line_in_reply, text)`` kept as candidate rows; ``removed``: the rest;
    ``changed``: the kept lines whose text was changed, with their original text and why."""

    lines: list[tuple[int, str]] = field(default_factory=list)
    removed: list[Rejected] = field(default_factory=list)
    changed: list[Rejected] = field(default_factory=list)
    n_blank: int = 0
    n_lines: int = 0

    @property
    def text(self) -> str:
        """The kept lines joined by newlines."""
        return "\n".join(t for _, t in self.lines)

    @property
    def line_numbers(self) -> list[int]:
        """The reply line number of each kept line (for ``parse_qa(..., line_numbers=...)``)."""
        return [n for n, _ in self.lines]


def looks_like_row(text: str) -> bool:
    """True for a line that may be a CSV row: it ends in a label or has at least two commas."""
    return bool(_LABEL_END.search(text)) or text.count(",") >= 2


def clean_reply(reply: str) -> CleanedReply:
    """Remove think blocks, code fences, a header, announcements and numbering from ``reply``."""
    out = CleanedReply()
    lines = split_lines(reply)
    out.n_lines = len(lines)
    depth = 1 if _template_think(lines) else 0
    candidates: list[tuple[int, str]] = []  # (line, text outside think blocks), in order
    fenced: dict[int, str] = {}  # line -> its text before a fence was removed from it
    for number, text in enumerate(lines, start=1):
        kept, reason, depth = _strip_think(text, depth)
        if reason:
            out.removed.append(Rejected(number, text, reason))
            if not kept.strip():
                continue
        unfenced = _FENCE_END.sub("", _FENCE_START.sub("", kept, count=1), count=1)
        if unfenced != kept:
            if not looks_like_row(unfenced):  # a fence alone, or one with no row on its line
                out.removed.append(Rejected(number, text, "code fence"))
                continue
            fenced[number], kept = text, unfenced
        candidates.append((number, kept))
    prefixes = _numbering(candidates)
    for number, text in candidates:
        _keep(out, number, text, prefixes.get(number), fenced.get(number))
    return out


def _template_think(lines: list[str]) -> bool:
    """Whether the reply starts inside a think block opened by the chat template: its first tag
    is a closing one, and something before it is not a CSV row (or nothing is before it)."""
    before = []
    for text in lines:
        tag = _THINK_TAG.search(text)
        if tag is None:
            before.append(text)
            continue
        if not tag.group(1):
            return False
        rows = [t for t in before if t.strip()]
        head = text[: tag.start()]
        if rows and head.strip():  # after rows, the tag's line is judged whole, tags removed:
            head = _THINK_TAG.sub("", text)  # a row with a stray tag inside keeps the rows
        rows += [head] if head.strip() else []
        return not rows or not all(looks_like_row(t) for t in rows)
    return False


def _strip_think(text: str, depth: int) -> tuple[str, str | None, int]:
    """The part of ``text`` outside think blocks, why anything was removed, the new depth."""
    kept, reason, pos = [], INSIDE_THINK if depth else None, 0
    for tag in _THINK_TAG.finditer(text):
        if depth == 0:
            kept.append(text[pos: tag.start()])
        if tag.group(1):  # a closing tag
            if depth == 0:
                reason = reason or STRAY_CLOSE
            else:
                depth -= 1
        else:
            depth += 1
            reason = INSIDE_THINK
        pos = tag.end()
    if depth == 0:
        kept.append(text[pos:])
    return "".join(kept), reason, depth


def _question(text: str) -> str:
    try:
        return next(csv.reader([text], skipinitialspace=True), [""])[0].strip()
    except (csv.Error, IndexError):
        return text.split(",", 1)[0].strip()


def _numbering(candidates: list[tuple[int, str]]) -> dict[int, str]:
    """The numbering prefix to remove from each candidate line that is part of a numbered or
    bulleted list (see the module docstring), by line number."""
    marks = []  # (line, style, number or None, prefix, rest) for each non-blank candidate
    for number, text in candidates:
        if not text.strip():
            continue
        if m := _NUMBER.match(text):
            marks.append((number, m.group(2), int(m.group(1)), m.group(0), text[m.end():]))
        elif m := _BULLET.match(text):
            marks.append((number, m.group(1) or m.group(2), None, m.group(0), text[m.end():]))
        else:
            marks.append((number, None, None, "", text))
    prefixes: dict[int, str] = {}
    start = 0
    while start < len(marks):
        style = marks[start][1]
        end = start + 1
        while end < len(marks) and style is not None and marks[end][1] == style \
                and (marks[end][2] is None) == (marks[start][2] is None):
            end += 1
        run = marks[start:end]
        start = end
        if style == _ALWAYS_BULLET:  # no question starts with one: a line or a pair too
            prefixes.update((m[0], m[3]) for m in run)
            continue
        if style is None or len(run) < 2:
            continue
        if run[0][2] is not None:
            if [m[2] for m in run] != list(range(1, len(run) + 1)):
                continue
        elif len({_question(m[4]) for m in run}) < 2:
            continue
        prefixes.update((m[0], m[3]) for m in run)
    return prefixes


def _keep(out: CleanedReply, number: int, text: str, prefix: str | None,
          fenced: str | None = None) -> None:
    stripped = text.strip()
    if not stripped:
        out.n_blank += 1
        return
    unnumbered = stripped
    if prefix:
        unnumbered = text[len(prefix):].strip()
    if unnumbered.replace(" ", "").lower() == ",".join(HEADER):
        out.removed.append(Rejected(number, text, "header line"))
        return
    if not looks_like_row(unnumbered):
        out.removed.append(Rejected(number, text, "not a CSV row (commentary or announcement)"))
        return
    if fenced is not None:
        out.changed.append(Rejected(number, fenced, "code fence removed"))
    if prefix:
        what = "bullet" if _BULLET.match(prefix) else "numbering"
        out.changed.append(Rejected(number, fenced if fenced is not None else text,
                                    f"{what} {prefix.strip()!r} removed"))
    out.lines.append((number, unnumbered))
