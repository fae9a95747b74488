"""Generating rows with a local LLM, against a small HTTP server started here on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments import generate_qa
from experiments.generate_qa import ChatClient, LLMServerError, build_messages, generate
from experiments.qa.llm_reply import clean_reply
from minidl.datasets import format_row, load_qa, parse_qa, write_qa

FIXTURES = Path(__file__).parent / "fixtures" / "qa"
RAW_SAMPLE = (FIXTURES / "llm_raw_sample.txt").read_text(encoding="utf-8")
SAMPLE_PAIRS = 16  # valid pairs in the sample (see test_clean_reply_of_the_raw_sample)


# ---------------------------------------------------------------------------- a fake server
class FakeLLM:
    """Answers POST /api/chat and /v1/chat/completions from a list of replies.

    Each reply is a string (wrapped in the API's JSON), or a ``(status, body)`` pair, or a float
    (sleep that long before answering). Requests are recorded as (path, payload).
    """

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length))
                fake.requests.append((self.path, payload))
                reply = fake.replies.pop(0) if fake.replies else "Bitti."
                if isinstance(reply, float):
                    time.sleep(reply)
                    reply = "geç"
                if isinstance(reply, tuple):
                    status, body = reply
                elif self.path == "/api/chat":
                    status = 200
                    body = json.dumps({"model": payload["model"], "done": True,
                                       "message": {"role": "assistant", "content": reply}})
                elif self.path == "/v1/chat/completions":
                    status = 200
                    body = json.dumps({"object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}}]})
                else:
                    status, body = 404, "404 page not found"
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)


@contextmanager
def fake_llm(replies):
    fake = FakeLLM(replies)
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pairs_reply(start: int, n: int, numbered: bool = False) -> str:
    lines = []
    for i in range(start, start + n):
        q = f"Soru numarası {i} için doğru cevap hangisidir?"
        for answer, label in ((f"Doğru cevap {i}, açıklamasıyla.", 1), (f"Yanlış cevap {i}.", -1)):
            row = format_row(q, answer, label)
            lines.append(f"{len(lines) + 1}. {row}" if numbered else row)
    return "İşte istediğiniz satırlar:\n" + "\n".join(lines) + "\nBaşka bir şey ister misiniz?"


def quiet(_msg):
    pass


# ---------------------------------------------------------------------------- cleaning
def test_clean_reply_of_the_raw_sample():
    cleaned = clean_reply(RAW_SAMPLE)
    removed = {r.line: r.reason for r in cleaned.removed}
    assert removed[1] == removed[2] == removed[3] == "inside a <think> block"
    assert removed[4].startswith("not a CSV row")  # "Veri üretmeye başlıyorum:"
    assert removed[5] == removed[46] == "code fence"
    assert cleaned.line_numbers == list(range(6, 46))
    ds = parse_qa(cleaned.text, header=False, strict=False, line_numbers=cleaned.line_numbers)
    why = {r.line: r.reason for r in ds.rejected}
    assert why[6].startswith("expected 3 fields")  # ...kaç gündür?,27,3,+1
    assert why[7] == "incomplete pair: the question has no -1 answer"
    assert "2 answers labelled +1" in why[8]  # H2O and CO2 both +1
    assert ds.n_questions == SAMPLE_PAIRS
    assert len(ds) + len(ds.rejected) == 40


def test_clean_reply_numbering_header_and_inline_think():
    # one numbering style through the list: mixed styles (1. then 2) then -) are not a list
    reply = ("</think>\nsoru,cevap,etiket\n1. A?,a,+1\n2. A?,b,-1\n3. B?,c,+1\n"
             "<think>hmm</think>B?,d,-1\n<think>\nC?,x,+1\n")
    cleaned = clean_reply(reply)
    assert [t for _, t in cleaned.lines] == ["A?,a,+1", "A?,b,-1", "B?,c,+1", "B?,d,-1"]
    assert {r.line: r.reason for r in cleaned.removed} == {
        1: "inside a <think> block", 2: "header line", 6: "inside a <think> block",
        7: "inside a <think> block", 8: "inside a <think> block"}


@given(st.text(st.sampled_from(list("ab,\"+-1 \n\r`<>/thinkTSK.)ğİ")), max_size=120))
def test_clean_reply_accounts_for_every_non_blank_line(reply):
    cleaned = clean_reply(reply)
    seen = {n for n, _ in cleaned.lines} | {r.line for r in cleaned.removed}
    lines = parse_qa(reply, header=False, strict=False).n_lines
    assert len(seen) + cleaned.n_blank == lines
    parse_qa(cleaned.text, header=False, strict=False, line_numbers=cleaned.line_numbers)


def test_prompt_is_turkish_and_states_the_rules():
    messages = build_messages(7, avoid=["Önceki soru?"])
    user = messages[-1]["content"]
    assert "7 yeni soru" in user and "14 satır" in user
    for rule in ("soru,cevap,etiket", "+1", "-1", "<think>", "kod bloğu", "numaralandırma",
                 "Türkiye'nin başkenti", "Önceki soru?"):
        assert rule in user


# ---------------------------------------------------------------------------- generation
def test_generate_with_ollama_api(tmp_path):
    other = write_qa(tmp_path / "test.csv", [("Soru numarası 103 için doğru cevap hangisidir?",
                                              "x", 1),
                                             ("Soru numarası 103 için doğru cevap hangisidir?",
                                              "y", -1)])
    replies = [RAW_SAMPLE,
               pairs_reply(100, 4) + "\n" + pairs_reply(101, 1),  # 103 is in the other split
               pairs_reply(100, 1) + "\n" + pairs_reply(200, 5)]  # 100 again; 1 pair needed
    out = tmp_path / "gen" / "train.csv"
    with fake_llm(replies) as fake:
        client = ChatClient("ollama", url=fake.url, model="tiny", temperature=0.3, timeout=5)
        result = generate(client, out, count=SAMPLE_PAIRS + 4, other=[other], seed=7, log=quiet)
    assert result.n_pairs == SAMPLE_PAIRS + 4 and result.attempts == 3
    ds = load_qa(out)
    assert ds.n_questions == SAMPLE_PAIRS + 4 and len(ds) == 2 * (SAMPLE_PAIRS + 4)

    paths = [p for p, _ in fake.requests]
    assert paths == ["/api/chat"] * 3
    payloads = [p for _, p in fake.requests]
    assert [p["options"]["seed"] for p in payloads] == [7, 8, 9]
    assert all(p["model"] == "tiny" and p["options"]["temperature"] == 0.3 for p in payloads)
    assert all(p["stream"] is False for p in payloads)

    with open(result.rejected_path, encoding="utf-8", newline="") as fh:
        rejected = list(csv.DictReader(fh))
    reasons = [r["reason"] for r in rejected]
    assert "code fence" in reasons and "inside a <think> block" in reasons
    assert any(r.startswith("expected 3 fields") for r in reasons)
    assert sum(r.startswith("duplicate of line") for r in reasons) == 2  # 101 within a reply
    assert reasons.count("question already generated") == 2  # 100 in a later reply
    assert sum(r.startswith("question in the other split") for r in reasons) == 2  # 103
    assert sum(r.startswith("surplus") for r in reasons) == 2 * 4  # 5 offered, 1 needed
    assert {r["attempt"] for r in rejected} == {"1", "2", "3"}


def test_generate_with_openai_api_and_numbered_rows(tmp_path):
    with fake_llm([pairs_reply(1, 3, numbered=True)]) as fake:
        client = ChatClient("openai", url=fake.url + "/", model="m", timeout=5)
        assert client.endpoint == fake.url + "/v1/chat/completions"
        result = generate(client, tmp_path / "t.csv", count=3, seed=None, log=quiet)
    assert result.n_pairs == 3
    assert fake.requests[0][0] == "/v1/chat/completions"
    assert "seed" not in fake.requests[0][1] and fake.requests[0][1]["model"] == "m"
    first = load_qa(tmp_path / "t.csv").questions[0]
    assert first == "Soru numarası 1 için doğru cevap hangisidir?"


def test_stops_after_max_attempts_and_resumes(tmp_path):
    out = tmp_path / "t.csv"
    with fake_llm(["Üzgünüm, yapamam.", pairs_reply(1, 2)]) as fake:
        client = ChatClient("ollama", url=fake.url, timeout=5)
        result = generate(client, out, count=4, max_attempts=2, log=quiet)
        assert result.n_pairs == 2 and result.attempts == 2
        # resume: the two pairs are kept, only two more are asked for
        fake.replies = [pairs_reply(1, 1) + "\n" + pairs_reply(3, 2)]
        result = generate(client, out, count=4, max_attempts=1, log=quiet)
    assert result.n_pairs == 4 and load_qa(out).n_questions == 4
    assert "2 yeni soru" in fake.requests[-1][1]["messages"][-1]["content"]
    text = result.rejected_path.read_text(encoding="utf-8")
    assert text.count("attempt,line,text,reason") == 1  # the resumed run appended
    assert "question already generated" in text and "not a CSV row" in text


def test_server_down_names_the_url_and_how_to_start_one(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    client = ChatClient("ollama", url=url, timeout=2)
    with pytest.raises(LLMServerError) as info:
        generate(client, tmp_path / "t.csv", count=2, log=quiet)
    message = str(info.value)
    assert f"{url}/api/chat" in message and "ollama serve" in message
    assert "0 pairs gathered so far" in message
    with pytest.raises(LLMServerError, match="LM Studio"):
        ChatClient("openai", url=url, timeout=2).chat([{"role": "user", "content": "x"}])


def test_non_200_answer_keeps_the_rows_gathered_before(tmp_path):
    out = tmp_path / "t.csv"
    replies = [pairs_reply(1, 2), (500, '{"error": "model runner crashed"}')]
    with fake_llm(replies) as fake:
        client = ChatClient("ollama", url=fake.url, timeout=5)
        with pytest.raises(LLMServerError) as info:
            generate(client, out, count=5, batch=2, log=quiet)
    message = str(info.value)
    assert "HTTP 500" in message and "model runner crashed" in message
    assert f"{fake.url}/api/chat" in message and "2 pairs gathered so far" in message
    assert load_qa(out).n_questions == 2


@pytest.mark.parametrize(("reply", "match"), [
    ((404, '{"error": "model \\"x\\" not found, try pulling it first"}'), "ollama pull"),
    ((200, "not json at all"), "unexpected body"),
    ((200, '{"choices": []}'), "unexpected body"),
    (1.0, "within 0.3 s"),
])
def test_bad_answers(reply, match):
    with fake_llm([reply]) as fake:
        client = ChatClient("ollama", url=fake.url, timeout=0.3)
        with pytest.raises(LLMServerError, match=match):
            client.chat([{"role": "user", "content": "x"}])


def test_cli(tmp_path, capsys):
    out = tmp_path / "train.csv"
    with fake_llm([pairs_reply(1, 2)]) as fake:
        code = generate_qa.main(["--out", str(out), "--count", "2", "--url", fake.url,
                                 "--model", "tiny", "--timeout", "5", "--seed", "3"])
    assert code == 0 and load_qa(out).n_questions == 2
    assert fake.requests[0][1]["options"] == {"temperature": 0.7, "seed": 3}
    assert "2 pairs (4 rows)" in capsys.readouterr().out

    code = generate_qa.main(["--out", str(tmp_path / "x.csv"), "--count", "1",
                             "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the LLM server" in err and "ollama serve" in err


# ---------------------------------------------------------------------------- hostile arguments
def _refused_before_any_request(tmp_path, capsys, argv, *expected):
    """``argv`` is refused with one clear line naming the fault, before the server is asked."""
    with fake_llm([pairs_reply(1, 2)]) as fake:
        code = generate_qa.main([*argv, "--url", fake.url, "--timeout", "5", "--count", "2"])
    err = capsys.readouterr().err
    assert code != 0 and fake.requests == []
    assert "Traceback" not in err
    for text in expected:
        assert text in err
    return err


def test_outputs_that_are_the_same_file_are_refused(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    out = tmp_path / "qa.csv"
    _refused_before_any_request(tmp_path, capsys, ["--out", str(out), "--rejected", str(out)],
                                "--out", "--rejected", "same file")
    assert not out.exists()
    # the same file under another spelling: a relative path through a folder and back
    _refused_before_any_request(tmp_path, capsys, ["--out", str(out), "--rejected",
                                                   str(tmp_path / "sub" / ".." / "qa.csv")],
                                "same file")
    # through a symbolic link
    (tmp_path / "link.csv").symlink_to(out)
    _refused_before_any_request(tmp_path, capsys, ["--out", str(out), "--rejected",
                                                   str(tmp_path / "link.csv")], "same file")
    assert not out.exists()


def test_a_hard_link_or_an_input_as_output_is_refused(tmp_path, capsys):
    other = write_qa(tmp_path / "test.csv", [("S?", "a", 1), ("S?", "b", -1)])
    before = other.read_bytes()
    (tmp_path / "hard.csv").hardlink_to(other)
    _refused_before_any_request(tmp_path, capsys, ["--out", str(tmp_path / "hard.csv"),
                                                   "--other", str(other)],
                                "--out", "--other", "same file")
    _refused_before_any_request(tmp_path, capsys, ["--out", str(tmp_path / "new.csv"),
                                                   "--rejected", str(other), "--other",
                                                   str(other)], "--rejected", "--other")
    assert other.read_bytes() == before
    with pytest.raises(ValueError, match="same file"):
        generate(ChatClient(url="http://127.0.0.1:1"), tmp_path / "x.csv", 1,
                 rejected_path=tmp_path / "x.csv", log=quiet)


# ---------------------------------------------------------------------------- numbering is not text
def _kept(reply):
    cleaned = clean_reply(reply)
    return [t for _, t in cleaned.lines], cleaned


@pytest.mark.parametrize("rows", [
    ["19. yüzyılda hangi icat yapıldı?,Telefon.,+1",
     "19. yüzyılda hangi icat yapıldı?,Buhar makinesi.,-1"],
    ["3 - 2 kaçtır?,Bir.,+1", "3 - 2 kaçtır?,İki.,-1"],
    ["- 1 ile - 1 toplanırsa ne olur?,Eksi iki.,+1",
     "- 1 ile - 1 toplanırsa ne olur?,Sıfır.,-1"],
    ["* işareti çarpma mıdır?,Evet.,+1", "* işareti çarpma mıdır?,Hayır.,-1"],
    ["1. Dünya Savaşı hangi yıl başladı?,1914,+1", "1. Dünya Savaşı hangi yıl başladı?,1939,-1",
     "2. Dünya Savaşı hangi yıl bitti?,1945,+1", "2. Dünya Savaşı hangi yıl bitti?,1918,-1"],
])
def test_text_that_looks_like_numbering_is_kept(rows):
    kept, cleaned = _kept("İşte satırlar:\n" + "\n".join(rows) + "\n")
    assert kept == rows
    assert cleaned.changed == []


def test_numbered_list_is_unnumbered_and_every_change_recorded():
    rows = ["1. Dünya Savaşı hangi yıl başladı?,1914,+1",
            "1. Dünya Savaşı hangi yıl başladı?,1939,-1",
            "19. yüzyılda hangi icat yapıldı?,Telefon.,+1",
            "19. yüzyılda hangi icat yapıldı?,Uçak.,-1"]
    numbered = [f"{i}. {row}" for i, row in enumerate(rows, start=1)]
    kept, cleaned = _kept("\n".join(numbered))
    assert kept == rows  # one numbering removed from each, the ordinal kept
    assert [(c.line, c.text) for c in cleaned.changed] == list(enumerate(numbered, start=1))
    assert all("numbering" in c.reason for c in cleaned.changed)
    assert "'1.'" in cleaned.changed[0].reason

    bullets = ["- A?,a,+1", "- A?,b,-1", "- B?,c,+1", "- B?,d,-1"]
    kept, cleaned = _kept("\n".join(bullets))
    assert kept == [b[2:] for b in bullets]
    assert [c.line for c in cleaned.changed] == [1, 2, 3, 4]


def test_numbered_rows_reach_the_rejected_file_as_changes(tmp_path):
    with fake_llm([pairs_reply(1, 2, numbered=True)]) as fake:
        client = ChatClient("ollama", url=fake.url, timeout=5)
        result = generate(client, tmp_path / "t.csv", count=2, log=quiet)
    with open(result.rejected_path, encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    changes = [r for r in records if r["reason"].startswith("changed:")]
    assert [r["line"] for r in changes] == ["2", "3", "4", "5"]
    assert changes[0]["text"].startswith("1. Soru numarası 1")


def test_nested_and_stray_think_tags():
    kept, cleaned = _kept("<think>a <think>b</think> sızan,satır,+1</think>\nA?,a,+1\nA?,b,-1")
    assert kept == ["A?,a,+1", "A?,b,-1"]
    assert {r.line: r.reason for r in cleaned.removed} == {1: "inside a <think> block"}

    # a stray closing tag after valid rows: the rows are kept, the tag is named for what it is
    kept, cleaned = _kept("A?,a,+1\nA?,b,-1\n</think>\nB?,c,+1\nB?,d,-1")
    assert kept == ["A?,a,+1", "A?,b,-1", "B?,c,+1", "B?,d,-1"]
    assert [(r.line, r.reason) for r in cleaned.removed] == [
        (3, "stray </think> with no opening tag")]
    kept, cleaned = _kept("<think>x</think>\nA?,a,+1\n</think>\nA?,b,-1")
    assert kept == ["A?,a,+1", "A?,b,-1"]
    assert {r.line: r.reason for r in cleaned.removed} == {
        1: "inside a <think> block", 3: "stray </think> with no opening tag"}
    # thinking whose opening tag was in the chat template is still removed, and says so
    kept, cleaned = _kept("Düşünüyorum: önce soruları seçeyim.\n</think>\nA?,a,+1\nA?,b,-1")
    assert kept == ["A?,a,+1", "A?,b,-1"]
    assert [r.line for r in cleaned.removed] == [1, 2]


@given(st.text(st.sampled_from(list("ab,\"+-1 2.)*\n`<>/thinkğİ")), max_size=160))
def test_every_kept_line_is_as_written_or_its_change_recorded(reply):
    cleaned = clean_reply(reply)
    lines = reply.split("\n")
    noted = {r.line for r in cleaned.removed} | {r.line for r in cleaned.changed}
    for n, text in cleaned.lines:
        assert n in noted or text == lines[n - 1].strip()


# ---------------------------------------------------------------------------- a hostile server
@contextmanager
def raw_server(respond, seconds=10.0):
    """A one-connection-at-a-time TCP server on 127.0.0.1 running ``respond(conn, stop)`` for
    each connection after reading the request head; it stops at exit or after ``seconds``."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.05)
    deadline = time.monotonic() + seconds

    def serve():
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    respond(conn, lambda: stop.is_set() or time.monotonic() > deadline)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def trickle_head(conn, stopped):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 500:
        if stopped():
            return
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


def trickle_body(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    while not stopped():
        conn.sendall(b" ")
        time.sleep(0.05)


def endless_body(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    chunk, sent = b'{"message": "' + b"x" * 65536, 0
    while not stopped() and sent < 64 * 2**20:
        conn.sendall(chunk)
        sent += len(chunk)


def huge_length(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 99999999999\r\n\r\n{")


@pytest.mark.parametrize("respond", [trickle_head, trickle_body])
def test_timeout_bounds_the_whole_request(respond):
    with raw_server(respond) as url:
        client = ChatClient("ollama", url=url, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(LLMServerError) as info:
            client.chat([{"role": "user", "content": "x"}])
        took = time.monotonic() - start
    assert took < 3.0
    assert f"{url}/api/chat" in str(info.value) and "0.5 s" in str(info.value)


@pytest.mark.parametrize("respond", [endless_body, huge_length])
def test_reply_size_is_bounded(respond):
    with raw_server(respond) as url:
        client = ChatClient("ollama", url=url, timeout=20, max_reply_bytes=2**20)
        with pytest.raises(LLMServerError) as info:
            client.chat([{"role": "user", "content": "x"}])
    message = str(info.value)
    assert f"{url}/api/chat" in message and "1048576 bytes" in message


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1/", "http://[::1", "127.0.0.1:11434",
                                 "http://", "file:///etc/passwd"])
def test_unusable_url_is_refused_naming_it(url):
    with pytest.raises(LLMServerError) as info:
        ChatClient("ollama", url=url, timeout=1)
    assert url in str(info.value) and "http://" in str(info.value)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--count", "0"], "--count"),
    (["--batch", "0"], "--batch"),
    (["--max-attempts", "0"], "--max-attempts"),
    (["--timeout", "-1"], "--timeout"),
    (["--timeout", "nan"], "--timeout"),
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "inf"], "--temperature"),
    (["--temperature", "-0.5"], "--temperature"),
    (["--url", "http://[::1"], "http://[::1"),
    (["--url", "ftp://127.0.0.1:1/"], "ftp://127.0.0.1:1/"),
])
def test_bad_arguments_give_one_clear_line(tmp_path, capsys, argv, expected):
    out = tmp_path / "t.csv"
    with fake_llm([pairs_reply(1, 2)]) as fake, pytest.raises(SystemExit) as info:
        generate_qa.main(["--out", str(out), "--url", fake.url, "--timeout", "5", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and fake.requests == []
    assert "Traceback" not in err and expected in err
    assert len([line for line in err.splitlines() if line.startswith("error") or
                ": error:" in line]) == 1
    assert not out.exists()


def test_temperature_must_be_finite_in_the_client():
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="temperature"):
            ChatClient(temperature=bad)
    for bad in (float("nan"), 0.0, -1.0):
        with pytest.raises(ValueError, match="timeout"):
            ChatClient(timeout=bad)


def test_out_under_a_file_names_the_path_and_the_problem(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder\n")
    out = tmp_path / "afile" / "x.csv"
    with fake_llm([pairs_reply(1, 2)]) as fake:
        code = generate_qa.main(["--out", str(out), "--url", fake.url, "--timeout", "5",
                                 "--count", "2"])
    err = capsys.readouterr().err
    assert code == 2 and fake.requests == []  # found before the server was asked
    assert str(out) in err and "afile" in err and "not a folder" in err
    assert "Errno 17" not in err and "File exists" not in err


# ---------------------------------------------------------------------------- issue 19
def test_a_stray_closing_tag_inside_a_row_keeps_the_rows_before_it():
    kept, cleaned = _kept("A?,a,+1\nA?,b,-1\nB?,c</think>c,+1\nB?,d,-1")
    assert kept == ["A?,a,+1", "A?,b,-1", "B?,cc,+1", "B?,d,-1"]
    assert [(r.line, r.reason) for r in cleaned.removed] == [
        (3, "stray </think> with no opening tag")]
    # thinking on the closing tag's line, with nothing before it, is still thinking
    kept, _ = _kept("Önce düşüneyim</think>A?,a,+1\nA?,b,-1")
    assert kept == ["A?,a,+1", "A?,b,-1"]


@pytest.mark.parametrize(("reply", "rows", "changed"), [
    ("```A?,a,+1\nA?,b,-1\n```", ["A?,a,+1", "A?,b,-1"], [1]),
    ("```csv A?,a,+1\nA?,b,-1```", ["A?,a,+1", "A?,b,-1"], [1, 2]),
    ("~~~ 1. A?,a,+1\n2. A?,b,-1\n~~~", ["A?,a,+1", "A?,b,-1"], [1, 1, 2]),
    ("```csv\nA?,a,+1\nA?,b,-1\n```", ["A?,a,+1", "A?,b,-1"], []),
])
def test_a_code_fence_on_a_row_s_line_is_removed_and_the_row_kept(reply, rows, changed):
    kept, cleaned = _kept(reply)
    assert kept == rows
    assert [c.line for c in cleaned.changed] == changed
    assert all(r.reason == "code fence" and r.text.strip("`~csv ") == ""
               for r in cleaned.removed)


def test_a_single_bullet_pair_loses_its_bullets():
    kept, cleaned = _kept("İşte:\n• A?,a,+1\n• A?,b,-1\n")
    assert kept == ["A?,a,+1", "A?,b,-1"]
    assert [c.reason for c in cleaned.changed] == ["bullet '•' removed"] * 2
    kept, _ = _kept("• A?,a,+1\nA?,b,-1\n")
    assert kept == ["A?,a,+1", "A?,b,-1"]
    kept, _ = _kept("•A?,a,+1\n•A?,b,-1\n")  # the replay of issue 19: no space after it
    assert kept == ["A?,a,+1", "A?,b,-1"]


@pytest.mark.parametrize(("content", "expected"), [
    (b"soru,cevap,etiket\nS?,a,+1\n" + "S?,\xe7ok,-1\n".encode("latin-1"),
     "line 3: not valid UTF-8"),
    (b"soru;cevap;etiket\nS?;a;+1\n", "line 1: expected the header"),
    ("soru,cevap,etiket\nS?,a,+1\nŞ?,b\n".encode(), "line 3: expected 3 fields"),
    ("ı".encode("utf-16"), "not valid UTF-8"),
    (b"", "empty file"),
])
def test_an_unreadable_other_split_is_refused_before_any_request(tmp_path, capsys, content,
                                                                  expected):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    err = _refused_before_any_request(tmp_path, capsys, ["--out", str(tmp_path / "t.csv"),
                                                         "--other", str(bad)],
                                      f"--other {bad}: its questions cannot be read", expected)
    assert err.startswith("error: ")
    assert not (tmp_path / "t.csv").exists()


def test_the_other_split_s_questions_count_even_where_their_pair_is_incomplete(tmp_path):
    other = tmp_path / "test.csv"
    other.write_text("soru,cevap,etiket\nSoru numarası 1?,x,+1\n\nSoru numarası 2?,y,-1\n"
                     "Soru numarası 2?,z,-1\n", encoding="utf-8")
    taken = generate_qa.other_questions(other)
    assert sorted(taken.values()) == [f"{other}, line 2", f"{other}, line 4"]
