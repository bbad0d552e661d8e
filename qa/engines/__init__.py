"""The embedding engines: one interface, and the one factory that picks an engine for a model.

:mod:`.base` (the :class:`Embedder` interface: vectors, content tokens, batching, progress),
:mod:`.factory` (:func:`load_embedder`: onnx when the model folder holds a verified export,
else torch), :mod:`.onnx_engine` (onnxruntime + tokenizers, no torch), :mod:`.torch_engine`
(sentence-transformers), :mod:`.unigram` (the questions' tokenizer fast path),
:mod:`.distributed` (the same engine on a Ray Data actor pool). Engines import nothing from the
index or the ranking: they turn text into vectors and know nothing else.
"""

from .base import BATCH_SIZE, Embedder
from .factory import (AUTO_PRECISION, BACKENDS, PRECISIONS, Backend, Precision, choose_backend, default_threads,
                      load_embedder, resolve_precision, resolve_threads)

__all__ = ["AUTO_PRECISION", "BATCH_SIZE", "BACKENDS", "Backend", "Embedder", "PRECISIONS", "Precision",
           "choose_backend", "default_threads", "load_embedder", "resolve_precision", "resolve_threads"]
