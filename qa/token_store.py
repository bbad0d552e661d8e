"""The token store: every passage's contextual token vectors, compressed, for MaxSim reranking.

One forward pass per passage gives its vector (the model's pooling) and its content tokens;
the tokens are kept here so that a question's own tokens can be matched against a candidate's
at search time (ColBERT's late interaction, Khattab & Zaharia 2020). Uncompressed they would
cost ~140 KB a passage, so they are product-quantised (Jégou et al. 2011; FAISS's
ProductQuantizer): each token is `m` bytes, one centroid id per subspace of the vector, with a
codebook trained on a sample of the index's own tokens and kept beside the codes. An index with
too few tokens to train a codebook keeps them in float16. The arrays are memory-mapped.

Each token also records which sentence of its passage holds it, so the sentence that best
matches the question is marked without sentence vectors (:func:`best_sentences`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

# Product quantisation: bytes per token (subquantizers of 8 bits each), chosen on the public
# sets (EVALUATION.md, scripts/li_fit.py), and the training sample. A codebook of 256 centroids
# per subspace wants ~39 points per centroid (FAISS's own warning threshold): fewer tokens than
# that and the index keeps float16 tokens instead, which costs little at that size.
PQ_BYTES = 64
PQ_BITS = 8
MIN_TRAIN_TOKENS = 256 * 39
TRAIN_TOKENS = 65_536
CONTEXT_SENTENCE = np.iinfo(np.uint16).max  # a token of the heading line, in no sentence

FILES = ("token_codes.npy", "token_offsets.npy", "token_sentences.npy")
CODEBOOK_FILE = "token_codebook.npy"


class TokenCodec(BaseModel):
    """How the tokens of a generation are stored (recorded in its manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["pq", "fp16"]
    bytes_per_token: int


@dataclass
class TokenBlock:
    """Tokens of consecutive passages, in stored form."""

    codes: np.ndarray  # uint8 [T, m] (pq) or float16 [T, dimension] (fp16)
    counts: np.ndarray  # int64 [n]: tokens per passage
    sentences: np.ndarray  # uint16 [T]: sentence number of each token within its passage


class Codebook:
    """A trained product quantizer (or none, for float16 storage): encode and decode tokens."""

    def __init__(self, centroids: np.ndarray | None, dimension: int):
        self.centroids, self.dimension = centroids, dimension  # float32 [m, 256, dimension / m]
        self._pq = None
        if centroids is not None:
            import faiss

            m, ksub, _ = centroids.shape
            self._pq = faiss.ProductQuantizer(dimension, m, int(np.log2(ksub)))
            faiss.copy_array_to_vector(np.ascontiguousarray(centroids, np.float32).ravel(), self._pq.centroids)

    @classmethod
    def train(cls, sample: np.ndarray, m: int = PQ_BYTES) -> Codebook:
        """A codebook for `sample` (normalised float32 tokens), float16 when it is too small."""
        dimension = sample.shape[1]
        if len(sample) < MIN_TRAIN_TOKENS or dimension % m:
            return cls(None, dimension)
        import faiss

        pq = faiss.ProductQuantizer(dimension, m, PQ_BITS)
        pq.verbose = False
        pq.train(np.ascontiguousarray(sample, np.float32))
        centroids = faiss.vector_to_array(pq.centroids).reshape(m, 1 << PQ_BITS, dimension // m)
        return cls(centroids, dimension)

    @property
    def codec(self) -> TokenCodec:
        if self.centroids is None:
            return TokenCodec(kind="fp16", bytes_per_token=2 * self.dimension)
        return TokenCodec(kind="pq", bytes_per_token=self.centroids.shape[0])

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        if self._pq is None:
            return tokens.astype(np.float16)
        return self._pq.compute_codes(np.ascontiguousarray(tokens, np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        if self._pq is None:
            return codes.astype(np.float32)
        return self._pq.decode(np.ascontiguousarray(codes))

    def empty(self) -> np.ndarray:
        """Zero stored tokens of this codec (the codes of an empty passage list)."""
        if self._pq is None:
            return np.zeros((0, self.dimension), np.float16)
        return np.zeros((0, self.centroids.shape[0]), np.uint8)


class TokenStore:
    """The stored tokens of one generation, memory-mapped, aligned with its passage rows."""

    def __init__(self, codebook: Codebook, codes: np.ndarray, offsets: np.ndarray, sentences: np.ndarray):
        self.codebook, self.codes, self.offsets, self.sentences = codebook, codes, offsets, sentences

    @classmethod
    def open(cls, folder: Path, dimension: int) -> TokenStore:
        codebook_path = folder / CODEBOOK_FILE
        centroids = np.load(codebook_path) if codebook_path.is_file() else None
        codes, offsets, sentences = (np.load(folder / name, mmap_mode="r") for name in FILES)
        return cls(Codebook(centroids, dimension), codes, np.asarray(offsets), sentences)

    def damage(self, passages: int, dimension: int) -> str | None:
        """Why these arrays cannot be this generation's tokens, or None (linear, numpy only)."""
        codec = self.codebook.codec
        width = codec.bytes_per_token if codec.kind == "pq" else dimension
        dtype = np.uint8 if codec.kind == "pq" else np.float16
        if self.codes.ndim != 2 or self.codes.shape[1] != width or self.codes.dtype != dtype:
            return f"token_codes.npy holds {self.codes.dtype}{list(self.codes.shape)}, expected {np.dtype(dtype)}[T, {width}]"
        o = self.offsets
        if (o.ndim != 1 or len(o) != passages + 1 or o.dtype.kind not in "iu" or (len(o) and o[0] != 0)
                or (np.diff(o) < 0).any() or o[-1] != len(self.codes)):
            return "token_offsets.npy does not match the passages and token_codes.npy"
        if self.sentences.shape != (len(self.codes),) or self.sentences.dtype != np.uint16:
            return "token_sentences.npy does not match token_codes.npy"
        return None

    def block(self, row: int) -> TokenBlock:
        """One passage's stored tokens (reused as they are by an incremental build)."""
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        return TokenBlock(np.asarray(self.codes[a:b]), np.array([b - a]), np.asarray(self.sentences[a:b]))

    def tokens(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(decoded float32 tokens of `rows`, one after the other; each row's token count)."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        index = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(rows) else np.zeros(0, int)
        return self.codebook.decode(np.asarray(self.codes[index])), (ends - starts)


def maxsim(question: np.ndarray, tokens: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(MaxSim per passage, the question-by-token cosines): for each passage, the mean over the
    question's tokens of their best cosine among the passage's tokens. A passage without
    tokens scores 0."""
    similarities = question @ tokens.T  # [question tokens, all candidate tokens]
    scores = np.zeros(len(counts), np.float32)
    nonempty = counts > 0
    if similarities.size and nonempty.any():
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
        scores[nonempty] = np.maximum.reduceat(similarities, starts, axis=1).mean(0)
    return scores, similarities


def best_sentence(similarities: np.ndarray, sentences: np.ndarray) -> int | None:
    """The sentence (number within its passage) whose tokens best match the question's: the
    highest MaxSim over that sentence's tokens alone; None when no token is in a sentence.

    `similarities` are the question-by-token cosines of one passage, `sentences` its tokens'
    sentence numbers (non-decreasing, heading tokens marked CONTEXT_SENTENCE)."""
    inside = sentences != CONTEXT_SENTENCE
    if not inside.any() or similarities.shape[0] == 0:
        return None
    numbers = sentences[inside]
    cosines = similarities[:, inside]
    starts = np.flatnonzero(np.concatenate([[True], numbers[1:] != numbers[:-1]]))
    per_sentence = np.maximum.reduceat(cosines, starts, axis=1).mean(0)
    return int(numbers[starts[int(np.argmax(per_sentence))]])


def sentence_numbers(token_starts: np.ndarray, context_chars: int, sentence_ends: np.ndarray) -> np.ndarray:
    """uint16 sentence number of each token of a passage, from its start offset in the
    embedded text (heading line first, `context_chars` long) and the passage's sentence ends."""
    in_text = token_starts.astype(np.int64) - context_chars
    numbers = np.searchsorted(sentence_ends, in_text, side="right")
    numbers = np.minimum(numbers, max(len(sentence_ends) - 1, 0))
    return np.where(in_text < 0, CONTEXT_SENTENCE, numbers).astype(np.uint16)
