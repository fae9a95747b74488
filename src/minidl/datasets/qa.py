"""Turkish question/answer pairs: a validating CSV loader.

File format
-----------
UTF-8 (a byte-order mark is accepted), ``\\n`` or ``\\r\\n`` line endings (old Mac ``\\r``
endings are refused, saying so), a header line ``soru,cevap,etiket`` (question, answer,
label; in any case, Turkish or not: ``SORU,CEVAP,ETİKET`` and ``ETIKET`` both match), then
one row per line. A field that contains a
comma is quoted (``"27,3"``), a quote inside a quoted field is doubled (``""``). The label is
``+1`` (correct answer), ``-1`` (wrong answer) or ``1``; anything else (``0``, ``2``, ``yes``)
is refused, so a 0/1 file is never read as +1/-1. Spaces around fields are ignored.

Lines
-----
Line numbers are *physical* lines of the file, counted from 1 (the header). A quoted field may
not span lines: a row is always one physical line, and an unterminated quote is reported for its
line. A final newline does not start another line. Every line after the header ends up in exactly
one of two places:

- accepted: the rows of :class:`QADataset` (``questions``, ``answers``, ``labels``, ``lines``);
- rejected: :class:`Rejected` ``(line, text, reason)``. Blank lines are rejected as
  ``"empty line"`` too: nothing is skipped silently.

Line 1 must be the header ``soru,cevap,etiket`` (``dataset.header`` is then True); any other
first line is itself rejected. So ``dataset.header + len(accepted) + len(rejected) ==
dataset.n_lines`` always holds.

Checks
------
Per line: malformed quoting, number of fields (3), empty fields, the label. Across lines:

- duplicate rows: the same question and answer (after :func:`normalize_question`) as an earlier
  row; the later line is rejected;
- pairs: every question (after :func:`normalize_question`) must have exactly one ``+1`` and one
  ``-1`` answer. All remaining lines of a question that has two ``+1``, two ``-1`` or a missing
  partner are rejected, since the data cannot say which of them is the faulty one;
- contradictions: when a question repeats an answer with the other label, every line of that
  question is rejected (the repeat as a duplicate, the others as a contradiction), even where
  the remaining lines would form a pair: the data contradicts itself about that question.

A reason lists at most 10 line numbers and says how many more there are; a
:class:`QADataError`'s message lists at most 25 problems, so it stays short for any input.

Across files, :func:`validate_splits` rejects the questions of one split that appear in the other.

Kinds
-----
A folder of splits may hold ``topics.csv`` (header ``bolum,konu,soru,tur``: split, topic,
question, kind of wrong answer), read by :func:`load_topics`. With ``topics=`` given,
:func:`load_splits` sets each dataset's ``kinds``: one string per row (in the shipped data
``"fact"`` where the wrong answer swaps a fact, ``"non_answer"`` where it is a true statement
that does not answer, ``"other_answer"`` where it is another question's right answer), so a
study can report accuracy per kind. Every question of the splits must be listed there.

``strict=True`` (the default) raises one :class:`QADataError` listing every problem with the file
name and line; ``strict=False`` returns the valid rows with the rejected lines in
``dataset.rejected``. Only the standard library and NumPy are used here.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..atomic import atomic_write
from ..errors import MinidlError

HEADER = ("soru", "cevap", "etiket")
LABELS = {"+1": 1, "-1": -1, "1": 1}
_BOM = "\ufeff"
_APOSTROPHES = "'’‘`´ʼ"  # deleted, so that "Türkiye'nin" and "Türkiyenin" normalise alike


class QADataError(MinidlError, ValueError):
    """A question/answer file (or a pair of splits) breaks the format; ``problems`` lists why.

    ``problems`` is a list of ``(source, Rejected)`` pairs, ``source`` being the file name; the
    message lists the first :attr:`SHOWN` of them and says how many more there are.
    """

    SHOWN = 25

    def __init__(self, problems: list[tuple[str, Rejected]], what: str = "question/answer data"):
        self.problems = list(problems)
        lines = [f"{what}: {len(self.problems)} problem(s)"]
        lines += [f"  {src}, line {r.line}: {r.reason}: {_clip(r.text)}"
                  for src, r in self.problems[:self.SHOWN]]
        if len(self.problems) > self.SHOWN:
            lines.append(f"  ... and {len(self.problems) - self.SHOWN} more (all of them are in "
                         f"the exception's .problems)")
        super().__init__("\n".join(lines))


class Rejected(NamedTuple):
    """A line that did not become a row: its physical line number, its text and why."""

    line: int
    text: str
    reason: str


@dataclass
class QADataset:
    """The accepted rows of a question/answer file, plus every line that was rejected.

    ``labels`` is an int array of +1/-1; ``lines`` holds each row's physical line number.
    ``n_lines`` counts every physical line of the source, header included; ``header`` says
    whether line 1 was a valid header (otherwise it is in ``rejected``), so
    ``header + len(self) + len(rejected) == n_lines``. ``kinds`` is set by
    :func:`load_splits` when a ``topics.csv`` is given: the kind of each row's pair.
    """

    questions: list[str]
    answers: list[str]
    labels: np.ndarray
    lines: list[int]
    rejected: list[Rejected] = field(default_factory=list)
    source: str = "<string>"
    n_lines: int = 0
    header: bool = False
    kinds: np.ndarray | None = None  # one str per row (see load_topics), or None

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def n_questions(self) -> int:
        """The number of distinct questions (after :func:`normalize_question`)."""
        return len({normalize_question(q) for q in self.questions})

    def rows(self) -> list[tuple[str, str, int]]:
        """The accepted rows as ``(question, answer, label)`` tuples."""
        return list(zip(self.questions, self.answers, (int(v) for v in self.labels), strict=True))

    def subset(self, keep: Iterable[bool], extra_rejected: Iterable[Rejected] = ()) -> QADataset:
        """A copy holding the rows where ``keep`` is true, with ``extra_rejected`` appended."""
        keep = list(keep)
        if len(keep) != len(self):
            raise ValueError(f"QADataset.subset: keep has {len(keep)} entries for {len(self)} rows")
        idx = [i for i, k in enumerate(keep) if k]
        rejected = sorted([*self.rejected, *extra_rejected], key=lambda r: r.line)
        return QADataset(
            questions=[self.questions[i] for i in idx],
            answers=[self.answers[i] for i in idx],
            labels=self.labels[idx] if idx else np.zeros(0, dtype=np.int64),
            lines=[self.lines[i] for i in idx],
            rejected=rejected,
            source=self.source,
            n_lines=self.n_lines,
            header=self.header,
            kinds=None if self.kinds is None else self.kinds[idx],
        )


# ---------------------------------------------------------------------------- normalisation
def turkish_lower(text: str) -> str:
    """Lower-case with Turkish rules: ``İ -> i`` and ``I -> ı`` (Python's ``lower`` gives
    ``i̇`` and ``i``)."""
    return text.replace("İ", "i").replace("I", "ı").lower()


def normalize_text(text: str) -> str:
    """The comparison key of a question or answer.

    NFKC, Turkish lower case, the dotted and dotless i folded together (``ı -> i``, so that
    ``Istanbul``, ``İstanbul`` and ``ıstanbul`` match), apostrophes deleted, every other
    punctuation character replaced by a space, runs of white space collapsed to one space.
    """
    text = turkish_lower(unicodedata.normalize("NFKC", text))
    text = text.replace("ı", "i").replace("\u0307", "")  # combining dot above, from i̇
    chars = []
    for ch in text:
        if ch in _APOSTROPHES:
            continue
        chars.append(" " if unicodedata.category(ch).startswith("P") else ch)
    return " ".join("".join(chars).split())


def normalize_question(text: str) -> str:
    """The key under which two questions count as the same (see :func:`normalize_text`)."""
    return normalize_text(text)


# ---------------------------------------------------------------------------- parsing
def _clip(text: str, width: int = 80) -> str:
    text = repr(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def split_lines(data: str | bytes) -> list[str | None]:
    """Physical lines of ``data``, without their ``\\n`` / ``\\r\\n`` ending.

    A leading byte-order mark is removed. For bytes, a line that is not valid UTF-8 becomes
    ``None``. A final line ending does not start another line.
    """
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        raw = data.split(b"\n")
        if raw and raw[-1] == b"":
            raw.pop()
        out: list[str | None] = []
        for line in raw:
            try:
                out.append(line.removesuffix(b"\r").decode("utf-8"))
            except UnicodeDecodeError:
                out.append(None)
        return out
    if not isinstance(data, str):
        raise TypeError(f"split_lines: expected str or bytes, got {type(data).__name__}")
    data = data.removeprefix(_BOM)
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def parse_row(text: str) -> tuple[tuple[str, str, int] | None, str | None]:
    """Parse one physical line into ``(question, answer, label)``, or give the reason it fails."""
    if not text.strip():
        return None, "empty line"
    try:
        fields = next(csv.reader([text], strict=True, skipinitialspace=True))
    except csv.Error as exc:
        msg = str(exc)
        if "unexpected end of data" in msg:
            msg = "unterminated quoted field (a field may not span lines)"
        elif "new-line" in msg:
            msg = "carriage return inside the line"
        return None, f"malformed CSV: {msg}"
    except StopIteration:  # pragma: no cover - csv yields one record for a non-empty line
        return None, "empty line"
    if len(fields) != len(HEADER):
        hint = ": a comma inside an unquoted field? quote it" if len(fields) > 3 else ""
        return None, f"expected 3 fields (soru,cevap,etiket), got {len(fields)}{hint}"
    fields = [f.strip() for f in fields]
    for name, value in zip(HEADER, fields, strict=True):
        if not value:
            return None, f"empty field: {name}"
    label = LABELS.get(fields[2])
    if label is None:
        return None, f"label must be +1, -1 or 1, got {_clip(fields[2], 30)}"
    return (fields[0], fields[1], label), None


def header_key(name: str) -> str:
    """A header field's comparison key: NFKC, Turkish lower case, dotted and dotless i folded
    together, so ``ETİKET``, ``ETIKET`` and ``etiket`` all read as ``etiket``."""
    return turkish_lower(unicodedata.normalize("NFKC", name.strip())).replace("ı", "i")


#: Why a first line holding a lone carriage return is not a header: old Mac line endings.
OLD_MAC = ("old Mac line endings: the lines end with a lone \\r (carriage return); save the "
           "file with \\n or \\r\\n line endings")


def _header_problem(text: str, expected: Sequence[str]) -> str | None:
    """None when ``text`` is the header ``expected`` (see :func:`header_key`), else why not."""
    try:
        fields = next(csv.reader([text], strict=True, skipinitialspace=True))
    except (csv.Error, StopIteration):
        fields = []
    if [header_key(f) for f in fields] == list(expected):
        return None
    if "\r" in text:
        return OLD_MAC
    return f"expected the header {','.join(expected)}"


def parse_qa(data: str | bytes, *, source: str = "<string>", strict: bool = True,
             header: bool = True, line_numbers: Sequence[int] | None = None) -> QADataset:
    """Parse and validate question/answer CSV text; see the module docstring for the rules.

    ``header=False`` parses rows only (for example the cleaned lines of an LLM's reply);
    ``line_numbers`` gives each line the number to report it under (default 1, 2, ...).
    Raises :class:`QADataError` when ``strict`` and anything is wrong.
    """
    lines = split_lines(data)
    if line_numbers is None:
        line_numbers = range(1, len(lines) + 1)
    elif len(line_numbers) != len(lines):
        raise ValueError(f"parse_qa: {len(line_numbers)} line numbers for {len(lines)} lines")
    rejected: list[Rejected] = []
    parsed: list[tuple[int, str, str, int]] = []
    header_ok = False
    for offset, text in enumerate(lines):
        number = line_numbers[offset]
        if text is None:
            rejected.append(Rejected(number, "", "not valid UTF-8"))
            continue
        if header and offset == 0:
            problem = _header_problem(text, HEADER)
            header_ok = problem is None
            if problem is not None:
                rejected.append(Rejected(number, text, problem))
            continue
        row, reason = parse_row(text)
        if row is None:
            assert reason is not None  # parse_row gives the reason for every line it refuses
            rejected.append(Rejected(number, text, reason))
        else:
            parsed.append((number, *row))

    texts = dict(zip(line_numbers, lines, strict=True))
    kept, cross = _check_rows(parsed, texts)
    rejected = sorted(rejected + cross, key=lambda r: r.line)
    dataset = QADataset(
        questions=[q for _, q, _, _ in kept],
        answers=[a for _, _, a, _ in kept],
        labels=np.array([y for *_, y in kept], dtype=np.int64),
        lines=[n for n, *_ in kept],
        rejected=rejected,
        source=source,
        n_lines=len(lines),
        header=header_ok,
    )
    if strict:
        problems = list(dataset.rejected)
        if not lines:
            problems.append(Rejected(1, "", "empty file: expected the header"
                                     if header else "empty input"))
        if problems:
            raise QADataError([(source, r) for r in problems], what=source)
    return dataset


def _check_rows(parsed: list[tuple[int, str, str, int]], texts: Mapping[int, str | None],
                ) -> tuple[list[tuple[int, str, str, int]], list[Rejected]]:
    """Duplicate and pair checks; returns the kept rows and the rejected ones."""
    rejected: list[Rejected] = []
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    contradicted: dict[str, str] = {}  # question -> why: one of its answers has both labels
    unique = []
    for number, q, a, y in parsed:
        key = (normalize_question(q), normalize_text(a))
        if key in seen:
            first, first_label = seen[key]
            why = f"duplicate of line {first}"
            if first_label != y:
                why += " with the opposite label"
                contradicted.setdefault(key[0], (
                    f"contradiction: the answer on line {first} is labelled both +1 and -1 "
                    f"(line {number} repeats it with the other label), so the data cannot say "
                    f"which answers of this question are right"))
            rejected.append(Rejected(number, texts[number] or "", why))
            continue
        seen[key] = (number, y)
        unique.append((number, q, a, y))

    groups: dict[str, list[tuple[int, str, str, int]]] = {}
    for row in unique:
        groups.setdefault(normalize_question(row[1]), []).append(row)
    bad: dict[int, str] = {}
    for rows in groups.values():
        pos = [r[0] for r in rows if r[3] == 1]
        neg = [r[0] for r in rows if r[3] == -1]
        if len(pos) == 1 and len(neg) == 1:
            continue
        if len(pos) > 1 or len(neg) > 1:
            parts = []
            if len(pos) > 1:
                parts.append(f"{len(pos)} answers labelled +1 (lines {_join(pos)})")
            if len(neg) > 1:
                parts.append(f"{len(neg)} answers labelled -1 (lines {_join(neg)})")
            why = "question has " + " and ".join(parts) + "; it needs exactly one +1 and one -1"
        else:
            missing = "-1" if pos else "+1"
            why = f"incomplete pair: the question has no {missing} answer"
        for r in rows:
            bad[r[0]] = why
    for rows in groups.values():  # a complete pair whose question is contradicted elsewhere
        contradiction = contradicted.get(normalize_question(rows[0][1]))
        if contradiction is not None:
            for r in rows:
                bad.setdefault(r[0], contradiction)
    kept = [r for r in unique if r[0] not in bad]
    rejected += [Rejected(n, texts[n] or "", why) for n, why in bad.items()]
    return kept, rejected


def _join(numbers: list[int], shown: int = 10) -> str:
    """The line numbers, the first ``shown`` of them and how many more."""
    text = ", ".join(str(n) for n in numbers[:shown])
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def load_qa(path: str | os.PathLike, strict: bool = True) -> QADataset:
    """Load and validate one split (see the module docstring); ``source`` is the file name."""
    path = Path(path)
    data = path.read_bytes()
    return parse_qa(data, source=str(path), strict=strict)


# ---------------------------------------------------------------------------- splits
def validate_splits(train: QADataset, test: QADataset, strict: bool = True) -> QADataset:
    """Check that no question of ``test`` appears in ``train`` (after normalisation).

    ``strict=True`` raises :class:`QADataError` listing each shared question with its line in
    both files and returns ``test`` unchanged otherwise. ``strict=False`` returns a copy of
    ``test`` where those rows are moved to ``rejected``, so the split keeps complete pairs.
    """
    first_line: dict[str, int] = {}
    for q, n in zip(train.questions, train.lines, strict=True):
        first_line.setdefault(normalize_question(q), n)
    keep, extra = [], []
    for q, a, y, n in zip(test.questions, test.answers, test.labels, test.lines, strict=True):
        other = first_line.get(normalize_question(q))
        keep.append(other is None)
        if other is not None:
            text = format_row(q, a, int(y))
            extra.append(Rejected(n, text, f"question also in {train.source}, line {other}"))
    if strict:
        if extra:
            raise QADataError([(test.source, r) for r in extra],
                              what=f"{train.source} and {test.source} share questions")
        return test
    return test.subset(keep, extra)


def load_splits(train_path: str | os.PathLike, test_path: str | os.PathLike,
                strict: bool = True, topics: str | os.PathLike | None = None,
                ) -> tuple[QADataset, QADataset]:
    """Load both splits and check them against each other (:func:`validate_splits`).

    With ``topics`` (a ``topics.csv``, see :func:`load_topics`) each split's ``kinds`` is set
    from it; a question it does not list, or lists under the other split, is a problem. With
    ``strict=True`` every problem of both files, of their overlap and of the topics is raised
    in one :class:`QADataError`.
    """
    problems: list[tuple[str, Rejected]] = []
    splits = []
    for path in (train_path, test_path):
        try:
            splits.append(load_qa(path, strict=strict))
        except QADataError as exc:
            problems += exc.problems
            splits.append(load_qa(path, strict=False))
    train, test = splits
    try:
        test = validate_splits(train, test, strict=strict)
    except QADataError as exc:
        problems += exc.problems
    if topics is not None:
        table = load_topics(topics)
        for name, ds in (("train", train), ("test", test)):
            ds.kinds, missing = table.kinds_of(ds, name)
            problems += missing
    if problems:
        raise QADataError(problems, what=f"{train_path} / {test_path}")
    return train, test


# ---------------------------------------------------------------------------- topics and kinds
TOPICS_HEADER = ("bolum", "konu", "soru", "tur")


@dataclass
class Topics:
    """The rows of a ``topics.csv``: for each question (by :func:`normalize_question`), its
    split (``bolum``), topic (``konu``) and kind (``tur``), with the line it stands on."""

    source: str
    entries: dict[str, tuple[str, str, str, int]]

    def kinds_of(self, ds: QADataset, split: str) -> tuple[np.ndarray, list[tuple[str, Rejected]]]:
        """Each row's kind, and a problem for every row whose question is not listed under
        ``split``."""
        kinds, problems = [], []
        for q, n in zip(ds.questions, ds.lines, strict=True):
            entry = self.entries.get(normalize_question(q))
            if entry is None or entry[0] != split:
                where = "not listed" if entry is None else \
                    f"listed under {entry[0]!r} (line {entry[3]}), not {split!r}"
                problems.append((ds.source, Rejected(n, q, f"question {where} in {self.source}")))
            kinds.append("" if entry is None else entry[2])
        return np.array(kinds, dtype=str), problems


def load_topics(path: str | os.PathLike) -> Topics:
    """Read a ``topics.csv`` (header ``bolum,konu,soru,tur``, UTF-8).

    ``bolum`` is ``train`` or ``test``; ``tur`` (the kind of the wrong answer) is a name such
    as ``fact``, ``non_answer`` or ``other_answer``. Every problem (bad header, wrong field
    count, empty field, unknown split, a question listed twice) is raised in one
    :class:`QADataError`.
    """
    source = str(path)
    lines = split_lines(Path(path).read_bytes())
    problems: list[Rejected] = []
    entries: dict[str, tuple[str, str, str, int]] = {}
    problem = (f"expected the header {','.join(TOPICS_HEADER)}" if not lines or lines[0] is None
               else _header_problem(lines[0], TOPICS_HEADER))
    if problem is not None:
        problems.append(Rejected(1, lines[0] or "" if lines else "", problem))
    for number, text in enumerate(lines[1:], start=2):
        if text is None:
            problems.append(Rejected(number, "", "not valid UTF-8"))
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([text], strict=True), [])]
        except csv.Error as exc:
            problems.append(Rejected(number, text, f"malformed CSV: {exc}"))
            continue
        if len(fields) != len(TOPICS_HEADER) or not all(fields):
            problems.append(Rejected(number, text, f"expected 4 non-empty fields "
                                                   f"({','.join(TOPICS_HEADER)})"))
            continue
        split, topic, question, kind = fields
        if split not in ("train", "test"):
            problems.append(Rejected(number, text, f"bolum must be train or test, got {split!r}"))
            continue
        key = normalize_question(question)
        if key in entries:
            problems.append(Rejected(number, text, f"question listed again (first on line "
                                                   f"{entries[key][3]})"))
            continue
        entries[key] = (split, topic, kind, number)
    if problems:
        raise QADataError([(source, r) for r in problems], what=source)
    return Topics(source, entries)


# ---------------------------------------------------------------------------- writing
def format_row(question: str, answer: str, label: int) -> str:
    """One CSV line (no line ending): fields quoted only when needed, label as ``+1``/``-1``."""
    if label not in (1, -1):
        raise ValueError(f"format_row: label must be +1 or -1, got {label!r}")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([question, answer, "+1" if label == 1 else "-1"])
    return buf.getvalue().removesuffix("\n")


def write_qa(path: str | os.PathLike, rows: Iterable[tuple[str, str, int]]) -> Path:
    """Write ``(question, answer, label)`` rows with the header, UTF-8, ``\\n`` endings,
    atomically (a temporary file in the same folder, fsync, then rename over ``path``)."""
    lines = [",".join(HEADER)] + [format_row(q, a, int(y)) for q, a, y in rows]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`minidl.atomic.atomic_write`),
    creating its folder if needed."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data), make_parents=True)
