"""The engine factory's import path before :mod:`qa.engines` (kept: `qa.embedding.load_embedder`).

New code imports :mod:`qa.engines`.
"""

from .engines import (  # noqa: F401
    BACKENDS, BATCH_SIZE, Backend, Embedder, choose_backend, default_threads, load_embedder, resolve_threads,
)
from .engines.factory import TORCH_THREADS  # noqa: F401
