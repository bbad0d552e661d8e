"""Embedding with Ray Data: passages in batches to an actor pool, one embedding engine per actor.

:class:`RayEmbedder` is an :class:`~qa.embedder.Embedder` whose `embed_passages` runs on a Ray
cluster (`ray.data` `map_batches` over an actor pool); questions and token counting stay in the
calling process. Each actor loads its engine with :func:`qa.embedding.load_embedder` for the
same model folder and backend, so the vectors equal a single-process build's (cosine >= 0.9999).
Without an address a local Ray starts with one worker per core; `ray://HEAD:10001` or `auto`
joins a cluster, whose workers must see the same model folder (the qa cache). ray is imported
here only.
"""

from __future__ import annotations

import os

import numpy as np

from .embedder import BATCH_SIZE, Embedder
from .errors import QAError
from .stores.location import require_scale

RAY_BATCH = 256  # passages per Ray batch (each actor then batches by length inside it)


class _EmbedActor:
    """One engine per actor, made once; a batch of texts in, their vectors out."""

    def __init__(self, model: str, backend: str, threads: int):
        from .embedding import load_embedder

        self.embedder = load_embedder(model, backend=backend, threads=threads)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        return {"row": batch["row"], "vector": self.embedder.embed_passages(texts, batch_size=BATCH_SIZE)}


class RayEmbedder(Embedder):
    """`local`'s model and prompts, its passages embedded by `workers` Ray actors."""

    def __init__(self, local: Embedder, address: str | None = None, workers: int | None = None,
                 threads_per_worker: int = 1):
        super().__init__(local.spec, local.threads)
        self.local, self.address = local, address
        self.workers = workers or _cores()
        self.threads_per_worker = threads_per_worker
        self.backend = local.backend

    @property
    def dimension(self) -> int:
        return self.local.dimension

    def max_sequence_length(self) -> int:
        return self.local.max_sequence_length()

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def embed_queries(self, texts, batch_size: int = BATCH_SIZE) -> np.ndarray:
        return self.local.embed_queries(texts, batch_size)

    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if prefix != self.spec.passage_prefix:
            return self.local._encode(texts, prefix, batch_size, progress)
        ray = start_ray(self.address, self.workers * self.threads_per_worker)
        data = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)],
                                   override_num_blocks=max(1, min(len(texts) // RAY_BATCH, 4 * self.workers)))
        # The passage prefix is added by each actor's own embed_passages, as here.
        embedded = data.map_batches(
            _EmbedActor, batch_size=RAY_BATCH, batch_format="numpy", concurrency=self.workers,
            num_cpus=self.threads_per_worker,
            fn_constructor_kwargs={"model": self.spec.location, "backend": self.local.backend,
                                   "threads": self.threads_per_worker})
        out = np.empty((len(texts), self.dimension), np.float32)
        for batch in embedded.iter_batches(batch_size=4096, batch_format="numpy"):
            out[batch["row"]] = batch["vector"]
        return out

    def _embed(self, texts, prefix, batch_size, progress):
        # Texts arrive with the prefix not yet applied: the actors apply it (embed_passages).
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        if prefix == self.spec.passage_prefix:
            return np.ascontiguousarray(self._encode(list(texts), prefix, batch_size, progress), np.float32)
        return self.local._embed(texts, prefix, batch_size, progress)

    def __repr__(self) -> str:
        return f"<RayEmbedder {self.spec.model_id} workers={self.workers} address={self.address or 'local'}>"


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def start_ray(address: str | None, num_cpus: int | None = None):
    """The ray module, connected: to `address`, else a local Ray of `num_cpus` CPUs (once)."""
    ray = require_scale("ray", "--ray")
    require_scale("ray.data", "--ray")
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": num_cpus or _cores()}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types; one line
            raise QAError(f"cannot start or reach Ray at {address or 'a local cluster'}: "
                          f"{' '.join(str(exc).split())[:160]}") from None
        ray.data.DataContext.get_current().enable_progress_bars = False
    return ray
