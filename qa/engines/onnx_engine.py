"""The ONNX engine: onnxruntime + tokenizers over the model folder's exact export, no torch.

:class:`OnnxModel` is the transformer alone: token ids in, contextual token states out (the
`last_hidden_state` of the export). :class:`OnnxEmbedder` does around it what
sentence-transformers does: tokenize with truncation at the model's limit, batch texts of
similar length together (little padding), pool as the folder's `1_Pooling` says and normalise
when it has a `Normalize` module. Its vectors equal the torch engine's to cosine >= 0.9999,
checked when the export is written and in the tests.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .base import BATCH_SIZE, Embedder, TokenSequence, budget_batches, length_batches, progress_bar
from ..errors import ModelError
from ..model.folder import EXPORT_FOLDER, INT8_FILE, MODEL_FILE, FolderLayout, read_layout
from .unigram import VOCAB_FILE, FastUnigram

# Texts up to this many characters in all (a question, a batch of questions) are tokenized by
# the fast Unigram path while the full tokenizer is not loaded; longer work loads it once.
FAST_PATH_CHARS = 4000
# Bulk work (an index build) runs batches of at most this many token slots, `threads` of them at
# once on a single-threaded session: on this model and a 2-core CPU, two concurrent one-thread
# runs of small batches outpace one two-thread run of large ones (BENCHMARKS.md, indexing).
BULK_TOKEN_BUDGET = 1024
BULK_MAX_ROWS = 64


class OnnxModel:
    """An onnxruntime session over an exported transformer (the shape of fastembed's OnnxModel).

    Two sessions over the one file, each opened on first use: a `threads`-thread one for a
    single batch (a question: its latency), and a one-thread one that runs `threads` batches at
    once for bulk work (a build: its throughput). The weights are memory-mapped from the
    export, so the second session costs its own working memory, not another copy of the model."""

    def __init__(self, path: Path, threads: int):
        self.path, self.threads = path, threads
        # Not spinning: a question's forward pass is followed at once by the MaxSim rerank's
        # matrix product, whose BLAS threads a still-spinning onnxruntime thread would slow down
        # (measured: the rerank costs less than half as much, the forward pass the same; BENCHMARKS.md).
        self.session = self._open(threads, spinning=False)
        self._bulk = None
        self._bulk_lock = threading.Lock()
        self.input_names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = next((n for n in ("last_hidden_state", "token_embeddings") if n in outputs), outputs[0])

    def _open(self, threads: int, spinning: bool = True):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged or foreign file: one line, not onnxruntime's trace
            raise ModelError(f"cannot open the ONNX model {self.path}: {str(exc).strip().splitlines()[0][:160]}") from None

    def token_states(self, ids: np.ndarray, mask: np.ndarray, session=None) -> np.ndarray:
        """float32 [batch, sequence, hidden] for int64 token ids and attention mask."""
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return (session or self.session).run([self.output], feed)[0]

    def token_states_many(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        """token_states of each (ids, mask) batch, in order, `threads` batches running at once
        (onnxruntime releases the GIL); at most 2 x threads batches are in flight."""
        if self.threads < 2:
            yield from (self.token_states(ids, mask) for ids, mask in batches)
            return
        if self._bulk is None:
            with self._bulk_lock:  # two builds or batched calls at once open one session
                if self._bulk is None:
                    self._bulk = self._open(1)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="qa-onnx") as pool:
            pending: deque = deque()
            for ids, mask in batches:
                pending.append(pool.submit(self.token_states, ids, mask, self._bulk))
                if len(pending) >= 2 * self.threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


class OnnxEmbedder(Embedder):
    """Sentence vectors from :class:`OnnxModel`, pooled and normalised like the torch engine."""

    backend = "onnx"

    def __init__(self, spec, threads, model_path: Path | None = None, *, query_precision: str = "fp32",
                 passage_precision: str = "fp32"):
        """`model_path` (an export being checked) serves both sides; else questions and passages
        run the export of their precision: fp32 `onnx/model.onnx` or int8 `onnx/model_int8.onnx`."""
        super().__init__(spec, threads)
        self.folder = Path(spec.location)
        self.query_precision, self.passage_precision = query_precision, passage_precision
        paths = {"fp32": self.folder / EXPORT_FOLDER / MODEL_FILE, "int8": self.folder / EXPORT_FOLDER / INT8_FILE}
        self.model_path = model_path or paths[passage_precision]
        self.query_model_path = model_path or paths[query_precision]
        self.layout: FolderLayout = read_layout(self.folder)
        self._model: OnnxModel | None = None
        self._query_model: OnnxModel | None = None
        self._fast: FastUnigram | None = None

    def load(self) -> None:
        self._engine(query=True)
        self._fast_tokenizer()

    def _engine(self, query: bool = False) -> OnnxModel:
        """The passages' model, or the questions' (the same one when both sides share a precision)."""
        if query and self.query_model_path != self.model_path:
            return self._once("_query_model", lambda: OnnxModel(self.query_model_path, self.threads))
        return self._once("_model", lambda: OnnxModel(self.model_path, self.threads))

    def _fast_tokenizer(self) -> FastUnigram | None:
        """The exact Unigram fast path, when the export ships its vocabulary file."""
        path = self.model_path.parent / VOCAB_FILE
        if self._fast is None and not path.is_file():
            return None
        return self._once("_fast", lambda: FastUnigram(path, self.layout.max_seq_length))

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        fast = None
        if self._counter is None and sum(map(len, texts)) <= FAST_PATH_CHARS:
            fast = self._fast_tokenizer()
        if fast is not None:
            return [fast.encode(text) for text in texts]
        return [self._truncate(encoding.ids) for encoding in self._token_counter().encode_batch(texts)]

    def _load_counter(self):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from tokenizers import Tokenizer

        path = self.folder / self.layout.transformer_path / "tokenizer.json"
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ModelError(f"cannot read the tokenizer {path}: {str(exc)[:120]}") from None
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    @property
    def dimension(self) -> int:
        return self.layout.dimension

    def max_sequence_length(self) -> int:
        return self.layout.max_seq_length

    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        sequences = [TokenSequence(ids, [], []) for ids in self._token_ids([prefix + t for t in texts])]
        bar = progress_bar(len(texts), progress)
        try:
            return self._forward(sequences, batch_size, bar, keep_tokens=False)[0]  # passages: see embed_queries
        finally:
            bar.close()

    def embed_queries(self, texts, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Question vectors alone, on the questions' model (whatever the prefixes)."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return self.embed_queries_with_tokens(texts, batch_size).vectors

    def _forward(self, sequences: list[TokenSequence], batch_size: int, bar, query: bool = False,
                 keep_tokens: bool = True) -> tuple[np.ndarray, list[np.ndarray], int]:
        model = self._engine(query)
        lengths = np.fromiter((len(s.ids) for s in sequences), np.int64, len(sequences))
        vectors = np.empty((len(sequences), self.dimension), np.float32)
        states: list[np.ndarray] = [None] * len(sequences)  # type: ignore[list-item]
        slots = 0
        plan = self._batches(lengths, batch_size, model)
        padded = (self._pad([sequences[i].ids for i in rows], int(lengths[rows].max())) for rows in plan)
        runs = model.token_states_many(padded) if len(plan) > 1 else (model.token_states(*f) for f in padded)
        for rows, batch in zip(plan, runs, strict=True):
            mask = (np.arange(batch.shape[1]) < lengths[rows][:, None]).astype(np.int64)
            vectors[rows] = self._pool(batch, mask)
            if keep_tokens:
                for j, row in enumerate(rows):
                    states[row] = batch[j, sequences[row].positions]
            slots += len(rows) * int(lengths[rows].max())
            bar.update(len(rows))
        return vectors, states, slots

    @staticmethod
    def _batches(lengths: np.ndarray, batch_size: int, model: OnnxModel) -> list[np.ndarray]:
        """Longest first; for bulk work on several threads, batches cut to a token budget."""
        if model.threads < 2 or len(lengths) <= batch_size:
            return list(length_batches(lengths, batch_size))
        return list(budget_batches(lengths, BULK_TOKEN_BUDGET, BULK_MAX_ROWS))

    def _query_sequences(self, texts: list[str]) -> list[TokenSequence]:
        """Questions through the fast Unigram path when it is there (no 0.6 s tokenizer load):
        its ids are tokenizers' own, and the prefix is a fixed run of tokens after the opening
        specials (it ends at a word boundary)."""
        fast = self._fast_tokenizer() if self._counter is None and sum(map(len, texts)) <= FAST_PATH_CHARS else None
        if fast is None:
            return super()._query_sequences(texts)
        prefix = self.spec.query_prefix
        framing = len(fast.before) + len(fast.after)
        skip = len(fast.before) + (len(fast.encode(prefix.rstrip())) - framing if prefix.strip() else 0)
        sequences = []
        for text in texts:
            ids = fast.encode(prefix + text)
            positions = list(range(skip, len(ids) - len(fast.after)))
            sequences.append(TokenSequence(ids, positions, [0] * len(positions)))
        return sequences

    def _pad(self, sequences: list[list[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((len(sequences), width), self.layout.pad_id, np.int64)
        mask = np.zeros((len(sequences), width), np.int64)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = sequence
            mask[row, :len(sequence)] = 1
        return ids, mask

    def _pool(self, states: np.ndarray, mask: np.ndarray) -> np.ndarray:
        vectors = pool(states, mask, self.layout.pooling)
        if self.layout.normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


def pool(states: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' pooling modes over float32 [batch, sequence, hidden] states."""
    weights = mask[..., None].astype(np.float32)
    if mode == "cls":
        return states[:, 0]
    if mode == "lasttoken":
        return states[np.arange(len(states)), mask.sum(1) - 1]
    if mode == "max":
        return np.where(weights > 0, states, -1e9).max(1)
    summed = (states * weights).sum(1)
    counts = np.maximum(weights.sum(1), 1e-9)
    if mode == "mean_sqrt_len_tokens":
        return summed / np.sqrt(counts)
    if mode == "mean":
        return summed / counts
    raise ModelError(f"pooling {mode!r} is not supported by the ONNX engine")
