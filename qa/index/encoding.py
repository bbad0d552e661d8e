"""Embedding an index's passages: one forward pass each, for its vector and its stored tokens.

The passages go through the engine longest first in chunks of similar token length (little
padding), the tokens of each chunk compressed as soon as it is done, so a build holds one chunk
of float32 tokens at a time rather than all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engines.base import Embedder, TokenSequence, progress_bar
from .tokens import Int8Codec, TokenBlock, sentence_numbers

CHUNK_PASSAGES = 256  # passages per engine call: ~70 MB of float32 tokens at 180 tokens each


@dataclass
class PassageInput:
    """What the model reads for one passage, and where its sentences end (for token marking)."""

    text: str  # the embedded text: heading line, then the passage
    context_chars: int  # length of the heading part before the passage text
    sentence_ends: np.ndarray  # int64 end offsets of the passage's sentences, in the passage text


@dataclass
class EncodedPassages:
    vectors: np.ndarray  # float32 [n, dimension]
    blocks: list[TokenBlock]  # one per passage, in input order
    padding: float  # share of the engine's token slots that were padding


def encode_passages(embedder: Embedder, inputs: list[PassageInput], *, progress: bool = False) -> EncodedPassages:
    """Vectors and compressed tokens of `inputs`."""
    codec = Int8Codec(embedder.dimension)
    sequences = embedder.passage_sequences([i.text for i in inputs])
    vectors = np.zeros((len(inputs), embedder.dimension), np.float32)
    blocks: list[TokenBlock | None] = [None] * len(inputs)
    bar = progress_bar(len(inputs), progress)
    slots = used = 0
    lengths = np.fromiter((len(s.ids) for s in sequences), np.int64, len(sequences))
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), CHUNK_PASSAGES):
        rows = order[start:start + CHUNK_PASSAGES]
        chunk = embedder.embed_sequences([sequences[r] for r in rows], bar=bar)
        vectors[rows] = chunk.vectors
        slots, used = slots + chunk.slots, used + chunk.real_tokens
        for j, row in enumerate(rows):
            blocks[row] = _block(codec, chunk.of(j), inputs[row], sequences[row])
    bar.close()
    return EncodedPassages(vectors, blocks, 1 - used / slots if slots else 0.0)  # type: ignore[arg-type]


def _block(codec: Int8Codec, tokens: np.ndarray, passage: PassageInput, sequence: TokenSequence) -> TokenBlock:
    numbers = sentence_numbers(np.asarray(sequence.starts, np.int64), passage.context_chars, passage.sentence_ends)
    return TokenBlock(codec.encode(tokens), numbers)
