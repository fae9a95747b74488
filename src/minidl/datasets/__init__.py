"""Datasets: loaders and validators, NumPy only.

- :mod:`minidl.datasets.qa`: the Turkish question/answer pairs (``load_qa``, ``load_splits``,
  ``load_topics`` for the kind of each pair);
- :mod:`minidl.datasets.features`: their pair features and the ``.npz`` file that stores them
  (``load_qa_features``, ``save_qa_features``, ``qa_features``);
- :mod:`minidl.datasets.mnist`: MNIST, offline (``load_mnist``).

The study's tooling that makes those features and rows (sentence embedders, the Hugging Face
model lookup, the LLM row generator and its reply cleaning) lives on the experiments' side, in
``experiments.qa``: importing :mod:`minidl` never touches a model, a socket or a thread.
"""

from .features import (
    PairEmbedder,
    QAFeatures,
    QAFeaturesError,
    feature_arrays,
    load_qa_features,
    pair_features,
    qa_features,
    save_qa_features,
)
from .mnist import MNISTUnavailableError, load_mnist
from .qa import (
    QADataError,
    QADataset,
    Rejected,
    Topics,
    format_row,
    load_qa,
    load_splits,
    load_topics,
    normalize_question,
    normalize_text,
    parse_qa,
    turkish_lower,
    validate_splits,
    write_qa,
)

__all__ = [
    "MNISTUnavailableError",
    "PairEmbedder",
    "QADataError",
    "QADataset",
    "QAFeatures",
    "QAFeaturesError",
    "Rejected",
    "Topics",
    "feature_arrays",
    "format_row",
    "load_mnist",
    "load_qa",
    "load_qa_features",
    "load_splits",
    "load_topics",
    "normalize_question",
    "normalize_text",
    "pair_features",
    "parse_qa",
    "qa_features",
    "save_qa_features",
    "turkish_lower",
    "validate_splits",
    "write_qa",
]

#: Names that moved to the experiments' side; asking for one here says where it went.
_MOVED = {
    **dict.fromkeys(["DEFAULT_MODEL", "OFFLINE_MODEL", "Embedder", "EmbeddingCache",
                     "EmbeddingFallbackWarning", "ModelUnavailableError", "NotFittedError",
                     "SentenceTransformerEmbedder", "TfidfEmbedder", "resolve_model"],
                    "experiments.qa.embedders"),
    "CleanedReply": "experiments.qa.llm_reply",
    "clean_reply": "experiments.qa.llm_reply",
}


def __getattr__(name: str):
    if name in _MOVED:
        raise AttributeError(f"minidl.datasets.{name} moved to {_MOVED[name]} (the study's "
                             f"tooling lives beside the experiments): "
                             f"from {_MOVED[name]} import {name}")
    raise AttributeError(f"module 'minidl.datasets' has no attribute {name!r}")
