"""Pair features of question/answer splits, and the file that stores them (NumPy only).

One pair becomes one row (the e5 convention: questions are queries, answers are passages)::

    x = [ embed(query_prefix + question) | embed(passage_prefix + answer) | 1 ]

of length ``2 d + 1``; the constant 1 column plays the role of a bias for a model without one.

An *embedder* is any object with ``encode(texts, prefix="") -> (N, d) array`` and the attributes
``query_prefix`` and ``passage_prefix`` (the study's embedders live in ``experiments.qa``; this
module never imports a model). :func:`save_qa_features` writes both splits' embeddings to one
compressed ``.npz``; :func:`load_qa_features` reads it back as :class:`QAFeatures`, and
:func:`qa_features` builds the same object in memory.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..atomic import atomic_write
from ..errors import MinidlError, ShapeError
from ..validation import check_bool
from .qa import QADataset

_PARTS = ("qemb", "aemb", "qindex", "labels", "questions", "answers")


class PairEmbedder(Protocol):
    """What :func:`pair_features` and :func:`save_qa_features` need of an embedder."""

    query_prefix: str
    passage_prefix: str

    def encode(self, texts: Sequence[str], prefix: str = "") -> np.ndarray: ...

    @property
    def cache_name(self) -> str:
        """The embedding function's identity; a features file records it as the model when
        the embedder has no ``model_name``."""
        ...


def text_list(texts, where: str) -> list[str]:
    """``texts`` as a list of str; a single str or a non-str item is a ``TypeError``."""
    if isinstance(texts, str):
        raise TypeError(f"{where}: expected a sequence of strings, got one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{where}: item {i} is {type(t).__name__}, not str")
    return texts


def pair_features(questions: Sequence[str], answers: Sequence[str], embedder: PairEmbedder,
                  bias: bool = True, dtype=np.float64) -> np.ndarray:
    """Rows ``[embed(query_prefix + q) | embed(passage_prefix + a) | 1]``, shape ``(N, 2d+1)``.

    ``bias=False`` leaves out the ones column, giving ``(N, 2d)``.
    """
    bias = check_bool("pair_features", "bias", bias)
    questions = text_list(questions, "pair_features: questions")
    answers = text_list(answers, "pair_features: answers")
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


@dataclass
class QAFeatures:
    """Pair features of both splits, from :func:`load_qa_features` or :func:`qa_features`.

    ``X_train`` / ``X_test`` are ``(N, 2d+1)`` float64 rows ``[q | a | 1]``; ``y_*`` are +1/-1.
    ``texts[split]`` is ``(questions, answers)`` row by row; ``kinds[split]`` the kind of each
    row's pair (``"fact"``, ``"non_answer"``, ...) where the data has kinds, else absent.
    ``meta`` holds the model, prefixes and the command that made the file.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    texts: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """``d``, the length of one question (or answer) embedding."""
        return (self.X_train.shape[1] - 1) // 2


def feature_arrays(splits: dict[str, QADataset], embedder: PairEmbedder,
                   dtype=np.float32, meta: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Embed each split's questions and answers: the arrays a features file holds.

    Each distinct question is embedded and stored once (``{split}_qemb`` with
    ``{split}_qindex`` mapping rows to it) beside one answer embedding per row
    (``{split}_aemb``), in ``dtype``, together with the texts, labels and (where the dataset
    has them) kinds, so the features can be checked against the CSV without the model.
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
        if ds.kinds is not None:
            arrays[f"{split}_kinds"] = np.asarray(ds.kinds, dtype=str)
    info = {"model": getattr(embedder, "model_name", None) or embedder.cache_name,
            "query_prefix": embedder.query_prefix, "passage_prefix": embedder.passage_prefix,
            "dtype": np.dtype(dtype).name, **(meta or {})}
    arrays["splits"] = np.array(list(splits), dtype=str)
    for key, value in info.items():
        arrays[f"meta_{key}"] = np.array(str(value))
    return arrays


def qa_features(splits: dict[str, QADataset], embedder: PairEmbedder,
                meta: dict[str, str] | None = None) -> QAFeatures:
    """The :class:`QAFeatures` of ``splits`` (which must hold ``"train"`` and ``"test"``),
    embedded now and kept in memory (float32 embeddings, as the embedders return them)."""
    return _from_arrays(feature_arrays(splits, embedder, np.float32, meta), "<memory>")


def save_qa_features(path: str | os.PathLike, splits: dict[str, QADataset],
                     embedder: PairEmbedder, dtype=np.float16,
                     meta: dict[str, str] | None = None) -> Path:
    """Embed each split (:func:`feature_arrays`) and save a compressed ``.npz``, atomically."""
    arrays = feature_arrays(splits, embedder, dtype, meta)
    path = Path(path)
    # numpy's stub gives savez_compressed an `allow_pickle: bool` keyword beside `**kwds`, and
    # mypy checks every value of `**arrays` against it too; the keys are never allow_pickle.
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays),  # type: ignore[arg-type]
                 make_parents=True)
    return path


class QAFeaturesError(MinidlError, ValueError):
    """A file given to :func:`load_qa_features` is not a readable features file (empty,
    truncated, corrupt, not an ``.npz`` or missing entries); the message names the file."""


_FEATURE_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                        IndexError, RuntimeError, NotImplementedError, OverflowError,
                        MemoryError)  # RuntimeError, NotImplementedError: zip features
                                      # zipfile lacks; MemoryError: a header claiming terabytes


