"""The token store: every passage's contextual token vectors, compressed, for MaxSim reranking.

One forward pass per passage gives its vector (the model's pooling) and its content tokens;
the tokens are kept here so that a question's own tokens can be matched against a candidate's
at search time (ColBERT's late interaction, Khattab & Zaharia 2020). Each token is stored as
int8 with one float32 scale (`dimension + 4` bytes, a quarter of float32); the question's
tokens are scored against the int8 values directly and the scales applied after, so nothing
is decoded to float32 first. Smaller codes were measured and lost more than the 0.3 nDCG@10 the
store may cost on some public set (product quantisation at 96 B/token, OPQ, PCA + int8 at
132-196 B/token: EVALUATION.md, scripts/li_fit.py). No training, so any index, however small,
and any incremental update store tokens the same way. The arrays are memory-mapped.

Each token also records which sentence of its passage holds it, so the sentence that best
matches the question is marked without sentence vectors (:func:`best_sentence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

CONTEXT_SENTENCE = np.iinfo(np.uint16).max  # a token of the heading line, in no sentence

FILES = ("token_codes.npy", "token_offsets.npy", "token_sentences.npy")


class TokenFormat(BaseModel):
    """How the tokens of a generation are stored: the record in its manifest (`tokens`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["int8"]
    bytes_per_token: int


@dataclass
class TokenBlock:
    """Tokens of consecutive passages, in stored form."""

    codes: np.ndarray  # uint8 [T, dimension + 4]: int8 values, then the float32 scale's bytes
    sentences: np.ndarray  # uint16 [T]: sentence number of each token within its passage


class Int8Codec:
    """The token codec: int8 values with a per-token float32 scale; encode, score and decode."""

    def __init__(self, dimension: int):
        self.dimension = dimension

    @property
    def record(self) -> TokenFormat:
        """How this codec's tokens are stored, as a generation's manifest records it."""
        return TokenFormat(kind="int8", bytes_per_token=self.width)

    @property
    def width(self) -> int:
        """Columns (bytes) of the stored codes."""
        return self.dimension + 4

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        scale = (np.maximum(np.abs(tokens).max(1, keepdims=True), 1e-12) / 127).astype(np.float32)
        values = np.round(tokens / scale).astype(np.int8)
        return np.hstack([values.view(np.uint8), scale.view(np.uint8)])

    def similarities(self, question: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Cosines [question tokens, stored tokens] of normalised question tokens with stored ones."""
        values, scales = self._unpack(codes)
        return (question @ values.T) * scales

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The stored tokens back in float32 (to the int8 rounding)."""
        values, scales = self._unpack(codes)
        return values * scales[:, None]

    def scales(self, codes: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(codes[:, self.dimension:]).view(np.float32)[:, 0]

    def _unpack(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = np.asarray(codes)
        return codes[:, :self.dimension].view(np.int8).astype(np.float32), self.scales(codes)

    def empty(self) -> np.ndarray:
        return np.zeros((0, self.width), np.uint8)


class TokenStore:
    """The stored tokens of one generation, memory-mapped, aligned with its passage rows."""

    def __init__(self, codec: Int8Codec, codes: np.ndarray, offsets: np.ndarray, sentences: np.ndarray):
        self.codec, self.codes, self.offsets, self.sentences = codec, codes, offsets, sentences

    @classmethod
    def open(cls, folder: Path, dimension: int) -> TokenStore:
        codes, offsets, sentences = (np.load(folder / name, mmap_mode="r") for name in FILES)
        return cls(Int8Codec(dimension), codes, np.asarray(offsets), sentences)

    def damage(self, passages: int, dimension: int) -> str | None:
        """Why these arrays cannot be this generation's tokens, or None (linear, numpy only)."""
        width, dtype = self.codec.width, np.uint8
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
        return TokenBlock(np.asarray(self.codes[a:b]), np.asarray(self.sentences[a:b]))

    def codes_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stored codes of `rows`, one after the other; each row's token count)."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        if not len(rows):
            return self.codec.empty(), ends - starts
        return np.concatenate([self.codes[a:b] for a, b in zip(starts, ends)]), (ends - starts)

    def tokens(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float32 tokens of `rows` as stored, decoded; each row's token count)."""
        codes, counts = self.codes_of(rows)
        return self.codec.decode(codes), counts

    def similarities(self, question: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosines [question tokens, tokens of `rows`], each row's token count).

        The rows' int8 values are converted straight from the memory map into one float32
        matrix (no gathered copy of the codes first), then scored with one matrix product: the
        rerank's cost is this conversion and that product (BENCHMARKS.md, latency)."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        counts = ends - starts
        dimension = self.codec.dimension
        values = np.empty((int(counts.sum()), dimension), np.float32)
        scales = np.empty(len(values), np.float32)
        at = 0
        for a, b in zip(starts.tolist(), ends.tolist()):
            block = self.codes[a:b]
            values[at:at + b - a] = block[:, :dimension].view(np.int8)
            scales[at:at + b - a] = self.codec.scales(block)
            at += b - a
        return (question @ values.T) * scales, counts


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
