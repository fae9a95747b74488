"""The question/answer loader: every problem found, reported with its line, nothing lost."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.datasets import (
    QADataError,
    QADataset,
    Rejected,
    format_row,
    load_qa,
    load_splits,
    load_topics,
    normalize_question,
    parse_qa,
    turkish_lower,
    validate_splits,
    write_qa,
)
from minidl.datasets.qa import OLD_MAC
from minidl.errors import MinidlError

FIXTURES = Path(__file__).parent / "fixtures" / "qa"
HEADER = "soru,cevap,etiket"


def reasons(ds: QADataset) -> dict[int, str]:
    return {r.line: r.reason for r in ds.rejected}


def physical_lines(data: str | bytes) -> int:
    """Lines of a file as an editor counts them: a final newline starts no new line."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def assert_accounted(ds: QADataset, data):
    """Every physical line is the header, an accepted row or a rejected line, exactly once."""
    n = physical_lines(data)
    assert ds.n_lines == n
    assert ds.header + len(ds) + len(ds.rejected) == n
    numbers = sorted(ds.lines + [r.line for r in ds.rejected])
    assert numbers == list(range(1 + ds.header, n + 1))


# ---------------------------------------------------------------------------- valid files
def test_small_fixtures_load_strictly():
    train = load_qa(FIXTURES / "train_small.csv")
    test = load_qa(FIXTURES / "test_small.csv")
    assert len(train) == 8 and train.n_questions == 4
    assert train.labels.dtype.kind == "i"
    assert set(train.labels.tolist()) == {1, -1}
    assert train.answers[4] == "Yaklaşık 3,14'tür."  # a quoted comma stays in its field
    assert train.lines == list(range(2, 10))
    assert train.rejected == []
    assert validate_splits(train, test) is test


def test_bom_and_windows_line_endings_are_accepted(tmp_path):
    rows = [("Soru bir mi?", "Evet, bir.", 1), ("Soru bir mi?", "Hayır, iki.", -1)]
    text = HEADER + "\r\n" + "\r\n".join(format_row(*r) for r in rows) + "\r\n"
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    ds = load_qa(path)
    assert ds.rows() == rows
    assert ds.questions[0] == "Soru bir mi?"  # no BOM, no \r left anywhere
    assert not any("\r" in a for a in ds.answers)


def test_label_1_means_plus_1_and_spaces_around_fields_are_ignored():
    ds = parse_qa(f"{HEADER}\nS?, iyi cevap , 1\nS?,\"kötü, cevap\", -1\n")
    assert ds.rows() == [("S?", "iyi cevap", 1), ("S?", "kötü, cevap", -1)]


def test_write_then_load_round_trips(tmp_path):
    rows = [('Bir "alıntı" mı?', "Evet, tırnak ve virgül.", 1),
            ('Bir "alıntı" mı?', "Hayır.", -1)]
    path = write_qa(tmp_path / "sub" / "out.csv", rows)
    assert load_qa(path).rows() == rows
    assert not [p for p in path.parent.iterdir() if p.name != "out.csv"]  # no temp file left


# ---------------------------------------------------------------------------- every problem
def test_messy_fixture_reports_every_problem_with_its_line():
    ds = load_qa(FIXTURES / "messy.csv", strict=False)
    why = reasons(ds)
    assert why[2].startswith("expected 3 fields") and "quote" in why[2]  # ...döner?,27,3,+1
    assert why[5] == "empty line"
    assert "2 answers labelled +1" in why[6] and why[6] == why[7]
    assert why[8] == "empty field: cevap"
    assert why[9].startswith("label must be +1, -1 or 1")
    assert "unterminated" in why[10]
    assert why[12] == "duplicate of line 11"  # same question after case/punctuation/İ folding
    assert ds.lines == [3, 4, 11, 13]
    assert_accounted(ds, (FIXTURES / "messy.csv").read_bytes())


def test_strict_raises_one_error_listing_all_problems():
    with pytest.raises(QADataError) as info:
        load_qa(FIXTURES / "messy.csv")
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, MinidlError)
    assert len(err.problems) == 8
    message = str(err)
    for line in (2, 5, 6, 7, 8, 9, 10, 12):
        assert f"messy.csv, line {line}:" in message


