"""Embedding an index's passages: one forward pass each, for its vector and its stored tokens.

The passages go through the engine in chunks of similar token length (little padding), the
tokens of each chunk compressed as soon as it is done, so a build holds one chunk of float32
tokens at a time rather than all of them. The codebook is trained on the first chunk, a
random sample of the passages (not the longest ones, which length order would put first);
an incremental build reuses the previous generation's codebook, so stored codes stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedder import Embedder, TokenSequence, progress_bar
from .token_store import TRAIN_TOKENS, Codebook, TokenBlock, sentence_numbers

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
    codebook: Codebook
    padding: float  # share of the engine's token slots that were padding


def encode_passages(embedder: Embedder, inputs: list[PassageInput], codebook: Codebook | None,
                    reused_tokens: list[np.ndarray] | None = None, *, progress: bool = False) -> EncodedPassages:
    """Vectors and compressed tokens of `inputs`.

    With `codebook` None a codebook is trained, on a sample of these passages' tokens plus
    `reused_tokens` (decoded tokens of reused passages, which are then re-encoded by the caller
    with the new codebook).
    """
    sequences = embedder.passage_sequences([i.text for i in inputs])
    vectors = np.zeros((len(inputs), embedder.dimension), np.float32)
    blocks: list[TokenBlock | None] = [None] * len(inputs)
    pending: list[tuple[int, np.ndarray]] = []  # rows whose tokens wait for the codebook
    bar = progress_bar(len(inputs), progress)
    slots = used = 0
    for rows in _chunks(sequences, training=codebook is None):
        chunk = embedder.embed_sequences([sequences[r] for r in rows], bar=bar)
        vectors[rows] = chunk.vectors
        slots, used = slots + chunk.slots, used + chunk.real_tokens
        for j, row in enumerate(rows):
            pending.append((int(row), chunk.of(j)))
        if codebook is None and sum(len(t) for _, t in pending) >= TRAIN_TOKENS:
            codebook = Codebook.train(np.concatenate([t for _, t in pending] + (reused_tokens or [])))
        if codebook is not None:
            for row, tokens in pending:
                blocks[row] = _block(codebook, tokens, inputs[row], sequences[row])
            pending = []
    bar.close()
    if codebook is None:
        sample = [t for _, t in pending] + (reused_tokens or [])
        codebook = Codebook.train(np.concatenate(sample)) if sample else Codebook(None, embedder.dimension)
    for row, tokens in pending:
        blocks[row] = _block(codebook, tokens, inputs[row], sequences[row])
    return EncodedPassages(vectors, blocks, codebook, 1 - used / slots if slots else 0.0)  # type: ignore[arg-type]


def _block(codebook: Codebook, tokens: np.ndarray, passage: PassageInput, sequence: TokenSequence) -> TokenBlock:
    numbers = sentence_numbers(np.asarray(sequence.starts, np.int64), passage.context_chars, passage.sentence_ends)
    return TokenBlock(codebook.encode(tokens), np.array([len(tokens)]), numbers)


def _chunks(sequences: list[TokenSequence], training: bool) -> list[np.ndarray]:
    """Rows in engine calls: when a codebook is to be trained, first a random sample of about
    TRAIN_TOKENS tokens; then the rest longest first, CHUNK_PASSAGES at a time."""
    lengths = np.fromiter((len(s.positions) for s in sequences), np.int64, len(sequences))
    rest = np.argsort(-lengths, kind="stable")
    chunks = []
    if training and len(sequences):
        shuffled = np.random.default_rng(0).permutation(len(sequences))
        take = int(np.searchsorted(np.cumsum(lengths[shuffled]), TRAIN_TOKENS)) + 1
        sample = np.sort(shuffled[:take])
        chunks.append(sample[np.argsort(-lengths[sample], kind="stable")])
        rest = rest[~np.isin(rest, sample)]
    chunks.extend(rest[start:start + CHUNK_PASSAGES] for start in range(0, len(rest), CHUNK_PASSAGES))
    return [c for c in chunks if len(c)]
