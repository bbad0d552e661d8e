"""The engine-neutral embedder: the interface the index and the search use, and its shared half.

:class:`Embedder` is the model's identity (`spec`), its token budget (`max_tokens`,
`count_tokens`), `embed_queries` / `embed_passages` (the model's query and passage prefixes
applied here, once for every engine) and `dimension`. Engines (:mod:`qa.engines.onnx_engine`,
:mod:`qa.engines.torch_engine`, a test's fake) subclass it and provide `_encode` and the model's limits;
:func:`qa.engines.load_embedder` chooses one. Its own module so that engines import the
interface without importing the factory that imports them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import ModelError
from ..model.spec import ModelSpec
from ..text import valid_text

BATCH_SIZE = 32


@dataclass
class TokenEmbeddings:
    """One forward pass per text: its pooled vector and its contextual content-token vectors.

    Content tokens exclude the special tokens and the model's prefix (``passage: ``), and are
    L2-normalised, so a token's dot product with a question token is their cosine (MaxSim).
    """

    vectors: np.ndarray  # float32 [n, dimension]: the model's own pooling, as embed_* returns
    tokens: np.ndarray  # float32 [T, dimension]: every text's content tokens, text after text
    offsets: np.ndarray  # int64 [n + 1]: tokens[offsets[i]:offsets[i + 1]] are text i's
    starts: np.ndarray  # int32 [T]: where each token starts in its text (the prefix not counted)
    real_tokens: int = 0  # token ids the engine read, special and prefix tokens included
    slots: int = 0  # token positions it computed, padding included

    def of(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]


@dataclass
class TokenSequence:
    """A text's token ids (special tokens included) and the positions of its content tokens."""

    ids: list[int]
    positions: list[int]
    starts: list[int]  # character start of each content token in the text (prefix not counted)


