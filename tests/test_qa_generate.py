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
    reply = ("</think>\nsoru,cevap,etiket\n1. A?,a,+1\n2) A?,b,-1\n- B?,c,+1\n"
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
