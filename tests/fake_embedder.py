"""A stand-in for the model in fast tests: hashed character n-grams, normalised.

It is a deterministic function of the text (the same text, the same vector, in every process),
and texts that share words get close vectors, which is all ranking, filtering and collapsing
need. It sits behind the real interface (:class:`qa.engines.base.Embedder`), so the index and the
search run unchanged on it. It lives in tests/, not in the wheel.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from qa.engines.base import Embedder, TokenSequence
from qa.model.spec import ModelSpec

FAKE_SPEC = ModelSpec(location="fake", model_id="fake (hashed character 3-grams)", fingerprint="fake-3grams-v1",
                      query_prefix="query: ", passage_prefix="passage: ", is_local=False)


def ngram_vector(text: str, dimension: int, n: int = 3) -> np.ndarray:
    """Counts of the text's character n-grams (words padded with spaces), hashed into
    `dimension` buckets with a stable hash, L2-normalised; an empty text is a unit vector."""
    vector = np.zeros(dimension, np.float32)
    for word in text.casefold().split():
        padded = f" {word} "
        for i in range(max(1, len(padded) - n + 1)):
            digest = hashlib.blake2b(padded[i:i + n].encode(), digest_size=8).digest()
            vector[int.from_bytes(digest, "little") % dimension] += 1.0
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return vector / norm


class FakeEmbedder(Embedder):
    """Vectors from :func:`ngram_vector`; the query/passage prefix is left out so questions and
    passages share one space. Tokens are words, each word's token vector its own n-gram vector."""

    backend = "fake"

    def __init__(self, dimension: int = 256, max_sequence_length: int = 512):
        super().__init__(FAKE_SPEC, threads=1)
        self._dimension, self._max = dimension, max_sequence_length
        self.calls = 0  # batches encoded: lets a test check what was (not) embedded

    @property
    def dimension(self) -> int:
        return self._dimension

    def max_sequence_length(self) -> int:
        return self._max

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        self.calls += 1
        return np.stack([ngram_vector(text, self._dimension) for text in texts])

    def _sequences(self, texts: list[str], prefix: str) -> list[TokenSequence]:
        sequences = []
        for text in texts:
            words = list(re.finditer(r"\S+", text))[: self._max - 2]
            sequences.append(_WordSequence(list(range(len(words) + 2)), list(range(1, len(words) + 1)),
                                           [w.start() for w in words], text, [w.group() for w in words]))
        return sequences

    def _forward(self, sequences, batch_size, bar, query=False):
        self.calls += 1
        vectors = np.stack([ngram_vector(s.text, self._dimension) for s in sequences])
        states = [np.stack([ngram_vector(w, self._dimension) for w in s.words]) if s.words
                  else np.zeros((0, self._dimension), np.float32) for s in sequences]
        bar.update(len(sequences))
        return vectors, states, sum(len(s.ids) for s in sequences)


@dataclass
class _WordSequence(TokenSequence):
    text: str
    words: list[str]
