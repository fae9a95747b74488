"""Generate Turkish question/answer rows with a local LLM server.

    python -m experiments.generate_qa --out data/qa/_generated/train.csv --count 150 \\
        --other data/qa/test.csv [--api ollama|openai] [--url URL] [--model NAME] \\
        [--temperature 0.7] [--seed 42] [--timeout 300] [--batch 25] [--max-attempts 20]

Each attempt sends one Turkish prompt (the study's rules, see ``SPEC.md`` part A) to the server,
cleans the reply (:func:`experiments.qa.llm_reply.clean_reply`: ``<think>`` blocks, code fences,
announcements, numbering only where it is a numbered list), validates the rows
(:func:`minidl.datasets.parse_qa`: field count, labels, one +1 and one -1 per question) and
drops questions already generated or present in the ``--other`` split(s). Accepted rows go to
``--out`` (rewritten atomically after every attempt, so an interruption loses nothing gathered
so far); every line that was not accepted goes to ``--rejected`` (default
``<out>.rejected.csv``, columns ``attempt,line,text,reason``, ``line`` being the line in that
attempt's reply), and so does every line that was kept only after a change (its numbering
removed: reason ``changed: ...``, text as the model wrote it). It stops at ``--count`` pairs or
after ``--max-attempts`` requests. An existing ``--out`` is resumed, not overwritten (it must
pass the loader's strict checks), and its rejected file is appended to. ``--out``,
``--rejected`` and the ``--other`` files must be distinct files (symbolic links, hard links and
other spellings of a path are seen through): otherwise nothing is done and the exit status is 2.

Servers: Ollama's ``/api/chat`` (``--api ollama``, default ``http://localhost:11434``) or any
OpenAI-compatible ``/v1/chat/completions`` (``--api openai``, default ``http://localhost:1234``,
LM Studio's port; llama.cpp's ``llama-server`` listens on 8080). Only the URL given is
contacted (``http://`` or ``https://``): no proxy, no redirects. ``--timeout`` bounds each
request's whole time, however slowly a server trickles its answer, and a reply may not exceed
16 MiB. Attempt ``k`` uses seed ``seed + k - 1``. Arguments are checked before anything is done:
``--count``, ``--batch`` and ``--max-attempts`` at least 1, ``--timeout`` a finite number > 0,
``--temperature`` a finite number >= 0, ``--url`` a valid http(s) URL; ``--out``'s folder is
created before the first request (an error if part of that path is a file).

Exit status: 0 when ``--count`` pairs were gathered, 1 when the attempts ran out first, 2 when
the server could not be used (the message names the URL and how to start a server).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import io
import json
import math
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from experiments.flags import positive_int
from experiments.qa.llm_reply import clean_reply
from minidl.atomic import make_folder, same_file
from minidl.cli import path_arg
from minidl.datasets.qa import (
    QADataError,
    QADataset,
    Rejected,
    atomic_write_text,
    format_row,
    load_qa,
    normalize_question,
    parse_qa,
    parse_row,
    write_qa,
)
from minidl.errors import MinidlError

APIS = {
    "ollama": ("http://localhost:11434", "/api/chat"),
    "openai": ("http://localhost:1234", "/v1/chat/completions"),
}
DEFAULT_MODEL = "gemma2:9b"
MAX_REPLY_BYTES = 16 * 2**20  # a chat reply of a few thousand tokens is tens of kilobytes
TOPICS = "makine öğrenmesi, istatistik, fizik ve genel bilim"

SYSTEM_PROMPT = (
    "Türkçe soru-cevap veri kümesi hazırlayan bir yardımcısın. Yanıtın yalnızca CSV "
    "satırlarından oluşur; başka hiçbir şey yazmazsın."
)

USER_PROMPT = """\
{n} yeni soru için CSV satırları yaz. Konular: {topics}.

