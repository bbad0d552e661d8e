"""The scaling section: exact (IndexFlatIP) vs the HNSW index qa switches to at APPROXIMATE_FROM,
as the index grows, and the exact-search cost line that re-derives APPROXIMATE_FROM from the time
of embedding one question."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np

from .common import DIM, K_PRODUCT, PIAF, log, spread, summarize
from .state import Bench


def section_scaling(bench: Bench) -> dict:
    """Exact vs HNSW search as the index grows, on synthetic normalised vectors.

    Queries are noisy copies of stored vectors (cosine about 0.8 to their source) so each has a
    true nearest neighbour. Latency is one query at a time with k = CANDIDATES (what qa.ranking.search
    asks FAISS for); recall@10 compares HNSW's top 10 with the exact top 10. Random vectors in 384
    dimensions have no cluster structure, which makes them a hard case for HNSW: recall on real
    embeddings is measured too when the PIAF index was built (its passage vectors).
    """
    import faiss

    rows = _synthetic_rows(bench.scaling_sizes, bench.scaling_queries, bench.hnsw_budget_s)
    results: dict[str, Any] = {"dim": DIM, "k": K_PRODUCT, "queries": bench.scaling_queries, "synthetic": rows,
                               "hnsw_budget_s": bench.hnsw_budget_s, "search_threads": faiss.omp_get_max_threads()}
    if bench.piaf_index is not None:
        results["real"] = _scaling_real(bench, bench.scaling_queries)
    results["embed_ms"] = bench.embed_ms if bench.embed_ms is not None else _embed_latency(bench)
    results["embed_backend"] = bench.embedder.backend
    results["fit"] = exact_cost_fit(rows, results["embed_ms"])
    return results


def _synthetic_rows(sizes: list[int], n_queries: int, hnsw_budget_s: float) -> list[dict]:
    """One exact-vs-HNSW row per size; an HNSW build extrapolated past the budget is skipped."""
    rows = []
    hnsw_rate: tuple[int, float] | None = None  # (n, seconds) of the last HNSW build, to extrapolate
    for n in sizes:
        vectors, queries = synthetic_vectors(n, n_queries, seed=n)
        estimate = _hnsw_build_estimate(hnsw_rate, n)
        build_hnsw = estimate is None or estimate <= hnsw_budget_s
        if not build_hnsw:
            log(f"scaling n={n}: HNSW build estimated at {estimate:.0f} s > budget {hnsw_budget_s:.0f} s; exact only")
        row = compare_indexes(vectors, queries, build_hnsw=build_hnsw, label=f"n={n}")
        row["hnsw_build_estimate_s"] = round(estimate, 1) if estimate is not None else None
        if row.get("hnsw"):
            hnsw_rate = (n, row["hnsw"]["build_s"])
        rows.append(row)
        del vectors, queries
    return rows


def synthetic_vectors(n: int, n_queries: int, seed: int, noise: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors, and `n_queries` unit queries that are noisy copies of stored vectors."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sources = rng.choice(n, n_queries, replace=False)
    perturbation = rng.standard_normal((n_queries, DIM), dtype=np.float32)
    perturbation *= noise / np.linalg.norm(perturbation, axis=1, keepdims=True)
    queries = vectors[sources] + perturbation
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return vectors, np.ascontiguousarray(queries, dtype=np.float32)


def compare_indexes(vectors: np.ndarray, queries: np.ndarray, *, build_hnsw: bool = True, label: str = "") -> dict:
    """Exact IndexFlatIP and the product's HNSW (qa.index.make_faiss_index with the parameters
    qa uses above APPROXIMATE_FROM) on the same vectors: latency, bytes/vector, recall, build."""
    import faiss

    from qa.index import faiss_params, make_faiss_index

    n = len(vectors)
    row: dict[str, Any] = {"n": n}
    log(f"scaling {label}: exact index")
    started = time.perf_counter()
    exact = make_faiss_index(vectors, faiss_params(0))
    row["exact"] = {"build_s": round(time.perf_counter() - started, 3)}
    _, truth = exact.search(queries, 10)  # batched: the ground truth, not timed
    row["exact"].update(_time_single_queries(exact, queries))
    row["exact"]["bytes_per_vector"] = round(len(faiss.serialize_index(exact)) / n, 1)
    del exact
    row["hnsw"] = _hnsw_row(vectors, queries, truth, label) if build_hnsw else None
    if row["hnsw"]:
        log(f"scaling {label}: exact {row['exact']['median_ms']:.2f} ms, HNSW {row['hnsw']['median_ms']:.2f} ms, "
            f"recall@10 {row['hnsw']['recall@10']:.3f}, build {row['hnsw']['build_s']:.1f} s")
    return row


def _hnsw_row(vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, label: str) -> dict:
    """qa's HNSW over `vectors`, built on every core: its latency, recall against `truth`, size, build time."""
    import faiss

    from qa.index import APPROXIMATE_FROM, faiss_params, make_faiss_index

    n = len(vectors)
    params = faiss_params(max(n, APPROXIMATE_FROM))
    search_threads = faiss.omp_get_max_threads()
    build_threads = os.cpu_count() or 1
    log(f"scaling {label}: HNSW M={params['M']} efConstruction={params['efConstruction']} build, "
        f"{build_threads} threads")
    faiss.omp_set_num_threads(build_threads)  # a build is batch work: use every core even under --threads 1
    try:
        started = time.perf_counter()
        hnsw = make_faiss_index(vectors, params)
        build_s = time.perf_counter() - started
    finally:
        faiss.omp_set_num_threads(search_threads)
    timing = _time_single_queries(hnsw, queries)
    _, found = hnsw.search(queries, 10)
    return {"build_s": round(build_s, 2), **timing, "efSearch": params["efSearch"], "M": params["M"],
            "efConstruction": params["efConstruction"], "build_threads": build_threads,
            "recall@10": recall_at(found, truth, 10), "recall@1": recall_at(found, truth, 1),
            "bytes_per_vector": round(len(faiss.serialize_index(hnsw)) / n, 1)}


