"""Embedding questions and passages: one small interface, two engines, one factory.

:class:`Embedder` is what the index and the search use: the model's identity (`spec`), its
token budget (`max_tokens`, `count_tokens`), `embed_queries` / `embed_passages` (the model's
query and passage prefixes applied here, once for both engines) and `dimension`. Two engines
implement it:

- ``onnx`` (:mod:`qa.onnx_engine`): onnxruntime + tokenizers over the folder's exact ONNX export
  (`onnx/model.onnx`); no torch, so a question costs milliseconds and a process answers its
  first question about a second after it starts;
- ``torch`` (:mod:`qa.torch_engine`): sentence-transformers itself, for any model.

:func:`load_embedder` is the one place an embedder is made. ``auto`` picks ``onnx`` when the
model folder holds a verified export of the same weights, else ``torch``. Engines load lazily,
on first use, so a command that never embeds never pays for loading one.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal, get_args

import numpy as np

from .errors import ModelError, QAError
from .model import ModelSpec, resolve_model
from .text import valid_text

BATCH_SIZE = 32
Backend = Literal["auto", "onnx", "torch"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# Default engine threads, per engine, picked from `python -m bench --only threads`
# (BENCHMARKS.md): onnxruntime's threads spin briefly, then sleep, so one thread per core is the
# fastest idle and costs little when another process keeps the cores busy; torch's OpenMP
# threads wait at every barrier for a descheduled peer, and two of them collapse under such a
# load, so torch gets one.
TORCH_THREADS = 1


class Embedder(ABC):
    """A model that turns questions and passages into L2-normalised vectors."""

    backend: ClassVar[str]

    def __init__(self, spec: ModelSpec, threads: int = 1):
        self.spec = spec
        self.threads = threads
        self._counter = None
        self._lock = threading.Lock()

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

    def _embed(self, texts: Sequence[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        vectors = self._encode([valid_text(t) for t in texts], prefix, batch_size, progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _token_counter(self):
        """The fast tokenizer alone, untruncated: counting must not cost loading the model."""
        if self._counter is None:
            with self._lock:
                if self._counter is None:
                    self._counter = self._load_counter()
        return self._counter

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


def load_embedder(model: str | ModelSpec | None = None, *, backend: str | None = None,
                  threads: int | None = None) -> Embedder:
    """The embedder for `model` (default: $QA_MODEL, else the built-in model) on `backend`
    (default: $QA_BACKEND, else auto) with `threads` engine threads (default: $QA_THREADS, else
    :func:`default_threads`)."""
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    chosen = choose_backend(spec, backend or os.environ.get("QA_BACKEND") or "auto")
    count = resolve_threads(threads, chosen)
    if chosen == "onnx":
        from .onnx_engine import OnnxEmbedder

        return OnnxEmbedder(spec, count)
    from .torch_engine import TorchEmbedder

    return TorchEmbedder(spec, count)


def choose_backend(spec: ModelSpec, backend: str) -> str:
    """`onnx` or `torch` for `spec`; `auto` takes onnx whenever a verified export is there."""
    if backend not in BACKENDS:
        raise QAError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return "torch"
    from .onnx_export import export_problem

    problem = export_problem(spec)
    if problem is None:
        return "onnx"
    if backend == "onnx":
        raise ModelError(f"{problem}; write it with `qa model --model {spec.location}`, or use --backend torch")
    return "torch"


def resolve_threads(threads: int | None, backend: str = "onnx") -> int:
    """The engine's thread count: the argument, else $QA_THREADS, else the engine's default."""
    if threads is None:
        raw = os.environ.get("QA_THREADS", "").strip()
        if not raw:
            return default_threads(backend)
        try:
            threads = int(raw)
        except ValueError:
            raise QAError(f"QA_THREADS must be a whole number (got {raw!r})") from None
    if threads < 1 or threads > 256:
        raise QAError(f"the number of threads must be between 1 and 256 (got {threads})")
    return threads


def default_threads(backend: str) -> int:
    """onnx: one thread per core this process may run on; torch: TORCH_THREADS."""
    if backend == "torch":
        return TORCH_THREADS
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
