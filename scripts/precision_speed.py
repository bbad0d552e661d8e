#!/usr/bin/env python3
"""fp32 against int8: indexing throughput and question latency, interleaved in one run.

    .venv/bin/python scripts/precision_speed.py [--passages 768] [--chunk 128] [--rounds 3] [--questions 200]
                                                [--sections throughput latency cold] [--cold-runs 4]

Throughput: the first N PIAF passages, tokenized once, embedded with their tokens (what a build
does, on the build's bulk path: `threads` one-thread batches at once) by the fp32 and the int8
export in turn, a chunk at a time, the order swapped every chunk, so that a change of load on
this shared machine falls on both. Latency: questions from every public set, each embedded
(question vector and tokens: the forward pass a search makes) by fp32 then int8 or the reverse,
then searched whole (Retriever.search, k 5, over PIAF's cached fp32 evaluation index). Reports the medians
and the median of the per-item ratios. Cold: a fresh `qa ask --precision P` process, start to
answer (its question session opened from disk), over the index of corpus/, fp32 and int8 in turn.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=768)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--sections", nargs="*", default=["throughput", "latency", "cold"])
    parser.add_argument("--cold-runs", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from qa.engines import load_embedder

    engines = {p: load_embedder(backend="onnx", threads=args.threads, precision=p) for p in ("fp32", "int8")}
    out = {}
    if "throughput" in args.sections:
        out["throughput"] = throughput(engines, args)
        print(json.dumps({"throughput": out["throughput"]}), flush=True)
    if "latency" in args.sections:
        out["latency"] = latency(engines, args)
        print(json.dumps({"latency": out["latency"]}), flush=True)
    if "cold" in args.sections:
        out["cold"] = cold(args.cold_runs)
        print(json.dumps({"cold": out["cold"]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def throughput(engines, args) -> dict:
    from qa.evaluate import load_dataset

    corpus, _ = load_dataset(DATASETS / "piaf_v1.1_fr-fr")
    texts = [p.embed_text() for p in corpus.passages[: args.passages]]
    sequences = engines["fp32"].passage_sequences(texts)
    for e in engines.values():
        e.embed_sequences(sequences[:8])  # sessions open, bulk one included
    seconds = {p: 0.0 for p in engines}
    chunk_ratios = []
    for round_ in range(args.rounds):
        for c, start in enumerate(range(0, len(sequences), args.chunk)):
            part = sequences[start:start + args.chunk]
            took = {}
            for p in (("fp32", "int8") if (c + round_) % 2 == 0 else ("int8", "fp32")):
                started = time.perf_counter()
                engines[p].embed_sequences(part)
                took[p] = time.perf_counter() - started
                seconds[p] += took[p]
            chunk_ratios.append(took["fp32"] / took["int8"])
    n = args.rounds * len(sequences)
    throughput = {"passages": len(sequences), "rounds": args.rounds, "tokens_per_passage":
                  round(float(np.mean([len(s.ids) for s in sequences])), 1),
                  "passages_per_second": {p: round(n / s, 1) for p, s in seconds.items()},
                  "speedup_int8": round(seconds["fp32"] / seconds["int8"], 3),
                  "median_chunk_speedup": round(float(np.median(chunk_ratios)), 3)}
    return throughput


def latency(engines, args) -> dict:
    from qa.evaluate import load_dataset, open_dataset
    from qa.ranking.search import Retriever

    questions = []
    for name in ("piaf_v1.1_fr-fr", "xquad_en-de", "xquad_en-es", "xquad_en-en", "tatoeba_en-fr"):
        _, queries = load_dataset(DATASETS / name)
        questions += [q.question for q in queries[: args.questions // 5]]
    index = open_dataset(DATASETS / "piaf_v1.1_fr-fr", progress=False, precision="fp32")[0].index  # cached
    retrievers = {p: Retriever(index, e) for p, e in engines.items()}
    for r in retrievers.values():
        r.warm_up()
        r.search("warm up", 5)
    forward = {p: [] for p in engines}
    search = {p: [] for p in engines}
    for i, q in enumerate(questions):
        for p in (("fp32", "int8") if i % 2 == 0 else ("int8", "fp32")):
            started = time.perf_counter()
            engines[p].embed_queries_with_tokens([q])
            forward[p].append(time.perf_counter() - started)
            started = time.perf_counter()
            retrievers[p].search(q, 5)
            search[p].append(time.perf_counter() - started)
    latency = {}
    for what, table in (("forward", forward), ("search", search)):
        latency[what] = {"p50_ms": {p: round(1000 * float(np.median(v)), 2) for p, v in table.items()},
                         "p90_ms": {p: round(1000 * float(np.percentile(v, 90)), 2) for p, v in table.items()},
                         "median_ratio_int8_over_fp32": round(float(np.median(
                             np.array(table["int8"]) / np.array(table["fp32"]))), 3)}
    latency["questions"] = len(questions)
    return latency


def cold(runs: int) -> dict:
    """Seconds from `qa ask` starting to its answer, per precision, alternating."""
    import subprocess
    import tempfile

    from qa.engines import load_embedder
    from qa.index import build_index

    took = {"fp32": [], "int8": []}
    with tempfile.TemporaryDirectory() as tmp:
        build_index([REPO / "corpus"], tmp, load_embedder(backend="onnx", precision="fp32"))
        for i in range(runs):
            for p in (("fp32", "int8") if i % 2 == 0 else ("int8", "fp32")):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "qa", "ask", "--precision", p, "--index", tmp, "-k", "1",
                                "where did Kim meet Putin?"], check=True, capture_output=True)
                took[p].append(time.perf_counter() - started)
    return {"runs": runs, "median_s": {p: round(float(np.median(v)), 2) for p, v in took.items()},
            "all_s": {p: [round(x, 2) for x in v] for p, v in took.items()}}


if __name__ == "__main__":
    sys.exit(main())