@pytest.mark.parametrize(("row", "reason"), [
    ("Ayın dönüş süresi kaç gündür?,27,3,+1", "expected 3 fields"),
    ("Soru?,Cevap", "expected 3 fields"),
    ("Soru?,Cevap,+2", "label must be"),
    ("Soru?,Cevap,evet", "label must be"),
    ("Soru?,Cevap,0", "label must be +1, -1 or 1, got '0'"),  # a 0/1 file is not +1/-1
    ("Soru?,Cevap,+0", "label must be"),
    ("Soru?,Cevap,-0", "label must be"),
    ("Soru?,Cevap,1.0", "label must be"),
    ("Soru?,Cevap,", "empty field: etiket"),
    (",Cevap,+1", "empty field: soru"),
    ("Soru?,   ,-1", "empty field: cevap"),
    ('Soru?,"Cevap"x,+1', "malformed CSV"),
    ("   ", "empty line"),
])
def test_bad_rows(row, reason):
    ds = parse_qa(f"{HEADER}\n{row}\n", strict=False)
    assert len(ds) == 0
    assert ds.rejected[0].line == 2 and ds.rejected[0].text == row
    assert reason in ds.rejected[0].reason


def test_pair_rules():
    text = "\n".join([HEADER,
                      "A?,a1,+1", "A?,a2,-1", "A?,a3,-1",     # two -1: all three rejected
                      "B?,b1,+1",                             # no -1
                      "C?,c1,-1",                             # no +1
                      "D?,d1,+1", "D?,d1,-1",                 # same answer, opposite label
                      "E?,e1,+1", "E?,e2,-1", "E?,e2,-1"])    # exact duplicate: E stays
    ds = parse_qa(text, strict=False)
    why = reasons(ds)
    assert all("2 answers labelled -1" in why[n] for n in (2, 3, 4))
    assert why[5] == "incomplete pair: the question has no -1 answer"
    assert why[6] == "incomplete pair: the question has no +1 answer"
    assert why[8] == "duplicate of line 7 with the opposite label"
    assert why[7] == "incomplete pair: the question has no -1 answer"
    assert why[11] == "duplicate of line 10"
    assert ds.rows() == [("E?", "e1", 1), ("E?", "e2", -1)]
    assert_accounted(ds, text)


def test_header_is_required_and_checked():
    ds = parse_qa("question,answer,label\nS?,a,+1\nS?,b,-1", strict=False)
    assert reasons(ds) == {1: "expected the header soru,cevap,etiket"}
    assert len(ds) == 2
    assert len(parse_qa(" Soru , Cevap ,ETIKET\nS?,a,+1\nS?,b,-1")) == 2
    with pytest.raises(QADataError, match="empty file"):
        parse_qa("")
    assert len(parse_qa("", strict=False)) == 0


@pytest.mark.parametrize("header", ["SORU,CEVAP,ETİKET", "SORU,CEVAP,ETIKET", "Soru,Cevap,Etiket",
                                    "soru,cevap,etıket", " SORU , CEVAP , ETİKET "])
def test_the_header_is_read_with_turkish_case_rules(header):
    ds = parse_qa(f"{header}\nS?,a,+1\nS?,b,-1\n")
    assert ds.header and len(ds) == 2


def test_a_zero_one_file_is_refused_not_read_as_plus_minus_one():
    with pytest.raises(QADataError, match=r"line 3: label must be \+1, -1 or 1, got '0'"):
        parse_qa(f"{HEADER}\nS?,a,1\nS?,b,0\n")


@pytest.mark.parametrize("data", [f"{HEADER}\rS?,a,+1\rS?,b,-1\r",
                                  f"{HEADER}\rS?,a,+1\rS?,b,-1\r".encode()])
def test_old_mac_line_endings_are_named_not_called_a_bad_header(data, tmp_path):
    ds = parse_qa(data, strict=False)
    assert len(ds) == 0 and reasons(ds) == {1: OLD_MAC}
    assert "lone \\r" in OLD_MAC and "expected the header" not in OLD_MAC
    path = tmp_path / "topics.csv"
    path.write_bytes(b"bolum,konu,soru,tur\rtrain,t,S?,fact\r")
    with pytest.raises(QADataError, match="old Mac line endings"):
        load_topics(path)
    path.write_bytes("BÖLUM,KONU,SORU,TÜR\ntrain,t,S?,fact\n".encode())
    with pytest.raises(QADataError, match="expected the header bolum,konu,soru,tur"):
        load_topics(path)
    path.write_bytes(b"BOLUM,KONU,SORU,TUR\ntrain,t,S?,fact\n")
    assert len(load_topics(path).entries) == 1