def load_qa_features(path: str | os.PathLike) -> QAFeatures:
    """Load a file written by :func:`save_qa_features` (NumPy only, no pickles).

    Raises :class:`QAFeaturesError` (a ``ValueError``) naming the file and what is wrong for a
    file that is not one (empty, truncated, corrupt, too large to hold, missing entries, or
    entries that disagree: a question index out of range, a count of rows, answers, labels or
    kinds that differs, labels other than +1/-1, non-finite embeddings), and
    ``FileNotFoundError`` for a missing one.
    """
    name = os.fspath(path)
    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError speak for themselves
        head = f.read(4)
    if not head:
        raise QAFeaturesError(f"load_qa_features: {name}: the file is empty (0 bytes)")
    if head != b"PK\x03\x04":
        raise QAFeaturesError(f"load_qa_features: {name}: not a features file: "
                              f"save_qa_features writes a .npz (zip) archive, but this file "
                              f"starts with {head!r}")
    try:
        data = np.load(path, allow_pickle=False)
    except _FEATURE_READ_ERRORS as exc:
        raise QAFeaturesError(f"load_qa_features: {name}: truncated or corrupt .npz archive "
                              f"({type(exc).__name__}: {exc})") from exc
    with data:
        return _from_arrays(data, name)


def _from_arrays(data, name: str) -> QAFeatures:
    """:class:`QAFeatures` from the arrays of :func:`feature_arrays` (a dict or an open npz)."""

    def bad(why: str) -> QAFeaturesError:
        return QAFeaturesError(f"load_qa_features: {name}: {why}")

    entry = None
    try:
        files = set(data.files if hasattr(data, "files") else data)
        meta = {}
        for entry in sorted(k for k in files if k.startswith("meta_")):
            meta[entry[len("meta_"):]] = str(data[entry])
        entry = "splits"
        splits = [str(s) for s in data["splits"]] if "splits" in files else []
        if not {"train", "test"} <= set(splits):
            raise bad(f"does not hold a train and a test split (found {splits}); was it "
                      f"written by save_qa_features?")
        missing = [f"{split}_{part}" for split in splits for part in _PARTS
                   if f"{split}_{part}" not in files]
        if missing:
            raise bad(f"entries {missing} are missing; was it written by save_qa_features?")
        out, texts, kinds = {}, {}, {}
        for split in splits:
            entry = split
            qemb = data[f"{split}_qemb"].astype(np.float64)
            aemb = data[f"{split}_aemb"].astype(np.float64)
            qindex = data[f"{split}_qindex"]
            labels = data[f"{split}_labels"]
            questions = data[f"{split}_questions"].tolist()
            answers = data[f"{split}_answers"].tolist()
            _check_split(split, qemb, aemb, qindex, labels, questions, answers, bad)
            out[f"X_{split}"] = np.hstack([qemb[qindex], aemb, np.ones((len(qindex), 1))])
            out[f"y_{split}"] = labels.astype(np.int64)
            texts[split] = ([questions[i] for i in qindex], answers)
            if f"{split}_kinds" in files:
                kinds[split] = np.asarray(data[f"{split}_kinds"], dtype=str)
                if kinds[split].shape != (len(qindex),):
                    raise bad(f"{split}_kinds has shape {kinds[split].shape}, expected "
                              f"({len(qindex)},)")
    except QAFeaturesError:
        raise
    except _FEATURE_READ_ERRORS as exc:
        where = f" (reading {entry!r})" if entry else ""
        raise bad(f"truncated or corrupt .npz archive{where}: {type(exc).__name__}: "
                  f"{exc}") from exc
    return QAFeatures(out["X_train"], out["y_train"], out["X_test"], out["y_test"], texts, meta,
                      kinds)


def _check_split(split, qemb, aemb, qindex, labels, questions, answers, bad) -> None:
    """Raise ``bad(why)`` unless one split's entries agree: what would otherwise be read
    silently wrong (a negative index picks a question from the end, a short list of answers
    pairs texts with the wrong rows) or fail with a raw NumPy error."""
    for name, emb in (("qemb", qemb), ("aemb", aemb)):
        if emb.ndim != 2:
            raise bad(f"{split}_{name} must be 2-D (rows, d), got shape {emb.shape}")
        if not np.isfinite(emb).all():
            raise bad(f"{split}_{name} holds non-finite values (NaN or inf)")
    if qemb.shape[1] != aemb.shape[1]:
        raise bad(f"{split}_qemb has width {qemb.shape[1]} but {split}_aemb {aemb.shape[1]}")
    rows = len(aemb)
    if qindex.ndim != 1 or qindex.dtype.kind not in "iu" or len(qindex) != rows:
        raise bad(f"{split}_qindex must be {rows} integers (one per row of {split}_aemb), got "
                  f"{qindex.dtype} {qindex.shape}")
    if rows and (qindex.min() < 0 or qindex.max() >= len(qemb)):
        raise bad(f"{split}_qindex must lie in 0..{len(qemb) - 1} (rows of {split}_qemb), "
                  f"found {int(qindex.min())}..{int(qindex.max())}")
    if len(questions) != len(qemb):
        raise bad(f"{split}_questions holds {len(questions)} texts for {len(qemb)} question "
                  f"embeddings")
    if len(answers) != rows or labels.shape != (rows,):
        raise bad(f"{split}_answers ({len(answers)}) and {split}_labels {labels.shape} must "
                  f"have one entry per row ({rows})")
    if labels.dtype.kind not in "iu" or not np.isin(labels, (-1, 1)).all():
        raise bad(f"{split}_labels must be +1 or -1, found {np.unique(labels)[:5].tolist()}")
