#!/usr/bin/env python3
"""How a build should batch the ONNX engine on this machine: model time (forward passes only,
no tokenizing or storing) over every 4th PIAF passage, for several batch plans, interleaved
with plain sentence-transformers encoding the same passages (2 torch threads, 32 a batch).

    .venv/bin/python scripts/engine_batches.py [--rounds 2] [--every 4]

Plans: two concurrent one-thread runs of token-budget batches (what `OnnxModel.token_states_many`
does, at several budgets, with and without onnxruntime's denormals-as-zero), and one two-thread
run of 32-row batches (the former default). Medians of the rounds; ratio = sentence-transformers'
time / the plan's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

from qa.engines.base import budget_batches, length_batches  # noqa: E402
from qa.engines import load_embedder  # noqa: E402

PIAF = REPO.parent / "shared" / "datasets" / "piaf_v1.1_fr-fr" / "corpus.jsonl"


def session(path: Path, threads: int, denormal_zero: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    if denormal_zero:
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--every", type=int, default=4, help="take every Nth PIAF passage")
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in PIAF.read_text(encoding="utf-8").splitlines() if line][::args.every]
    embedder = load_embedder(backend="onnx")
    ids = embedder._token_ids(["passage: " + t for t in texts])
    lengths = np.array([len(s) for s in ids])

    def feeds(plan) -> list[dict]:
        out = []
        for rows in plan:
            batch, mask = embedder._pad([ids[i] for i in rows], int(lengths[rows].max()))
            out.append({"input_ids": batch, "attention_mask": mask, "token_type_ids": np.zeros_like(batch)})
        return out

    one, one_dnz, two = session(embedder.model_path, 1), session(embedder.model_path, 1, True), session(embedder.model_path, 2)
    plans = {f"2 x 1 thread, budget {b}": (one, feeds(budget_batches(lengths, b, 64)), 2) for b in (512, 1024, 2048)}
    plans["2 x 1 thread, budget 1024, denormals as zero"] = (one_dnz, feeds(budget_batches(lengths, 1024, 64)), 2)
    plans["1 x 2 threads, 32 rows"] = (two, feeds(length_batches(lengths, 32)), 1)

    def run(plan) -> float:
        sess, batches, workers = plan
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda f: sess.run(None, f), batches))
        return time.perf_counter() - started

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    st = SentenceTransformer(str(embedder.folder), device="cpu")

    def plain() -> float:
        started = time.perf_counter()
        st.encode(["passage: " + t for t in texts], batch_size=32)
        return time.perf_counter() - started

    for plan in plans.values():  # warm up every session and shape path once
        run(plan)
    plain()
    times: dict[str, list[float]] = {name: [] for name in [*plans, "plain sentence-transformers"]}
    for _ in range(args.rounds):
        for name, plan in plans.items():
            times[name].append(run(plan))
            times["plain sentence-transformers"].append(plain())
    reference = float(np.median(times["plain sentence-transformers"]))
    print(f"{len(texts)} passages, {int(lengths.sum()):,} tokens\n\n| plan | median (s) | plain ST / plan |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {np.median(values):.2f} | {reference / float(np.median(values)):.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
