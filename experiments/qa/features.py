"""The features every QA experiment reads: one function, :func:`load_features`.

    from experiments.qa.features import load_features
    f = load_features("e5-small")              # the shipped data, committed features: instant
    f = load_features("tfidf", data="my_qa/")  # any folder with train.csv and test.csv

For the shipped data (``data/qa``), ``e5-small`` and ``minilm`` come from the files committed in
``data/qa/features/`` as long as they hold exactly the rows of the CSVs (kinds are read from
``topics.csv``); otherwise (edited CSVs,
another folder, another embedder) both splits are embedded now, through an
:class:`~experiments.qa.embedders.EmbeddingCache` keyed by content, so a rerun embeds nothing.
A folder's optional ``topics.csv`` (``bolum,konu,soru,tur``) gives each row's kind of wrong
answer, for accuracy per kind.
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments.flags import FlagError
from minidl.datasets import QADataset, QAFeatures, load_qa_features, load_splits, qa_features

from .embedders import TfidfEmbedder, default_cache_dir, make_embedder

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "qa"
FEATURES_DIR = DATA / "features"
#: The committed features file of each embedder name that has one.
COMMITTED = {"e5-small": FEATURES_DIR / "multilingual-e5-small.npz",
             "minilm": FEATURES_DIR / "all-MiniLM-L6-v2.npz"}


def load_data(data: str | os.PathLike | None = None) -> tuple[QADataset, QADataset]:
    """The validated ``(train, test)`` splits of a folder (default: the shipped ``data/qa``),
    with kinds when it holds a ``topics.csv``."""
    folder = Path(data) if data is not None else DATA
    if data is None and not folder.is_dir():
        raise FileNotFoundError(
            f"the shipped question/answer data is not here ({folder} does not exist): it lives "
            f"in the repository's data/qa, so install from a clone (pip install -e "
            f"'.[experiments]') or pass --data DIR, a folder with train.csv and test.csv")
    missing = [name for name in ("train.csv", "test.csv") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: expected train.csv and test.csv in the study's "
                                f"format (soru,cevap,etiket); missing {', '.join(missing)}")
    topics = folder / "topics.csv"
    train, test = load_splits(folder / "train.csv", folder / "test.csv",
                              topics=topics if topics.is_file() else None)
    empty = [name for name, ds in (("train.csv", train), ("test.csv", test)) if len(ds) == 0]
    if empty:  # a header alone: nothing to train or to score, said before any embedding
        raise FlagError(f"{folder}: {' and '.join(empty)} hold{'s' * (len(empty) == 1)} no "
                        f"question/answer pairs (only the header soru,cevap,etiket)")
    return train, test


def matches(features: QAFeatures, splits: dict[str, QADataset]) -> bool:
    """True when ``features`` hold exactly these rows (texts and labels), in order."""
    return all(features.texts.get(name) == (ds.questions, ds.answers) and
               list(features.y_train if name == "train" else features.y_test) == list(ds.labels)
               for name, ds in splits.items())


def load_features(features: str = "e5-small", data: str | os.PathLike | None = None,
                  cache_dir: str | os.PathLike | None = None, announce=print) -> QAFeatures:
    """Pair features ``[q | a | 1]`` of both splits of ``data`` with the embedder ``features``
    (see :data:`experiments.qa.embedders.FEATURE_NAMES`).

    ``cache_dir`` defaults to :func:`~experiments.qa.embedders.default_cache_dir`. A model that
    cannot be had raises :class:`~experiments.qa.embedders.ModelUnavailableError`.
    """
    train, test = load_data(data)
    splits = {"train": train, "test": test}
    committed = COMMITTED.get(features)
    if data is None and committed is not None and committed.is_file():
        stored = load_qa_features(committed)
        if matches(stored, splits):  # the kinds are the data's, not the embedder's
            stored.kinds = {name: ds.kinds for name, ds in splits.items() if ds.kinds is not None}
            return stored
        announce(f"{committed} does not match {DATA} (edited rows?): embedding afresh")
    embedder = make_embedder(features, cache_dir=cache_dir or default_cache_dir(),
                             announce=announce)
    if isinstance(embedder, TfidfEmbedder):
        embedder.fit(train.questions + train.answers)
    return qa_features(splits, embedder, meta={"data": str(Path(data or DATA))})
