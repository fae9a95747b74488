"""Datasets: the Turkish question/answer pairs (:mod:`minidl.datasets.qa`), their features
(:mod:`minidl.datasets.embeddings`) and the cleaning of LLM replies that generate them
(:mod:`minidl.datasets.llm_reply`), and MNIST (:mod:`minidl.datasets.mnist`).

Importing this package needs NumPy only; scikit-learn and sentence-transformers are imported
when a TF-IDF or sentence embedder is actually used.
"""

from .embeddings import (
    DEFAULT_MODEL,
    OFFLINE_MODEL,
    Embedder,
    EmbeddingCache,
    EmbeddingFallbackWarning,
    ModelUnavailableError,
    NotFittedError,
    QAFeatures,
    QAFeaturesError,
    SentenceTransformerEmbedder,
    TfidfEmbedder,
    load_qa_features,
    pair_features,
    resolve_model,
    save_qa_features,
)
from .llm_reply import CleanedReply, clean_reply
from .mnist import MNISTUnavailableError, load_mnist
from .qa import (
    QADataError,
    QADataset,
    Rejected,
    format_row,
    load_qa,
    load_splits,
    normalize_question,
    normalize_text,
    parse_qa,
    turkish_lower,
    validate_splits,
    write_qa,
)

__all__ = [
    "DEFAULT_MODEL",
    "OFFLINE_MODEL",
    "CleanedReply",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingFallbackWarning",
    "MNISTUnavailableError",
    "ModelUnavailableError",
    "NotFittedError",
    "QADataError",
    "QADataset",
    "QAFeatures",
    "QAFeaturesError",
    "Rejected",
    "SentenceTransformerEmbedder",
    "TfidfEmbedder",
    "clean_reply",
    "format_row",
    "load_mnist",
    "load_qa",
    "load_qa_features",
    "load_splits",
    "normalize_question",
    "normalize_text",
    "pair_features",
    "parse_qa",
    "resolve_model",
    "save_qa_features",
    "turkish_lower",
    "validate_splits",
    "write_qa",
]
