"""Embedding questions and passages with a sentence-transformer.

:class:`Embedder` resolves the model at construction (cheap, no torch) and loads it on first
use, so a command that never embeds never pays the seconds of importing torch. Texts are always
embedded in batches; queries get the model's query prefix and passages its passage prefix.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError
from .model import ModelSpec, resolve_model

BATCH_SIZE = 32


def _quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, hub warnings) out of the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("transformers", "sentence_transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


class Embedder:
    """A lazily loaded sentence-transformer with the model's query/passage prefixes."""

    def __init__(self, model: str | ModelSpec | None = None):
        self.spec = model if isinstance(model, ModelSpec) else resolve_model(model)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def model(self):
        """The SentenceTransformer, loaded once (thread-safe)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        _quiet_libraries()
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            return SentenceTransformer(self.spec.location, device="cpu", local_files_only=self.spec.is_local)
        except ModelError:
            raise
        except Exception as exc:  # a broken folder or file: say which, on one line
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {self.spec.model_id}: {message}") from None

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def tokenizer(self):
        """The fast tokenizer alone: counting tokens must not cost loading the whole model."""
        if self._tokenizer is None:
            path = Path(self.spec.location) / "tokenizer.json"
            if self.spec.is_local and path.is_file():
                from tokenizers import Tokenizer

                self._tokenizer = Tokenizer.from_file(str(path))
                self._tokenizer.no_truncation()
            else:
                self._tokenizer = self.model.tokenizer.backend_tokenizer
        return self._tokenizer

    @property
    def max_tokens(self) -> int:
        """Content tokens a passage may have, its prefix included, special tokens excluded."""
        return self._max_sequence_length() - 2

    def _max_sequence_length(self) -> int:
        if self._model is not None:
            return int(self._model.max_seq_length)
        folder, limits = Path(self.spec.location), []
        for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length"),
                          ("config.json", "max_position_embeddings")):
            try:
                value = json.loads((folder / name).read_text()).get(key)
            except (OSError, ValueError):
                continue
            if isinstance(value, int) and 0 < value < 100_000:
                limits.append(value)
        return min(limits) if limits else int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Content tokens of `text` (no special tokens), as the model will see them."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_queries(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        return self._encode(texts, self.spec.query_prefix, batch_size, progress=False)

    def embed_passages(self, texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.spec.passage_prefix, batch_size, progress)

    def _encode(self, texts: Sequence[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        vectors = self.model.encode(
            list(texts), prompt=prefix or None, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
