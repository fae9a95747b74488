"""A deterministic stand-in embedder for the QA feature tests (no model, no network)."""

from __future__ import annotations

import hashlib

import numpy as np

from experiments.qa.embedders import Embedder


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
