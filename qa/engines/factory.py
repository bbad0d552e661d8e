"""Making an embedder: the one factory that picks an engine for a model.

:class:`~qa.engines.base.Embedder` (re-exported here) is the interface; two engines implement it:

- ``onnx`` (:mod:`qa.engines.onnx_engine`): onnxruntime + tokenizers over the folder's exact ONNX export
  (`onnx/model.onnx`); no torch, so a question costs milliseconds and a process answers its
  first question about a second after it starts;
- ``torch`` (:mod:`qa.engines.torch_engine`): sentence-transformers itself, for any model.

:func:`load_embedder` is the one place an embedder is made. ``auto`` picks ``onnx`` when the
model folder holds a verified export of the same weights, else ``torch``. Engines load lazily,
on first use, so a command that never embeds never pays for loading one.
"""

from __future__ import annotations

import logging
import os
from typing import Literal, get_args

from .base import BATCH_SIZE, Embedder
from ..errors import ModelError, QAError
from ..model import resolve_model
from ..paths import default_backend, precision_setting, threads_setting
from ..model.spec import ModelSpec

__all__ = ["AUTO_PRECISION", "BATCH_SIZE", "BACKENDS", "Backend", "Embedder", "PRECISIONS", "Precision",
           "choose_backend", "default_threads", "load_embedder", "resolve_precision", "resolve_threads"]
Backend = Literal["auto", "onnx", "torch"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# The ONNX engine's precision: fp32 (the exact export) or int8 (its dynamic quantisation,
# onnx/model_int8.onnx), for questions and passages alike; auto = AUTO_PRECISION.
Precision = Literal["auto", "fp32", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# (questions, passages) under auto: a side is int8 only if that cost at most 0.3 nDCG@10 on
# every evaluation set (scripts/precision_eval.py, EVALUATION.md "int8 engine"). Questions at
# int8 cost 0.00-0.15 on the five public sets (our own questions: +0.22) and their forward pass
# takes ~0.7 x fp32's; passages at int8 as well cost 0.36 on our own questions, so they stay fp32.
AUTO_PRECISION: tuple[str, str] = ("int8", "fp32")
# Default engine threads, per engine, picked from `python -m bench --only threads`
# (BENCHMARKS.md): onnxruntime's threads sleep when idle (qa turns their spinning off), so one thread per core is the
# fastest idle and costs little when another process keeps the cores busy; torch's OpenMP
# threads wait at every barrier for a descheduled peer, and two of them collapse under such a
# load, so torch gets one.
TORCH_THREADS = 1


def load_embedder(model: str | ModelSpec | None = None, *, backend: str | None = None,
                  threads: int | None = None, precision: str | None = None) -> Embedder:
    """The embedder for `model` (default: $QA_MODEL, else the built-in model) on `backend`
    (default: $QA_BACKEND, else auto) with `threads` engine threads (default: $QA_THREADS, else
    :func:`default_threads`) at `precision` (default: $QA_PRECISION, else auto): fp32 or int8
    for questions and passages alike, or auto (:data:`AUTO_PRECISION`, per side)."""
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    chosen = choose_backend(spec, backend or default_backend() or "auto")
    count = resolve_threads(threads, chosen)
    requested = precision or precision_setting() or "auto"
    questions, passages = resolve_precision(requested)
    if chosen == "onnx":
        from .onnx_engine import OnnxEmbedder

        if "int8" in (questions, passages):
            questions, passages = _int8_available(spec, questions, passages, explicit=requested == "int8")
        return OnnxEmbedder(spec, count, query_precision=questions, passage_precision=passages)
    if requested == "int8":
        raise QAError("--precision int8 runs on the onnx engine only: use --backend onnx (or auto)")
    from .torch_engine import TorchEmbedder

    return TorchEmbedder(spec, count)


def resolve_precision(precision: str) -> tuple[str, str]:
    """(questions' precision, passages') for `--precision`: fp32 or int8 set both; auto takes
    AUTO_PRECISION, chosen by measurement (EVALUATION.md, "int8 engine")."""
    if precision not in PRECISIONS:
        raise QAError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return AUTO_PRECISION
    return precision, precision


def _int8_available(spec: ModelSpec, questions: str, passages: str, *, explicit: bool) -> tuple[str, str]:
    """(questions, passages) as asked when the model folder has its int8 export. `--precision
    int8` writes a missing one (once); auto does not: it runs fp32 on a folder without one (the
    default model gets its int8 export at setup; the 0.3 rule was measured on that model only)."""
    from ..model.export import int8_problem, write_int8

    if int8_problem(spec) is None:
        return questions, passages
    if not explicit:
        return "fp32", "fp32"
    logging.getLogger("qa").warning(f"writing the int8 export of {spec.model_id} (once, about 20 s)…")
    write_int8(spec)
    return questions, passages


def choose_backend(spec: ModelSpec, backend: str) -> str:
    """`onnx` or `torch` for `spec`; `auto` takes onnx whenever a verified export is there."""
    if backend not in BACKENDS:
        raise QAError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return "torch"
    from ..model.export import export_problem

    problem = export_problem(spec)
    if problem is None:
        return "onnx"
    if backend == "onnx":
        raise ModelError(f"{problem}; write it with `qa model --model {spec.location}`, or use --backend torch")
    return "torch"


def resolve_threads(threads: int | None, backend: str = "onnx") -> int:
    """The engine's thread count: the argument, else $QA_THREADS, else the engine's default."""
    if threads is None:
        raw = threads_setting()
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
