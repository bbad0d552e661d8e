"""The torch engine: sentence-transformers itself, for any model it can load.

It is the reference the ONNX engine is checked against and the engine of models that have no
ONNX export. Importing torch costs seconds, so nothing here runs until the first embedding.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .base import Embedder, TokenSequence, length_batches
from ..errors import ModelError
from ..model.folder import max_sequence_length


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, hub warnings) out of the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("transformers", "sentence_transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


class TorchEmbedder(Embedder):
    """A lazily loaded SentenceTransformer on the CPU."""

    backend = "torch"

    def __init__(self, spec, threads):
        super().__init__(spec, threads)
        self._model = None

    @property
    def model(self):
        """The SentenceTransformer, loaded once (thread-safe)."""
        return self._once("_model", self._load_model)

    def load(self) -> None:
        _ = self.model

    def _load_model(self):
        quiet_libraries()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            torch.set_num_threads(self.threads)
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

    def max_sequence_length(self) -> int:
        if self._model is not None:
            return int(self._model.max_seq_length)
        stated = max_sequence_length(Path(self.spec.location)) if self.spec.is_local else None
        return stated or int(self.model.max_seq_length)

    def _load_counter(self):
        try:
            return super()._load_counter()
        except ModelError:  # a hub model without tokenizer.json: its loaded tokenizer counts
            return self.model.tokenizer.backend_tokenizer

    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        # The prefix goes in as a prompt: a model that pools without its prompt tokens needs to know it.
        return self.model.encode(texts, prompt=prefix or None, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=progress)

    def _forward(self, sequences: list[TokenSequence], batch_size: int, bar, query: bool = False
                 ) -> tuple[np.ndarray, list[np.ndarray], int]:
        """The loaded SentenceTransformer's own modules over qa's token ids (the ONNX engine's
        ids), so both engines read exactly the same tokens."""
        import torch

        model = self.model
        pad = model.tokenizer.pad_token_id or 0
        lengths = np.fromiter((len(s.ids) for s in sequences), np.int64, len(sequences))
        vectors = np.empty((len(sequences), self.dimension), np.float32)
        states: list[np.ndarray] = [None] * len(sequences)  # type: ignore[list-item]
        slots = 0
        for rows in length_batches(lengths, batch_size):
            width = int(lengths[rows].max())
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, row in enumerate(rows):
                ids[j, :lengths[row]] = torch.tensor(sequences[row].ids)
                mask[j, :lengths[row]] = 1
            with torch.inference_mode():
                out = model.forward({"input_ids": ids, "attention_mask": mask})
            vectors[rows] = out["sentence_embedding"].float().numpy()
            tokens = out["token_embeddings"].float().numpy()
            for j, row in enumerate(rows):
                states[row] = tokens[j, sequences[row].positions]
            slots += len(rows) * int(lengths[rows].max())
            bar.update(len(rows))
        return vectors, states, slots
