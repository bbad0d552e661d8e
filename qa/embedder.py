"""The engine-neutral embedder: the interface the index and the search use, and its shared half.

:class:`Embedder` is the model's identity (`spec`), its token budget (`max_tokens`,
`count_tokens`), `embed_queries` / `embed_passages` (the model's query and passage prefixes
applied here, once for every engine) and `dimension`. Engines (:mod:`qa.onnx_engine`,
:mod:`qa.torch_engine`, a test's fake) subclass it and provide `_encode` and the model's limits;
:func:`qa.embedding.load_embedder` chooses one. Its own module so that engines import the
interface without importing the factory that imports them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from .errors import ModelError
from .spec import ModelSpec
from .text import valid_text

BATCH_SIZE = 32


class Embedder(ABC):
    """A model that turns questions and passages into L2-normalised vectors."""

    backend: ClassVar[str]

    def __init__(self, spec: ModelSpec, threads: int = 1):
        self.spec = spec
        self.threads = threads
        self._counter = None
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
