#!/usr/bin/env python3
"""fp32 against int8 (dynamic, per-channel) ONNX engines: quality on every set, latency, throughput.

    .venv/bin/python scripts/precision_eval.py [--only NAME ...] [--out FILE]

For each public set (../shared/datasets) and our own questions over corpus/, three systems in
the default mode, paired per question (nDCG@10, bootstrap 95 % intervals):

* fp32: fp32 index, fp32 questions (today's default);
* q-int8: the same fp32 index, questions embedded by the int8 export;
* all-int8: an index built by the int8 export, questions int8.

The two builds of each set are timed (passages a second; the order alternates from set to set;
scripts/precision_speed.py measures throughput and question latency interleaved, the figures
to quote). Indexes go to a temporary folder, never to the evaluation cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from paired import describe, paired_interval, per_question_ndcg  # noqa: E402


def embedders(threads: int | None):
    from qa.engines import load_embedder

    return {p: load_embedder(backend="onnx", threads=threads, precision=p) for p in ("fp32", "int8")}


def build(corpus_or_paths, where: Path, embedder) -> float:
    from qa.index import build_index, update_index

    started = time.perf_counter()
    if isinstance(corpus_or_paths, list):
        build_index(corpus_or_paths, where, embedder)
    else:
        update_index(corpus_or_paths, where, embedder, sources=["dataset"])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, default=REPO / "precision.json")
    args = parser.parse_args()
    from qa.evaluate import load_dataset, seed_queries
    from qa.index import PassageIndex
    from qa.ranking.search import Retriever

    engines = embedders(args.threads)
    for e in engines.values():
        e.load()
    folders = sorted(p for p in args.datasets.iterdir() if (p / "queries.jsonl").is_file())
    names = [f.name for f in folders] + ["seed"]
    results = []
    with tempfile.TemporaryDirectory(prefix="qa-precision-") as tmp:
        for n, name in enumerate(names):
            if args.only and name not in args.only:
                continue
            print(f"== {name}", file=sys.stderr)
            if name == "seed":
                source = [REPO / "corpus"]
                passages = None
            else:
                source, queries = load_dataset(args.datasets / name)
                passages = len(source.passages)
            dirs = {p: Path(tmp) / f"{name}-{p}" for p in engines}
            seconds = {}
            for p in (("fp32", "int8") if n % 2 == 0 else ("int8", "fp32")):
                seconds[p] = build(source, dirs[p], engines[p])
            indexes = {p: PassageIndex.open(dirs[p]) for p in engines}
            if name == "seed":
                queries = [q for q in seed_queries(REPO / "tests/data/seed_questions.jsonl", indexes["fp32"],
                                                   REPO / "corpus") if q.gold_ids]
                passages = len(indexes["fp32"])
            questions, gold = [q.question for q in queries], [q.gold_ids for q in queries]
            systems = {"fp32": Retriever(indexes["fp32"], engines["fp32"]),
                       "q-int8": Retriever(indexes["fp32"], engines["int8"]),
                       "all-int8": Retriever(indexes["int8"], engines["int8"])}
            scores = {}
            for label, retriever in systems.items():
                ranked = []
                for start in range(0, len(questions), 64):
                    ranked += retriever.rank_ids(questions[start:start + 64], 10)
                scores[label] = per_question_ndcg(ranked, gold)
            row = {"set": name, "questions": len(questions), "passages": passages,
                   "build_seconds": {p: round(s, 2) for p, s in seconds.items()},
                   "ndcg10": {label: round(float(s.mean()), 2) for label, s in scores.items()},
                   "vs_fp32": {label: [round(x, 3) for x in paired_interval(scores[label], scores["fp32"])]
                               for label in ("q-int8", "all-int8")}}
            results.append(row)
            print(f"{name}: fp32 {row['ndcg10']['fp32']:.2f}; q-int8 {describe(scores['q-int8'], scores['fp32'])}; "
                  f"all-int8 {describe(scores['all-int8'], scores['fp32'])}; build s {row['build_seconds']}",
                  file=sys.stderr)
    build_total = {p: sum(r["build_seconds"][p] for r in results) for p in engines}
    passages_total = sum(r["passages"] for r in results)
    out = {"sets": results, "build": {"passages": passages_total, "seconds": build_total,
                     "passages_per_second": {p: round(passages_total / s, 1) for p, s in build_total.items()},
                     "speedup_int8": round(build_total["fp32"] / build_total["int8"], 3)}}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["build"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
