"""Turn a local LLM's reply into candidate CSV lines, keeping a record of what was removed.

Asked for bare ``soru,cevap,etiket`` rows, a model still tends to wrap them in a ``<think>``
block, an announcement ("Veri üretmeye başlıyorum:"), a code fence, a header line, numbering
(``1.``, ``2)``, ``- ``) or a closing remark. :func:`clean_reply` removes those and keeps the rest
for :func:`minidl.datasets.qa.parse_qa` to validate. Each non-blank line of the reply is either
kept (possibly without its numbering) or listed in ``removed`` with the reason, under its line
number in the reply (a line that is only partly inside a ``<think>`` block is listed in
``removed`` and its remainder kept); blank lines are only counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from minidl.datasets.qa import HEADER, Rejected, split_lines

_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(think|thinking|reasoning)>", re.IGNORECASE)
_THINK_ANY = re.compile(r"</?(think|thinking|reasoning)>", re.IGNORECASE)
_NUMBERING = re.compile(r"^\s*(?:\d{1,4}\s*[.)\]:-]\s+|[-*•]\s+)")
_LABEL_END = re.compile(r",\s*\"?\s*[+-]?1\s*\"?\s*$")


@dataclass
class CleanedReply:
    """``lines``: ``(line_in_reply, text)`` kept as candidate rows; ``removed``: the rest."""

    lines: list[tuple[int, str]] = field(default_factory=list)
    removed: list[Rejected] = field(default_factory=list)
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
    # A reply may start inside a think block whose opening tag was part of the chat template:
    # then the first tag in the reply is a closing one.
    first = _THINK_ANY.search("\n".join(lines))
    in_think = bool(first and first.group(0).startswith("</"))
    for number, text in enumerate(lines, start=1):
        kept, had_think, in_think = _strip_think(text, in_think)
        if had_think:
            out.removed.append(Rejected(number, text, "inside a <think> block"))
            if not kept.strip():
                continue
        _keep(out, number, kept)
    return out


def _strip_think(text: str, in_think: bool) -> tuple[str, bool, bool]:
    """The part of ``text`` outside think blocks, whether any part was inside, the new state."""
    kept, had_think, rest = [], in_think, text
    while rest:
        if in_think:
            close = _THINK_CLOSE.search(rest)
            if close is None:
                rest = ""
            else:
                rest, in_think = rest[close.end():], False
        else:
            opening = _THINK_OPEN.search(rest)
            if opening is None:
                kept.append(rest)
                rest = ""
            else:
                kept.append(rest[: opening.start()])
                rest, in_think, had_think = rest[opening.end():], True, True
    return "".join(kept), had_think, in_think


def _keep(out: CleanedReply, number: int, text: str) -> None:
    stripped = text.strip()
    if not stripped:
        out.n_blank += 1
        return
    if stripped.startswith("```") or stripped.startswith("~~~"):
        out.removed.append(Rejected(number, text, "code fence"))
        return
    unnumbered = _NUMBERING.sub("", stripped, count=1)
    if unnumbered.replace(" ", "").lower() == ",".join(HEADER):
        out.removed.append(Rejected(number, text, "header line"))
        return
    if not looks_like_row(unnumbered):
        out.removed.append(Rejected(number, text, "not a CSV row (commentary or announcement)"))
        return
    out.lines.append((number, unnumbered))