Kurallar:
1. Her satır şu biçimde olsun: soru,cevap,etiket
2. Her soru için tam olarak iki satır yaz: bir doğru cevap (etiket +1) ve bir yanlış cevap \
(etiket -1). Toplam {rows} satır.
3. Yanlış cevap inandırıcı olsun: doğru cevapla aynı konuda, benzer uzunlukta ve aynı üslupta \
yazılsın. Doğru ile yanlış cevap "değil", "sadece", "yalnızca" gibi sözcüklerle ya da uzunlukla \
ayırt edilemesin.
4. Cevap soruyu tekrar etmesin; tam bir cümle ya da kısa bir ifade olsun.
5. İçinde virgül geçen alanı çift tırnak içine al, örneğin "3,14".
6. Başlık satırı, açıklama, yorum, numaralandırma, madde işareti, kod bloğu (```), JSON ya da \
<think> bloğu yazma. İlk satırdan son satıra kadar yalnızca CSV satırları olsun.
7. Sorular birbirinden farklı olsun ve aşağıdaki listedeki soruları tekrar etme.

Örnek (bu soruyu kullanma):
Türkiye'nin başkenti neresidir?,Türkiye'nin başkenti Ankara'dır.,+1
Türkiye'nin başkenti neresidir?,Türkiye'nin başkenti Kars'tır.,-1
{avoid}"""


class LLMServerError(MinidlError, RuntimeError):
    """The LLM server could not be reached, or did not answer with a usable reply."""


def start_hint(api: str, model: str) -> str:
    """How to get a server running, for error messages."""
    if api == "ollama":
        return (f"Start Ollama with `ollama serve` (and fetch the model with "
                f"`ollama pull {model}`), or pass --url for a server elsewhere; for LM Studio "
                f"or llama.cpp's llama-server use --api openai.")
    return ("Start an OpenAI-compatible server: LM Studio (Developer tab > Start Server, "
            "http://localhost:1234) or llama.cpp (`llama-server -m MODEL.gguf --port 8080`), "
            "and pass its address with --url; for Ollama use --api ollama.")


@dataclass
class ChatClient:
    """A minimal client for Ollama's ``/api/chat`` or an OpenAI-compatible chat endpoint.

    ``timeout`` bounds each request's total time (connecting, sending, and reading the whole
    reply, however slowly the server trickles it); ``max_reply_bytes`` bounds the reply's size.
    Only ``http://`` and ``https://`` URLs are accepted; no proxy is used, no redirect followed.
    """

    api: str = "ollama"
    url: str | None = None
    model: str = DEFAULT_MODEL
    temperature: float = 0.7
    timeout: float = 300.0
    max_reply_bytes: int = MAX_REPLY_BYTES

    def __post_init__(self):
        if self.api not in APIS:
            raise ValueError(f"ChatClient: api must be one of {sorted(APIS)}, got {self.api!r}")
        _check_number("ChatClient: temperature", self.temperature, minimum=0.0)
        _check_number("ChatClient: timeout", self.timeout, minimum=0.0, strict=True)
        if isinstance(self.max_reply_bytes, bool) or not isinstance(self.max_reply_bytes, int) \
                or self.max_reply_bytes < 1:
            raise ValueError(f"ChatClient: max_reply_bytes must be a positive int, got "
                             f"{self.max_reply_bytes!r}")
        base, path = APIS[self.api]
        url = (self.url or base).rstrip("/")
        if not url.endswith(path):
            url += path
        self.endpoint = url
        self._parts = _split_url(url, self.url or base)

    def payload(self, messages: list[dict], seed: int | None) -> dict:
        if self.api == "ollama":
            options = {"temperature": self.temperature}
            if seed is not None:
                options["seed"] = seed
            return {"model": self.model, "messages": messages, "stream": False,
                    "options": options}
        body = {"model": self.model, "messages": messages, "stream": False,
                "temperature": self.temperature}
        if seed is not None:
            body["seed"] = seed
        return body

    def chat(self, messages: list[dict], seed: int | None = None) -> str:
        """Send ``messages``; return the assistant's text or raise :class:`LLMServerError`."""
        data = json.dumps(self.payload(messages, seed), allow_nan=False).encode("utf-8")
        hint = start_hint(self.api, self.model)
        status, reason, body = self._post(data, hint)
        if status != 200:
            extra = ""
            if self.api == "ollama" and status == 404:
                extra = f" Is the model pulled? `ollama pull {self.model}`."
            raise LLMServerError(f"the LLM server at {self.endpoint} answered HTTP {status} "
                                 f"{reason}: {_excerpt(body)}.{extra} {hint}")
        return self._content(body)

    def _post(self, data: bytes, hint: str) -> tuple[int, str, bytes]:
        """POST ``data``; the status, reason and body, all within ``timeout`` seconds in total
        and ``max_reply_bytes`` bytes, or :class:`LLMServerError` naming the URL."""
        scheme, host, port, target = self._parts
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=self.timeout)
        expired = threading.Event()

        def expire():  # wakes a read blocked on a trickling server: the total time is bounded
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout, expire)
        timer.daemon = True
        deadline = time.monotonic() + self.timeout
        too_slow = (f"no complete answer from the LLM server at {self.endpoint} within "
                    f"{self.timeout:g} s (raise --timeout). {hint}")
        stage = "connect"
        timer.start()
        try:
            conn.connect()
            stage = "talk"
            conn.request("POST", target, body=data, headers={
                "Content-Type": "application/json", "Accept": "application/json"})
            response = conn.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.strip().isdigit() \
                    and int(length) > self.max_reply_bytes:
                raise LLMServerError(self._too_big(f"announced {int(length)} bytes, more"))
            body = bytearray()
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read1(65536) if hasattr(response, "read1") else \
                    response.read(65536)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_reply_bytes:
                    raise LLMServerError(self._too_big("sent more bytes"))
            if expired.is_set():
                raise TimeoutError
            return response.status, response.reason, bytes(body)
        except LLMServerError:
            raise
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise LLMServerError(too_slow) from exc
            if stage == "connect":
                raise LLMServerError(f"cannot reach the LLM server at {self.endpoint} "
                                     f"({_reason(exc)}). {hint}") from exc
            raise LLMServerError(f"the connection to the LLM server at {self.endpoint} failed "
                                 f"({type(exc).__name__}: {exc}). {hint}") from exc
        finally:
            timer.cancel()
            conn.close()

    def _too_big(self, what: str) -> str:
        return (f"the LLM server at {self.endpoint} {what} than the limit of "
                f"{self.max_reply_bytes} bytes for a reply; is it the chat endpoint of an "
                f"LLM server?")

    def _content(self, body: bytes) -> str:
        try:
            obj = json.loads(body.decode("utf-8"))
            if self.api == "ollama":
                content = obj["message"]["content"]
            else:
                content = obj["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMServerError(f"the LLM server at {self.endpoint} answered with an unexpected "
                                 f"body ({type(exc).__name__}): {_excerpt(body)}; is --api "
                                 f"{self.api} the right API for it?") from exc
        if not isinstance(content, str):
            raise LLMServerError(f"the LLM server at {self.endpoint} answered with a "
                                 f"{type(content).__name__} as the message content")
        return content


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or \
        type(exc).__name__


def _check_number(name: str, value, minimum: float, strict: bool = False) -> float:
    """``value`` as a finite float >= ``minimum`` (> with ``strict``), or a ValueError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _split_url(url: str, given: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of an ``http(s)://`` URL, or LLMServerError naming it."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise LLMServerError(f"--url {given!r} is not a valid URL ({exc}); give one such as "
                             f"http://localhost:11434") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise LLMServerError(f"--url {given!r}: only http:// and https:// URLs with a host are "
                             f"supported, such as http://localhost:11434")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, host, port, target


def _excerpt(body: bytes, width: int = 200) -> str:
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return (text[:width] + "...") if len(text) > width else (text or "(empty body)")


def build_messages(n_pairs: int, avoid: Sequence[str] = (), topics: str = TOPICS) -> list[dict]:
    """The chat messages asking for ``n_pairs`` new questions, none of ``avoid``."""
    avoid_text = ""
    if avoid:
        avoid_text = "\nTekrar etme:\n" + "\n".join(f"- {q}" for q in avoid) + "\n"
    user = USER_PROMPT.format(n=n_pairs, rows=2 * n_pairs, topics=topics, avoid=avoid_text)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass
class GenerationResult:
    """What :func:`generate` gathered: the rows on disk, the pairs, the attempts made."""

    rows: list[tuple[str, str, int]] = field(default_factory=list)
    n_pairs: int = 0
    attempts: int = 0
    n_rejected: int = 0
    out: Path | None = None
    rejected_path: Path | None = None


def _rows_by_question(ds: QADataset) -> list[list[tuple[int, str, str, int]]]:
    groups: dict[str, list] = {}
    for q, a, y, n in zip(ds.questions, ds.answers, ds.labels, ds.lines, strict=True):
        groups.setdefault(normalize_question(q), []).append((n, q, a, int(y)))
    return list(groups.values())


def _rejected_csv(records: list[tuple[int, Rejected]], previous: str = "") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not previous:
        writer.writerow(["attempt", "line", "text", "reason"])
    writer.writerows([attempt, r.line, r.text, r.reason] for attempt, r in records)
    return previous + buf.getvalue()


def check_distinct(outputs: Sequence[tuple[str, Path]],
                   inputs: Sequence[tuple[str, Path]] = ()) -> None:
    """Refuse, with a :class:`ValueError` naming both, two outputs that are one file, or an
    output that is also an input; ``outputs`` and ``inputs`` are ``(name, path)`` pairs."""
    for i, (name, path) in enumerate(outputs):
        for other_name, other in [*outputs[i + 1:], *inputs]:
            if same_file(path, other):
                raise ValueError(
                    f"{name} {str(path)!r} and {other_name} {str(other)!r} are the same file "
                    f"({path.resolve()}): writing one would destroy the other; give another path")


def other_questions(path: str | Path) -> dict[str, str]:
    """The questions of an ``--other`` split, ``{normalize_question(q): "path, line n"}``, from
    every line that holds a row, a pair's faults aside (a question whose pair is incomplete is
    still taken). A file whose questions cannot all be read (no header, a line that is not
    UTF-8, a malformed line) is a :class:`QADataError` naming it and the lines: de-duplicating
    against part of a split would let its questions through unnoticed."""
    ds = load_qa(path, strict=False)
    taken = {normalize_question(q): f"{path}, line {n}"
             for q, n in zip(ds.questions, ds.lines, strict=True)}
    unreadable = []
    for r in ds.rejected:
        row, _ = parse_row(r.text) if r.line > 1 else (None, None)
        if row is not None:  # a row refused for the pair rules: its question is real
            taken.setdefault(normalize_question(row[0]), f"{path}, line {r.line}")
        elif r.reason not in ("empty line",):
            unreadable.append(r)
    if unreadable or not ds.header:
        raise QADataError([(str(path), r) for r in unreadable or ds.rejected[:1] or
                           [Rejected(1, "", "empty file: expected the header")]],
                          what=f"--other {path}: its questions cannot be read")
    return taken


def generate(client: ChatClient, out: str | Path, count: int, *,
             other: Sequence[str | Path] = (), rejected_path: str | Path | None = None,
             max_attempts: int = 20, batch: int = 25, seed: int | None = 42,
             topics: str = TOPICS, n_avoid: int = 40,
             log: Callable[[str], None] = print) -> GenerationResult:
    """Ask ``client`` for rows until ``out`` holds ``count`` valid pairs; see the module doc.

    Raises :class:`LLMServerError` (after everything gathered is on disk) when the server fails.
    """
    if count < 1 or batch < 1 or max_attempts < 1:
        raise ValueError(f"generate: count, batch and max_attempts must be >= 1, got "
                         f"{count}, {batch}, {max_attempts}")
    out = Path(out)
    rejected_path = Path(rejected_path) if rejected_path else out.with_suffix(".rejected.csv")
    check_distinct([("out", out), ("rejected_path", rejected_path)],
                   [("other", Path(path)) for path in other])
    for path in (out, rejected_path):  # a bad folder is found before the server is asked
        make_folder(path, who="generate")
    result = GenerationResult(out=out, rejected_path=rejected_path)
    previous = ""  # a resumed run appends to the rejected lines of the runs before it
    if out.exists():
        existing = load_qa(out, strict=True)
        result.rows = existing.rows()
        log(f"resuming: {out} already holds {existing.n_questions} pairs")
        if rejected_path.exists():
            previous = rejected_path.read_text(encoding="utf-8")
    have = {normalize_question(q) for q, _, _ in result.rows}
    result.n_pairs = len(have)
    taken: dict[str, str] = {}
    for path in other:
        for key, where in other_questions(path).items():
            taken.setdefault(key, where)
    records: list[tuple[int, Rejected]] = []
    recent = [q for q, _, y in result.rows if y == 1]

    for attempt in range(1, max_attempts + 1):
        need = count - result.n_pairs
        if need <= 0:
            break
        result.attempts = attempt
        messages = build_messages(min(batch, need), recent[-n_avoid:], topics)
        try:
            reply = client.chat(messages, seed=None if seed is None else seed + attempt - 1)
        except LLMServerError as exc:
            raise LLMServerError(f"{exc} ({result.n_pairs} pairs gathered so far are in "
                                 f"{out})") from exc
        cleaned = clean_reply(reply)
        records += [(attempt, r) for r in cleaned.removed]
        records += [(attempt, Rejected(r.line, r.text, f"changed: {r.reason}; the rest was kept"))
                    for r in cleaned.changed]
        ds = parse_qa(cleaned.text, header=False, strict=False, source=f"reply {attempt}",
                      line_numbers=cleaned.line_numbers)
        records += [(attempt, r) for r in ds.rejected]
        new = 0
        for pair in _rows_by_question(ds):
            key = normalize_question(pair[0][1])
            if key in have:
                why = "question already generated"
            elif key in taken:
                why = f"question in the other split ({taken[key]})"
            elif result.n_pairs >= count:
                why = "surplus: the requested count was already reached"
            else:
                have.add(key)
                result.rows += [(q, a, y) for _, q, a, y in pair]
                recent.append(pair[0][1])
                result.n_pairs += 1
                new += 1
                continue
            records += [(attempt, Rejected(n, format_row(q, a, y), why)) for n, q, a, y in pair]
        write_qa(out, result.rows)
        atomic_write_text(rejected_path, _rejected_csv(records, previous))
        log(f"attempt {attempt}: {new} new pairs, {result.n_pairs}/{count}; "
            f"{len(records)} lines rejected so far")
    result.n_rejected = len(records)
    return result




def _finite(text: str, minimum: float, strict: bool) -> float:
    try:
        return _check_number("the value", float(text), minimum, strict)
    except ValueError:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got "
                                         f"{text!r}") from None


def _temperature(text: str) -> float:
    return _finite(text, 0.0, strict=False)


def _timeout(text: str) -> float:
    return _finite(text, 0.0, strict=True)


def _url(text: str) -> str:
    try:
        _split_url(text, text)
    except LLMServerError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--url ")) from None
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.generate_qa",
        description="Generate Turkish question/answer CSV rows with a local LLM server.")
    p.add_argument("--out", required=True, type=path_arg, help="CSV to write (resumed if present)")
    p.add_argument("--count", type=positive_int, default=150, help="valid question pairs wanted")
    p.add_argument("--other", type=path_arg, action="append", default=[],
                   help="the other split: its questions are not reused (repeatable)")
    p.add_argument("--rejected", type=path_arg, default=None,
                   help="where rejected lines go (default <out>.rejected.csv)")
    p.add_argument("--api", choices=sorted(APIS), default="ollama")
    p.add_argument("--url", type=_url, default=None, help="server address (default: Ollama "
                   "http://localhost:11434, openai http://localhost:1234)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="model name on the server (the study used a Turkish Gemma-2 9B, 4-bit)")
    p.add_argument("--temperature", type=_temperature, default=0.7)
    p.add_argument("--seed", type=int, default=42, help="seed of attempt 1; attempt k: seed+k-1")
    p.add_argument("--timeout", type=_timeout, default=300.0,
                   help="seconds per request, all of it (connecting, sending, reading)")
    p.add_argument("--batch", type=positive_int, default=25, help="pairs asked for per request")
    p.add_argument("--max-attempts", type=positive_int, default=20)
    p.add_argument("--topics", default=TOPICS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for flag, path in (("--out", args.out), ("--rejected", args.rejected)):
        if path is not None and (not path.name or path.is_dir()):
            print(f"error: {flag} {path}: is a folder; give the CSV file to write",
                  file=sys.stderr)
            return 2
    rejected = args.rejected or args.out.with_suffix(".rejected.csv")
    try:
        check_distinct([("--out", args.out),
                        ("--rejected" if args.rejected else "the default --rejected", rejected)],
                       [("--other", path) for path in args.other])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = ChatClient(api=args.api, url=args.url, model=args.model,
                        temperature=args.temperature, timeout=args.timeout)
    print(f"asking {client.endpoint} (model {args.model}) for {args.count} pairs")
    try:
        result = generate(client, args.out, args.count, other=args.other,
                          rejected_path=args.rejected, max_attempts=args.max_attempts,
                          batch=args.batch, seed=args.seed, topics=args.topics)
    except (MinidlError, OSError) as exc:  # server failed; --out invalid; a file unreadable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.n_pairs} pairs ({len(result.rows)} rows) in {result.out}; "
          f"{result.n_rejected} rejected lines in {result.rejected_path}")
    if result.n_pairs < args.count:
        print(f"only {result.n_pairs} of {args.count} pairs after {result.attempts} attempts "
              f"(raise --max-attempts)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