def test_invalid_utf8_line_is_rejected_not_raised():
    data = f"{HEADER}\nS?,a,+1\n".encode() + b"S?,\xff\xfe,-1\n"
    ds = parse_qa(data, strict=False)
    assert reasons(ds)[3] == "not valid UTF-8"
    assert "incomplete pair" in reasons(ds)[2]
    assert_accounted(ds, data)


# ---------------------------------------------------------------------------- normalising
def test_turkish_lowercase_and_question_normalisation():
    assert turkish_lower("İSTANBUL IRMAK") == "istanbul ırmak"
    same = ["Türkiye'nin başkenti neresidir?", "TÜRKİYE'NİN  BAŞKENTİ NERESİDİR",
            "türkiyenin başkenti neresidir ?", "Türkiye’nin başkentı neresıdır..."]
    assert len({normalize_question(q) for q in same}) == 1
    assert normalize_question("Işık nedir?") == normalize_question("ışık nedir")
    assert normalize_question("Ayın evresi") != normalize_question("Ayın evreleri")


# ---------------------------------------------------------------------------- splits
def test_question_in_both_splits(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    write_qa(train, [("Işık hızı nedir?", "c", 1), ("Işık hızı nedir?", "d", -1)])
    write_qa(test, [("ışık hızı nedir", "e", 1), ("ışık hızı nedir", "f", -1),
                    ("Ses hızı nedir?", "g", 1), ("Ses hızı nedir?", "h", -1)])
    with pytest.raises(QADataError) as info:
        load_splits(train, test)
    assert "test.csv, line 2: question also in" in str(info.value)
    assert "train.csv, line 2" in str(info.value)
    assert len(info.value.problems) == 2

    a, b = load_qa(train), load_qa(test)
    kept = validate_splits(a, b, strict=False)
    assert kept.questions == ["Ses hızı nedir?", "Ses hızı nedir?"]
    assert [r.line for r in kept.rejected] == [2, 3]
    assert len(kept) + len(kept.rejected) == len(b)


def test_load_splits_collects_problems_of_both_files(tmp_path):
    (tmp_path / "a.csv").write_text(f"{HEADER}\nS?,1,2,+1\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text(f"{HEADER}\nT?,x,+3\n", encoding="utf-8")
    with pytest.raises(QADataError) as info:
        load_splits(tmp_path / "a.csv", tmp_path / "b.csv")
    sources = [src for src, _ in info.value.problems]
    assert sources == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]


# ---------------------------------------------------------------------------- properties
_pieces = st.sampled_from([",", '"', '""', " ", "\r", "\t", "+1", "-1", "1", "soru", "?", "İ",
                           "ı", "ş", "Ğ", "é", "😀", "\ufeff", "\x00", "a", "b", "x,y", "'"])
_lines = st.lists(st.lists(_pieces, max_size=8).map("".join), max_size=12)
_good_row = st.tuples(st.sampled_from(["S1?", "S2?", "s1", "Ş?"]),
                      st.sampled_from(["a", "b, c", 'd "e"', "f"]),
                      st.sampled_from(["+1", "-1", "1", " -1 "]))


@st.composite
def csv_files(draw):
    lines = draw(_lines)
    good = draw(st.lists(_good_row, max_size=6))
    rows = [",".join(r) for r in good] + lines
    rows = draw(st.permutations(rows))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.sampled_from([HEADER, HEADER.upper(), "x,y", ""]))
    text = newline.join([header, *rows]) + draw(st.sampled_from(["", newline, newline * 2]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


@given(csv_files())
def test_every_line_is_accepted_or_rejected(text):
    for data in (text, text.encode("utf-8")):
        ds = parse_qa(data, strict=False)
        assert_accounted(ds, data)
        assert np.all(np.isin(ds.labels, [1, -1]))
        # accepted rows always come in complete pairs
        keys = [normalize_question(q) for q in ds.questions]
        for key in set(keys):
            labels = sorted(int(y) for k, y in zip(keys, ds.labels, strict=True) if k == key)
            assert labels == [-1, 1]


@given(csv_files())
def test_strict_either_accepts_everything_or_raises_our_error(text):
    try:
        ds = parse_qa(text, strict=True)
    except QADataError as exc:
        assert exc.problems
        assert all(isinstance(r, Rejected) for _, r in exc.problems)
    else:
        assert ds.rejected == []


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_else(text):
    ds = parse_qa(text, strict=False)
    assert_accounted(ds, text)
    with contextlib.suppress(QADataError):
        parse_qa(text, strict=True)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_from_a_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("qa") / "data.csv"
    path.write_bytes(data)
    ds = load_qa(path, strict=False)
    assert_accounted(ds, data)
    with contextlib.suppress(QADataError):
        load_qa(path)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30),
                          st.text(min_size=1, max_size=30)), min_size=1, max_size=8))