def _time_single_queries(index, queries: np.ndarray) -> dict[str, float]:
    """One query per call, k = CANDIDATES, as qa.ranking.search issues them (after 3 warm-up calls)."""
    k = min(K_PRODUCT, index.ntotal)
    for q in queries[:3]:
        index.search(q[None, :], k)
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - started)
    return summarize(times)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of the exact top-k that the approximate top-k also returns."""
    hits = sum(len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth))
    return round(hits / (len(truth) * k), 4)


def _hnsw_build_estimate(previous: tuple[int, float] | None, n: int) -> float | None:
    """HNSW insertion costs about log(n) per vector, so build(n) ~ build(m) * n log n / (m log m)."""
    if previous is None:
        return None
    m, seconds = previous
    return seconds * (n * math.log(n)) / (m * math.log(m))


def _scaling_real(bench: Bench, n_queries: int) -> dict:
    """Exact vs HNSW on real vectors: the PIAF index's passage vectors, queried with PIAF
    questions embedded by the model. Small, but with the structure real embeddings have."""
    from qa.index import PassageIndex

    index = PassageIndex.open(bench.piaf_index)
    questions = [json.loads(line)["question"] for line in
                 (PIAF / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:n_queries] if line.strip()]
    queries = bench.embedder.embed_queries(questions)
    row = compare_indexes(np.ascontiguousarray(index.vectors), queries, label="PIAF passages")
    row["what"] = "passage vectors of the PIAF index, PIAF questions"
    return row


def _embed_latency(bench: Bench) -> float:
    """Median latency of embedding one question, the yardstick for exact search's cost."""
    questions = [q["question"] for q in spread(bench.questions, 20)]
    for q in questions[:3]:
        bench.embedder.embed_queries([q])
    times = []
    for q in questions:
        started = time.perf_counter()
        bench.embedder.embed_queries([q])
        times.append(time.perf_counter() - started)
    bench.embed_ms = summarize(times)["median_ms"]
    return bench.embed_ms


def exact_cost_fit(rows: list[dict], embed_ms: float, sentences_per_passage: float | None = None) -> dict:
    """Least-squares line through exact latency vs n, and where it crosses the embedding time.

    qa runs one search per question, over the passage vectors, and switches to HNSW when the
    passage count reaches APPROXIMATE_FROM.
    """
    from qa.index import APPROXIMATE_FROM

    ns = np.array([r["n"] for r in rows], float)
    ms = np.array([r["exact"]["median_ms"] for r in rows], float)
    if len(ns) >= 2:
        slope, intercept = np.polyfit(ns, ms, 1)
    else:
        slope, intercept = ms[0] / ns[0], 0.0
    crossover = (embed_ms - intercept) / slope if slope > 0 else float("inf")
    pair = {}
    if sentences_per_passage:
        # both indexes exact, the sentence index at APPROXIMATE_FROM, the passage index 1/r of it
        scanned = APPROXIMATE_FROM * (1 + 1 / sentences_per_passage)
        pair = {"sentences_per_passage": sentences_per_passage,
                "exact_pair_ms_at_approximate_from": round(float(2 * intercept + slope * scanned), 2),
                "pair_crossover_sentences": int((embed_ms - 2 * intercept) / slope / (1 + 1 / sentences_per_passage))
                if slope > 0 else None}
    return {**pair, "ms_per_10k": round(float(slope * 10_000), 4), "intercept_ms": round(float(intercept), 4),
            "embed_ms": embed_ms, "crossover_vectors": int(crossover) if math.isfinite(crossover) else None,
            "approximate_from": APPROXIMATE_FROM,
            "exact_ms_at_approximate_from": round(float(intercept + slope * APPROXIMATE_FROM), 2)}
