"""The token store: every passage's contextual token vectors, compressed, for MaxSim reranking.

One forward pass per passage gives its vector (the model's pooling) and its content tokens;
the tokens are kept here so that a question's own tokens can be matched against a candidate's
at search time (ColBERT's late interaction, Khattab & Zaharia 2020). Uncompressed they would
cost ~140 KB a passage (float16), so each token is projected on the index's first principal
axes (a PCA of a sample of its own tokens, kept beside the codes) and stored as int8 with one
float32 scale: `dims + 4` bytes. Product quantisation at the same size or smaller lost more
nDCG on every public set (EVALUATION.md, scripts/li_fit.py). The question's tokens are
projected once, so scoring never decodes a passage's tokens back to full width. An index with
too few tokens to train the projection keeps them in float16. The arrays are memory-mapped.

Each token also records which sentence of its passage holds it, so the sentence that best
matches the question is marked without sentence vectors (:func:`best_sentence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

# Principal axes kept per token, chosen on the public sets (EVALUATION.md, scripts/li_fit.py);
# the training sample, and the fewest tokens to train on (below that: float16 tokens, which cost
# little at that size).
PCA_DIMS = 128
MIN_TRAIN_TOKENS = 10_000
TRAIN_TOKENS = 65_536
CONTEXT_SENTENCE = np.iinfo(np.uint16).max  # a token of the heading line, in no sentence

FILES = ("token_codes.npy", "token_offsets.npy", "token_sentences.npy")
CODEBOOK_FILE = "token_codebook.npy"


class TokenCodec(BaseModel):
    """How the tokens of a generation are stored (recorded in its manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["pca-int8", "fp16"]
    bytes_per_token: int


@dataclass
class TokenBlock:
    """Tokens of consecutive passages, in stored form."""

    codes: np.ndarray  # uint8 [T, dims + 4] (pca-int8) or float16 [T, dimension] (fp16)
    counts: np.ndarray  # int64 [n]: tokens per passage
    sentences: np.ndarray  # uint16 [T]: sentence number of each token within its passage


class Codebook:
    """A token projection (mean and principal axes), or none for float16 storage."""

    def __init__(self, axes: np.ndarray | None, dimension: int):
        # float32 [dims + 1, dimension]: row 0 the sample's mean, then the principal axes
        self.axes, self.dimension = axes, dimension

    @classmethod
    def train(cls, sample: np.ndarray, dims: int = PCA_DIMS) -> Codebook:
        """The projection for `sample` (normalised float32 tokens); float16 when it is too small."""
        dimension = sample.shape[1]
        if len(sample) < MIN_TRAIN_TOKENS or dims >= dimension:
            return cls(None, dimension)
        sample = np.asarray(sample, np.float64)
        mean = sample.mean(0)
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        return cls(np.vstack([mean, vt[:dims]]).astype(np.float32), dimension)

    @property
    def codec(self) -> TokenCodec:
        if self.axes is None:
            return TokenCodec(kind="fp16", bytes_per_token=2 * self.dimension)
        return TokenCodec(kind="pca-int8", bytes_per_token=len(self.axes) - 1 + 4)

    @property
    def width(self) -> int:
        """Columns of the stored codes."""
        return self.dimension if self.axes is None else len(self.axes) - 1 + 4

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        if self.axes is None:
            return tokens.astype(np.float16)
        projected = (tokens - self.axes[0]) @ self.axes[1:].T
        scale = np.maximum(np.abs(projected).max(1, keepdims=True), 1e-12).astype(np.float32) / 127
        codes = np.round(projected / scale).astype(np.int8)
        return np.hstack([codes.view(np.uint8), scale.view(np.uint8)])

    def similarities(self, question: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Cosines [question tokens, stored tokens] of normalised question tokens with stored
        tokens: t ~ mean + p A, so q . t = q . mean + (q A^T) . p, without decoding t."""
        if self.axes is None:
            return question @ codes.astype(np.float32).T
        projected, scales = self._unpack(codes)
        return (question @ self.axes[1:].T) @ (projected * scales).T + (question @ self.axes[0])[:, None]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The stored tokens back in float32 (approximately, for the projection)."""
        if self.axes is None:
            return codes.astype(np.float32)
        projected, scales = self._unpack(codes)
        return (projected * scales) @ self.axes[1:] + self.axes[0]

    def _unpack(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dims = len(self.axes) - 1
        codes = np.ascontiguousarray(codes)
        return codes[:, :dims].view(np.int8).astype(np.float32), codes[:, dims:].copy().view(np.float32)

    def empty(self) -> np.ndarray:
        """Zero stored tokens of this codec (the codes of an empty passage list)."""
        return np.zeros((0, self.width), np.float16 if self.axes is None else np.uint8)


class TokenStore:
    """The stored tokens of one generation, memory-mapped, aligned with its passage rows."""

    def __init__(self, codebook: Codebook, codes: np.ndarray, offsets: np.ndarray, sentences: np.ndarray):
        self.codebook, self.codes, self.offsets, self.sentences = codebook, codes, offsets, sentences

    @classmethod
    def open(cls, folder: Path, dimension: int) -> TokenStore:
        codebook_path = folder / CODEBOOK_FILE
        axes = np.load(codebook_path) if codebook_path.is_file() else None
        codes, offsets, sentences = (np.load(folder / name, mmap_mode="r") for name in FILES)
        return cls(Codebook(axes, dimension), codes, np.asarray(offsets), sentences)

    def damage(self, passages: int, dimension: int) -> str | None:
        """Why these arrays cannot be this generation's tokens, or None (linear, numpy only)."""
        codec = self.codebook.codec
        width = self.codebook.width
        dtype = np.float16 if codec.kind == "fp16" else np.uint8
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

    def codes_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stored codes of `rows`, one after the other; each row's token count)."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        index = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(rows) else np.zeros(0, int)
        return np.asarray(self.codes[index]), (ends - starts)

    def tokens(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float32 tokens of `rows` as stored, decoded; each row's token count)."""
        codes, counts = self.codes_of(rows)
        return self.codebook.decode(codes), counts

    def similarities(self, question: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosines [question tokens, tokens of `rows`], each row's token count)."""
        codes, counts = self.codes_of(rows)
        return self.codebook.similarities(question, codes), counts


def maxsim(similarities: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """MaxSim per passage from the question-by-token cosines of consecutive passages: the mean
    over the question's tokens of their best cosine among the passage's tokens. A passage
    without tokens scores 0."""
    scores = np.zeros(len(counts), np.float32)
    nonempty = counts > 0
    if similarities.size and nonempty.any():
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
        scores[nonempty] = np.maximum.reduceat(similarities, starts, axis=1).mean(0)
    return scores


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
