"""Embedding with Ray Data: passages in batches to an actor pool, one embedding engine per actor.

:class:`RayEmbedder` is an :class:`~qa.engines.base.Embedder` whose `embed_passages` runs on a Ray
cluster (`ray.data` `map_batches` over an actor pool); questions and token counting stay in the
calling process. Each actor loads its engine with :func:`qa.engines.load_embedder` for the
same model folder and backend, so the vectors equal a single-process build's (cosine >= 0.9999).
Without an address a local Ray starts with one worker per core; `ray://HEAD:10001` or `auto`
joins a cluster, whose workers must see the same model folder (the qa cache). ray is imported
here only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np

from .base import BATCH_SIZE, Embedder
from ..errors import QAError
from ..stores.location import require_scale

RAY_BATCH = 256  # passages per Ray batch (each actor then batches by length inside it)

# Kills a local Ray's processes once the qa process that started it is gone, however it went
# (kill -9 included: Ray's own clean-up runs only at a normal exit, and its workers, ~800 MB,
# would otherwise outlive it for minutes). Started before Ray (no fork after gRPC's threads), it
# waits for end of file on a pipe only the qa process holds, then kills every process whose
# environment holds the mark that process gave the Ray it started: gcs_server, raylet, agents and
# workers, which rename themselves (their command lines cannot tell; SPT_NOENV keeps Ray's
# setproctitle from overwriting their environment). Standard library only: the interpreter's
# own site-packages may lack what Ray vendors for itself.
REAPER_MARK = "QA_RAY_OWNER"
_REAPER = """
import os, signal, sys
sys.stdin.buffer.read()
mark = ("QA_RAY_OWNER=" + sys.argv[1]).encode()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            if mark in fh.read().split(b"\\0") and int(pid) != os.getpid():
                os.kill(int(pid), signal.SIGKILL)
    except OSError:
        pass
"""
_reaper: subprocess.Popen | None = None


class _EmbedActor:
    """One engine per actor, made once; a batch of token sequences in, their vectors and token
    states out (the engine's own forward pass: the same ids give the same vectors)."""

    def __init__(self, model: str, backend: str, threads: int, precision: str = "fp32"):
        from .factory import load_embedder

        self.embedder = load_embedder(model, backend=backend, threads=threads, precision=precision)

    def __call__(self, batch: dict) -> dict:
        from .base import TokenSequence, _NoBar

        sequences = [TokenSequence([int(x) for x in ids], [int(x) for x in positions], [])
                     for ids, positions in zip(batch["ids"], batch["positions"])]
        vectors, states, slots = self.embedder._forward(sequences, BATCH_SIZE, _NoBar())
        states_column = np.empty(len(states), dtype=object)
        states_column[:] = [np.ascontiguousarray(x, np.float32) for x in states]
        return {"row": batch["row"], "vector": vectors, "states": states_column,
                "slots": np.array([slots] + [0] * (len(states) - 1), np.int64)}


class RayEmbedder(Embedder):
    """`local`'s model and prompts, its passages' forward passes run by `workers` Ray actors.

    Tokenizing stays here (it is cheap, and the build plans from the token ids); questions are
    embedded locally too.
    """

    def __init__(self, local: Embedder, address: str | None = None, workers: int | None = None,
                 threads_per_worker: int = 1):
        super().__init__(local.spec, local.threads)
        self.local, self.address = local, address
        self.workers = workers or _cores()
        self.threads_per_worker = threads_per_worker
        self.backend = local.backend
        self.query_precision, self.passage_precision = local.query_precision, local.passage_precision

    @property
    def dimension(self) -> int:
        return self.local.dimension

    def max_sequence_length(self) -> int:
        return self.local.max_sequence_length()

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def _token_counter(self):
        return self.local._token_counter()

    def passage_sequences(self, texts):
        return self.local.passage_sequences(texts)

    def embed_queries(self, texts, batch_size: int = BATCH_SIZE) -> np.ndarray:
        return self.local.embed_queries(texts, batch_size)

    def embed_queries_with_tokens(self, texts, batch_size: int = BATCH_SIZE):
        return self.local.embed_queries_with_tokens(texts, batch_size)

    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        """Pooled vectors alone: the same distributed forward pass."""
        sequences = self.local._sequences(texts, prefix)
        return self._forward(sequences, batch_size, _no_bar())[0]

    def _forward(self, sequences, batch_size: int, bar, query: bool = False) -> tuple[np.ndarray, list[np.ndarray], int]:
        ray = start_ray(self.address, self.workers * self.threads_per_worker)
        blocks = max(self.workers, min(len(sequences) // RAY_BATCH, 4 * self.workers))
        data = ray.data.from_items([{"row": i, "ids": s.ids, "positions": s.positions} for i, s in enumerate(sequences)],
                                   override_num_blocks=blocks)
        embedded = data.map_batches(
            _EmbedActor, batch_size=RAY_BATCH, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=self.threads_per_worker,
            fn_constructor_kwargs={"model": self.spec.location, "backend": self.local.backend,
                                   "threads": self.threads_per_worker, "precision": self.passage_precision})
        vectors = np.empty((len(sequences), self.dimension), np.float32)
        states: list[np.ndarray] = [None] * len(sequences)  # type: ignore[list-item]
        slots = 0
        for batch in embedded.iter_batches(batch_size=RAY_BATCH, batch_format="numpy"):
            rows = batch["row"].astype(np.int64)
            vectors[rows] = batch["vector"]
            for row, state in zip(rows, batch["states"]):
                states[row] = np.asarray(state, np.float32).reshape(-1, self.dimension)
            slots += int(batch["slots"].sum())
            bar.update(len(rows))
        return vectors, states, slots

    def __repr__(self) -> str:
        return f"<RayEmbedder {self.spec.model_id} workers={self.workers} address={self.address or 'local'}>"


def _no_bar():
    from .base import _NoBar

    return _NoBar()


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
            with _environment({} if address else _reap_local_ray()):
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types; one line
            raise QAError(f"cannot start or reach Ray at {address or 'a local cluster'}: "
                          f"{' '.join(str(exc).split())[:160]}") from None
        ray.data.DataContext.get_current().enable_progress_bars = False
        import logging

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset otherwise
    return ray


def _reap_local_ray() -> dict[str, str]:
    """Start the reaper of the local Ray this process is about to start (see _REAPER), once; the
    environment to start that Ray with (its processes inherit it at their start)."""
    global _reaper
    if _reaper is None:
        mark = f"{os.getpid()}-{os.urandom(4).hex()}"
        env = {k: v for k, v in os.environ.items() if k != REAPER_MARK}
        _reaper = subprocess.Popen([sys.executable, "-c", _REAPER, mark], stdin=subprocess.PIPE, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _reaper.mark = mark  # type: ignore[attr-defined]
    return {REAPER_MARK: _reaper.mark, "SPT_NOENV": "1"}  # type: ignore[attr-defined]


@contextlib.contextmanager
def _environment(extra: dict[str, str]):
    """`extra` in os.environ while Ray starts its processes, then the environment as it was (the
    mark must not reach processes this program starts for anything else)."""
    before = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