def test_written_pairs_load_back(tmp_path_factory, triples):
    """Any texts without line breaks survive write_qa -> load_qa when they form valid pairs."""
    def clean(s):
        s = "".join(ch for ch in s if ch not in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        return s.strip() or "x"

    rows, seen = [], set()
    for i, (q, a, b) in enumerate(triples):
        q = f"{clean(q)} {i}"
        a, b = clean(a), clean(b) + " (yanlış)"
        if normalize_question(q) in seen or normalize_question(a) == normalize_question(b):
            continue
        seen.add(normalize_question(q))
        rows += [(q, a, 1), (q, b, -1)]
    path = write_qa(tmp_path_factory.mktemp("qa") / "rt.csv", rows)
    assert load_qa(path).rows() == rows


# ---------------------------------------------------------------------------- contradictions
def test_an_answer_labelled_both_ways_rejects_the_whole_question():
    text = "\n".join([HEADER, "q,a,+1", "q,a,-1", "q,b,-1", "R?,r1,+1", "R?,r2,-1"])
    ds = parse_qa(text, strict=False)
    why = reasons(ds)
    assert why[3] == "duplicate of line 2 with the opposite label"
    assert "labelled both +1 and -1" in why[2] and "line 3" in why[2]
    assert why[4] == why[2]
    assert ds.rows() == [("R?", "r1", 1), ("R?", "r2", -1)]
    assert_accounted(ds, text)
    with pytest.raises(QADataError, match="labelled both"):
        parse_qa(text)


# ---------------------------------------------------------------------------- bounded messages
def _many(n, start=0):
    return [row for i in range(start, start + n)
            for row in ((f"Soru {i}?", "a", 1), (f"Soru {i}?", "b", -1))]


def test_a_huge_overlap_gives_a_bounded_message(tmp_path):
    write_qa(tmp_path / "train.csv", _many(3000))
    write_qa(tmp_path / "test.csv", _many(3000))
    with pytest.raises(QADataError) as info:
        load_splits(tmp_path / "train.csv", tmp_path / "test.csv")
    assert len(info.value.problems) == 6000
    assert len(str(info.value)) < 10_000 and "and 5975 more" in str(info.value)
    with pytest.raises(QADataError) as info:
        validate_splits(load_qa(tmp_path / "train.csv"), load_qa(tmp_path / "test.csv"))
    assert len(str(info.value)) < 10_000 and "and 5975 more" in str(info.value)


def test_topics_problems_give_a_bounded_message(tmp_path):
    write_qa(tmp_path / "train.csv", _many(2000))
    write_qa(tmp_path / "test.csv", _many(10, start=5000))
    topics = tmp_path / "topics.csv"
    topics.write_text("bolum,konu,soru,tur\n" + "yanlis,k,S?,fact\n" * 2000, encoding="utf-8")
    with pytest.raises(QADataError) as info:
        load_topics(topics)
    assert len(str(info.value)) < 10_000 and "and 1975 more" in str(info.value)
    topics.write_text("bolum,konu,soru,tur\ntest,k,Başka?,fact\n", encoding="utf-8")
    with pytest.raises(QADataError) as info:
        load_splits(tmp_path / "train.csv", tmp_path / "test.csv", topics=topics)
    assert len(str(info.value)) < 10_000 and "more" in str(info.value)


def test_a_question_repeated_thousands_of_times_gives_a_bounded_reason():
    text = HEADER + "\n" + "\n".join(f"S?,cevap {i},+1" for i in range(5000)) + "\nS?,x,-1\n"
    ds = parse_qa(text, strict=False)
    reason = ds.rejected[0].reason
    assert "5000 answers labelled +1" in reason and len(reason) < 400 and "more" in reason
    with pytest.raises(QADataError) as info:
        parse_qa(text)
    assert len(str(info.value)) < 20_000