class Embedder(ABC):
    """A model that turns questions and passages into L2-normalised vectors."""

    backend: ClassVar[str]
    # What questions and passages are embedded at: "fp32", or "int8" on the ONNX engine.
    query_precision: str = "fp32"
    passage_precision: str = "fp32"

    def __init__(self, spec: ModelSpec, threads: int = 1):
        self.spec = spec
        self.threads = threads
        self._counter = None
        self._closing_ids: list[int] | None = None
        # Reentrant: the torch engine's counter may load the model, which takes the lock too.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ what engines provide

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of the vectors."""

    @abstractmethod
    def max_sequence_length(self) -> int:
        """Tokens the model reads at most, special tokens included (known without loading it)."""

    @abstractmethod
    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        """Vectors of `prefix + text` for each text, float32 [n, dimension], L2-normalised."""

    def _forward(self, sequences: list[TokenSequence], batch_size: int, bar, query: bool = False
                 ) -> tuple[np.ndarray, list[np.ndarray], int]:
        """(pooled vectors [n, dimension], each sequence's states at its content positions,
        token slots computed) from one forward pass per sequence, `bar` updated per batch;
        `query`: the sequences are questions (an engine may run them at another precision).
        Engines that can return token states provide it."""
        raise ModelError(f"the {self.backend} engine cannot return token embeddings")

    def load(self) -> None:
        """Load the engine now rather than on first use."""

    def preload(self) -> None:
        """Start loading the engine in a background thread, so that the time it takes (reading
        the tokenizer, opening the session) overlaps with opening the index. A failure is not
        reported here: the first embedding loads again and raises it, on one line."""
        def load_quietly() -> None:
            try:
                self.load()
            except Exception:
                pass

        # Not a daemon: the interpreter waits for it at exit. Killing a thread inside
        # onnxruntime's or torch's initialisation aborts the process ("terminate called...").
        threading.Thread(target=load_quietly, name="qa-engine-load").start()

    # ------------------------------------------------------------------ shared behaviour

    @property
    def max_tokens(self) -> int:
        """Content tokens a passage may have, its prefix included, special tokens excluded."""
        return self.max_sequence_length() - 2

    def count_tokens(self, text: str) -> int:
        """Content tokens of `text` (no special tokens), as the model will see them."""
        return len(self._token_counter().encode(valid_text(text), add_special_tokens=False).ids)

    def embed_queries(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        return self._embed(texts, self.spec.query_prefix, batch_size, progress=False)

    def embed_passages(self, texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: bool = False) -> np.ndarray:
        return self._embed(texts, self.spec.passage_prefix, batch_size, progress)

    def embed_passages_with_tokens(self, texts: Sequence[str], batch_size: int = BATCH_SIZE,
                                   progress: bool = False) -> TokenEmbeddings:
        """Passage vectors and their content tokens, from one forward pass per passage."""
        sequences = self.passage_sequences(texts)
        bar = progress_bar(len(sequences), progress)
        try:
            return self.embed_sequences(sequences, batch_size, bar)
        finally:
            bar.close()

    def embed_queries_with_tokens(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> TokenEmbeddings:
        """Question vectors and their content tokens, from the one pass a question gets anyway."""
        return self.embed_sequences(self._query_sequences([valid_text(t) for t in texts]), batch_size, query=True)

    def passage_sequences(self, texts: Sequence[str]) -> list[TokenSequence]:
        """The token ids the model will read for each passage (tokenizing is cheap; a build
        plans its engine calls from these lengths)."""
        return self._sequences([valid_text(t) for t in texts], self.spec.passage_prefix)

    def embed_sequences(self, sequences: list[TokenSequence], batch_size: int = BATCH_SIZE,
                        bar=None, *, query: bool = False) -> TokenEmbeddings:
        """One forward pass per sequence: pooled vectors and normalised content tokens
        (`query`: questions, which the ONNX engine may run at another precision)."""
        if not sequences:
            empty = np.zeros((0, self.dimension), np.float32)
            return TokenEmbeddings(empty, empty, np.zeros(1, np.int64), np.zeros(0, np.int32))
        vectors, states, slots = self._forward(sequences, batch_size, bar or progress_bar(0, False), query=query)
        tokens = np.concatenate(states).astype(np.float32, copy=False)
        tokens /= np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in states])]).astype(np.int64)
        starts = np.fromiter((c for s in sequences for c in s.starts), np.int32, int(offsets[-1]))
        return TokenEmbeddings(np.ascontiguousarray(vectors, dtype=np.float32), tokens, offsets, starts,
                               real_tokens=sum(len(s.ids) for s in sequences), slots=slots)

    def _query_sequences(self, texts: list[str]) -> list[TokenSequence]:
        return self._sequences(texts, self.spec.query_prefix)

    def _sequences(self, texts: list[str], prefix: str) -> list[TokenSequence]:
        """Ids cut at the model's limit, the content tokens told apart by their offsets: not
        special, not cut off, and not the prefix (they start where its last word has ended)."""
        cut, closing = len(prefix.rstrip()), len(self._closing())
        sequences = []
        for encoding in self._token_counter().encode_batch([prefix + t for t in texts]):
            ids = self._truncate(encoding.ids)
            offsets, special = encoding.offsets, encoding.special_tokens_mask
            positions = [i for i in range(len(ids) - closing)
                         if not special[i] and offsets[i][1] > offsets[i][0] and offsets[i][0] >= cut]
            starts = [max(offsets[i][0] - len(prefix), 0) for i in positions]
            sequences.append(TokenSequence(ids, positions, starts))
        return sequences

    def _truncate(self, ids: list[int]) -> list[int]:
        """`ids` (special tokens included) cut to the model's limit as `tokenizers` cuts: the
        content shortened from the right, the closing special tokens kept. One untruncated
        tokenizer then serves both counting and encoding: building it costs 0.6 s."""
        limit = self.max_sequence_length()
        if len(ids) <= limit:
            return ids
        closing = self._closing()
        return ids[:limit - len(closing)] + closing

    def _closing(self) -> list[int]:
        return self._once("_closing_ids", self._closing_specials)

    def _closing_specials(self) -> list[int]:
        """The special ids the post-processor appends after a text (`</s>` for XLM-R)."""
        tokenizer = self._token_counter()
        content = tokenizer.encode("a", add_special_tokens=False).ids
        framed = tokenizer.encode("a").ids
        start = next(i for i in range(len(framed)) if framed[i:i + len(content)] == content)
        return framed[start + len(content):]

    def _embed(self, texts: Sequence[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        vectors = self._encode([valid_text(t) for t in texts], prefix, batch_size, progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _once(self, attribute: str, make):
        """`self.<attribute>`, made by `make()` the first time, once across threads."""
        if getattr(self, attribute) is None:
            with self._lock:
                if getattr(self, attribute) is None:
                    setattr(self, attribute, make())
        return getattr(self, attribute)

    def _token_counter(self):
        """The fast tokenizer alone, untruncated: counting must not cost loading the model."""
        return self._once("_counter", self._load_counter)

    def _load_counter(self):
        path = Path(self.spec.location) / "tokenizer.json"
        if not (self.spec.is_local and path.is_file()):
            raise ModelError(f"model {self.spec.model_id} has no tokenizer.json")
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.model_id} threads={self.threads}>"


def length_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Rows in batches of similar token length, longest first: padding stays small, and the
    first batch is the largest, so memory peaks at once rather than at the end."""
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool, desc: str = "embedding", unit: str = "text"):
    """A tqdm bar on long work; nothing (and no tqdm import) on the question path."""
    if not enabled or total < 2:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "char", leave=False)


def budget_batches(lengths: np.ndarray, token_budget: int, max_rows: int) -> Iterator[np.ndarray]:
    """Rows longest first, in batches of at most `token_budget` token slots (rows x the batch's
    longest) and `max_rows` rows: long texts go a few at a time, short ones many at a time."""
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        rows = max(1, min(max_rows, token_budget // max(int(lengths[order[start]]), 1)))
        yield order[start:start + rows]
        start += rows
