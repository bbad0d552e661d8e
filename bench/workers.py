"""Measured child processes: one index build per fresh `python -m bench --worker TASK` process,
so its peak RSS is the build's own.

A child of its own is the only way to see the true peak of an indexing run: torch allocates
outside Python's heap (tracemalloc misses it) and the parent has already loaded models.
`os.wait4` gives the rusage of exactly that child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .common import REPO, raw_paragraphs, rss_now_mb
from .systems import FastembedPeer, PlainST, make_txtai


def run_worker(task: str, **params: Any) -> dict[str, Any]:
    """Run `task` in a fresh Python process and return its JSON result plus its peak RSS and
    wall time, or {"error": ...} when the child failed."""
    command = [sys.executable, "-m", "bench", "--worker", task, "--params", json.dumps(params)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True, cwd=REPO)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"worker {task} exited with {proc.returncode}: {out.strip()[-300:]}"}
    result = json.loads(lines[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
    result["process_wall_s"] = round(wall, 2)
    return result


def worker_main(task: str, params: dict[str, Any]) -> int:
    """Entry point of a child process: one measured task, its result as one JSON line on stdout."""
    result = TASKS[task]({**params, "system": task.removeprefix("index-")})
    print(json.dumps(result), flush=True)
    return 0


def _loaded_embedder(backend: str):
    """qa's embedder on `backend`, loaded and warmed up; with its load time (s) and the RSS after (MiB)."""
    from qa.engines import load_embedder

    started = time.perf_counter()
    embedder = load_embedder(backend=backend)
    embedder.embed_queries(["warm up"])
    return embedder, time.perf_counter() - started, rss_now_mb()


def _index_qa(params: dict) -> dict:
    """qa's own build (ingestion, one forward pass per passage, tokens stored, FAISS, written to disk), then a
    second build of the unchanged corpus, which must embed nothing."""
    from qa.index import build_index, live_generation, read_manifest

    embedder, model_s, rss_model = _loaded_embedder(params["backend"])
    started = time.perf_counter()
    report = build_index([params["corpus"]], params["index"], embedder)
    build_s = time.perf_counter() - started
    generation = live_generation(Path(params["index"]))
    tokens = int(np.load(generation / "token_offsets.npy", mmap_mode="r")[-1])
    started = time.perf_counter()
    again = build_index([params["corpus"]], params["index"], embedder)
    return {"model_load_s": round(model_s, 2), "rss_after_model_mb": round(rss_model, 1),
            "index_s": round(build_s, 3), "passages": report.passages, "documents": report.documents,
            "tokens": tokens, "padding": report.padding, "embedded_texts": report.embedded,
            "faiss": read_manifest(generation).faiss["kind"], "backend": embedder.backend,
            "threads": embedder.threads,
            "unchanged_rebuild_s": round(time.perf_counter() - started, 3), "unchanged_embedded": again.embedded}


def _index_flat_peer(params: dict) -> dict:
    """A flat peer's build (plain sentence-transformers or fastembed): raw paragraphs, embedded, IndexFlatIP."""
    started = time.perf_counter()
    peer = {"plain": PlainST, "fastembed": FastembedPeer}[params["system"]]()
    peer.embed(["warm up"], "query: ")
    model_s, rss_model = time.perf_counter() - started, rss_now_mb()
    started = time.perf_counter()
    peer.build(raw_paragraphs(Path(params["corpus"])))
    return {"model_load_s": round(model_s, 2), "rss_after_model_mb": round(rss_model, 1),
            "index_s": round(time.perf_counter() - started, 3), "passages": len(peer.paragraphs),
            "embedded_texts": len(peer.paragraphs), "threads": peer.threads}


def _index_txtai(params: dict) -> dict:
    """txtai's build of the same raw paragraphs (content stored, its default ANN backend)."""
    import torch

    started = time.perf_counter()
    embeddings = make_txtai()
    model_s = time.perf_counter() - started
    rss_model = rss_now_mb()
    started = time.perf_counter()
    paragraphs = raw_paragraphs(Path(params["corpus"]))
    embeddings.index([(str(i), text, None) for i, text in enumerate(paragraphs)])
    return {"model_load_s": round(model_s, 2), "rss_after_model_mb": round(rss_model, 1),
            "index_s": round(time.perf_counter() - started, 3), "passages": len(paragraphs),
            "embedded_texts": len(paragraphs), "ann": embeddings.config.get("backend", "faiss"),
            "threads": torch.get_num_threads()}


def _latency_alone(params: dict) -> dict:
    """qa's warm latency in a process that holds nothing else: no torch peer whose threads keep
    spinning after their own call and slow whatever runs next (as in the interleaved table)."""
    from qa.ranking.search import Retriever

    from .common import summarize

    retriever = Retriever.open(params["index"])
    retriever.warm_up()
    timings: dict[str, list[float]] = {"qa-onnx": [], "embed-onnx": []}
    for question in ["warm up", *params["questions"][:3]]:
        retriever.search(question)
    for question in params["questions"]:
        for name, run in (("qa-onnx", lambda: retriever.search(question, k=5)),
                          ("embed-onnx", lambda: retriever.embedder.embed_queries([question]))):
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    return {"backend": retriever.embedder.backend, "threads": retriever.embedder.threads,
            "systems": {name: summarize(t) for name, t in timings.items()}}


TASKS: dict[str, Callable[[dict], dict]] = {"index-qa": _index_qa, "index-plain": _index_flat_peer,
                                            "index-fastembed": _index_flat_peer, "index-txtai": _index_txtai,
                                            "latency-alone": _latency_alone}
