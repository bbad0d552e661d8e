"""The warm query sections: latency of every system interleaved (latency), the same idle and
under a competing CPU load (load), and query embedding alone per engine and thread count (threads)."""

from __future__ import annotations

import json
import os
from typing import Any

from .common import PIAF, log, spread, summarize
from .state import Bench
from .systems import PEERS
from .timing import Runner, idle_vs_loaded, time_interleaved, warm_up
from .workers import run_worker

LATENCY_SYSTEMS = ("qa-onnx", "qa-onnx-dense", "qa-lexical", "qa-torch", "embed-onnx", "embed-torch", *PEERS)
LOAD_SYSTEMS = ("qa-onnx", "qa-torch", *PEERS)
THREAD_COUNTS = (1, 2)


def section_latency(bench: Bench) -> dict:
    """Warm latency per question, one question at a time as a user asks them, every system
    interleaved question by question (see time_interleaved)."""
    runners = bench.runners(LATENCY_SYSTEMS)
    qa = bench.systems()["qa-onnx"]
    questions = [q["question"] for q in spread(bench.questions, bench.latency_questions)]
    warm_up(runners)
    log(f"latency: {len(questions)} questions x {len(runners)} systems")
    timings = time_interleaved(runners, questions)
    results: dict[str, Any] = {"questions": len(questions), "k": 5, "index": "corpus/",
                               "passages": len(qa.index), "tokens": int(qa.index.tokens.offsets[-1]),
                               "systems": {name: summarize(t) for name, t in timings.items()},
                               "threads": bench.engine_threads(list(runners)), "errors": dict(bench.system_errors)}
    bench.embed_ms = results["systems"]["embed-onnx"]["median_ms"]
    log("latency: qa alone in a child process")
    results["alone"] = run_worker("latency-alone", index=str(bench.corpus_index()), questions=questions)
    if bench.piaf_index is not None:
        results["piaf"] = _latency_piaf(bench)
    return results


def _latency_piaf(bench: Bench) -> dict:
    """qa's latency on the PIAF-size index (all its paragraphs), on each engine, and without the
    MaxSim rerank (what the rerank costs): the default corpus is too small to show what grows with
    the index (FAISS, BM25, candidate scoring, token decoding)."""
    from qa.index import PassageIndex
    from qa.ranking import RankingParams
    from qa.ranking.search import Retriever

    onnx = Retriever(PassageIndex.open(bench.piaf_index), bench.embedder)
    no_rerank = Retriever(onnx.index, bench.embedder, RankingParams(rerank_depth=0))
    torch_qa = Retriever(onnx.index, bench.torch_embedder)
    threads = bench.torch_embedder.threads
    runners = {"embed-onnx": Runner(lambda q: bench.embedder.embed_queries([q])),
               "qa-onnx": Runner(lambda q: onnx.search(q)), "qa-onnx-no-rerank": Runner(lambda q: no_rerank.search(q)),
               "qa-lexical": Runner(lambda q: onnx.search(q, mode="lexical")),
               "embed-torch": Runner(lambda q: bench.torch_embedder.embed_queries([q]), threads),
               "qa-torch": Runner(lambda q: torch_qa.search(q), threads)}
    onnx.warm_up()
    torch_qa.warm_up()
    warm_up(runners)
    queries = [json.loads(line)["question"] for line in
               (PIAF / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:50] if line.strip()]
    timings = time_interleaved(runners, queries)
    return {"questions": len(queries), "passages": len(onnx.index), "tokens": int(onnx.index.tokens.offsets[-1]),
            "systems": {name: summarize(t) for name, t in timings.items()}}


def section_load(bench: Bench) -> dict:
    """Warm search latency idle and while busy-looping processes (one per core) compete for the
    CPU: a user's machine is rarely idle, and a multi-threaded engine stalls when a core it
    counted on is taken."""
    runners = bench.runners(LOAD_SYSTEMS)
    warm_up(runners)
    questions = [q["question"] for q in spread(bench.questions, bench.load_questions)]
    return {"questions": len(questions), "competing_processes": os.cpu_count() or 1,
            "threads": bench.engine_threads(list(runners)), "errors": dict(bench.system_errors),
            "systems": idle_vs_loaded(runners, questions)}


def section_threads(bench: Bench) -> dict:
    """Query embedding alone, per engine and thread count, idle and under the competing load: the
    figure that picks qa's default thread counts (qa.engines.default_threads)."""
    runners: dict[str, Runner] = {}
    for backend in ("onnx", "torch"):
        for n in THREAD_COUNTS:
            embedder = bench.engine(backend, n)
            runners[f"{backend}-{n}"] = Runner(lambda q, e=embedder: e.embed_queries([q]),
                                               n if backend == "torch" else None)
    warm_up(runners)
    questions = [q["question"] for q in spread(bench.questions, bench.threads_questions)]
    return {"questions": len(questions), "competing_processes": os.cpu_count() or 1,
            "default_threads": bench.embedder.threads, "systems": idle_vs_loaded(runners, questions)}
