"""The stores section: FAISS exact, FAISS approximate (HNSW, IVF-Flat) and Milvus Lite on 100k
and 1M synthetic passages (build, search p50/p95, recall@10, memory and disk per vector), and
Ray Data embedding throughput with 1 and 2 workers against the single-process build."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import DIM, PIAF, K_PRODUCT, log, rss_now_mb, summarize
from .scaling import recall_at, synthetic_vectors
from .state import Bench

HNSW_CHEAP = {"M": 16, "efConstruction": 40, "efSearch": 64}
IVF_NPROBES = (16, 64)
MILVUS_NPROBE = 32
RAY_SAMPLE = 96  # PIAF paragraphs embedded by each system
MILVUS_QUERIES = 50  # Milvus Lite answers in tens of milliseconds, and a filtered search in about a second per 20k
FILTERED_QUERIES = 10


def section_stores(bench: Bench) -> dict:
    sizes = [20_000] if bench.quick else [100_000, 1_000_000]
    queries_n = 50 if bench.quick else 200
    rows = [_size_row(n, queries_n, bench.tmp, bench.hnsw_budget_s) for n in sizes]
    return {"dim": DIM, "k": K_PRODUCT, "queries": queries_n, "synthetic": rows, "hnsw_cheap": HNSW_CHEAP,
            "ray": _ray_throughput(bench, 64 if bench.quick else RAY_SAMPLE)}


def _time(search, queries: np.ndarray) -> tuple[dict, np.ndarray]:
    """One query per call, k = K_PRODUCT, after 3 warm-up calls: timing and the top-10 rows found."""
    for q in queries[:3]:
        search(q)
    times, found = [], []
    for q in queries:
        started = time.perf_counter()
        rows = search(q)
        times.append(time.perf_counter() - started)
        found.append(list(rows[:10]) + [-1] * (10 - len(rows[:10])))
    return summarize(times), np.asarray(found)


def _size_row(n: int, n_queries: int, tmp: Path, budget: float) -> dict:
    import faiss

    from qa.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

    vectors, queries = synthetic_vectors(n, n_queries, seed=n)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    row: dict[str, Any] = {"n": n, "systems": {}}
    nlist = int(4 * math.sqrt(n))

    def faiss_system(name: str, make, nprobes=(None,), **extra):
        log(f"stores n={n}: {name}")
        before = rss_now_mb()
        started = time.perf_counter()
        index = make()
        build = time.perf_counter() - started
        ram = (rss_now_mb() - before) * 2**20 / n
        disk = len(faiss.serialize_index(index)) / n
        for nprobe in nprobes:
            if nprobe is not None:
                index.nprobe = nprobe
            timing, found = _time(lambda q: index.search(q[None, :], K_PRODUCT)[1][0], queries)
            label = name if nprobe is None else f"{name}, nprobe {nprobe}"
            row["systems"][label] = {"build_s": round(build, 2), **timing, "recall@10": recall_at(found, truth, 10),
                                     "ram_bytes_per_vector": round(ram, 1), "disk_bytes_per_vector": round(disk, 1),
                                     **extra}
        del index

    faiss_system("FAISS exact (IndexFlatIP)", lambda: _flat(vectors))
    estimate = 100 * (n * math.log(n)) / (100_000 * math.log(100_000))  # qa's HNSW: ~100 s per 100k here
    if estimate <= budget:
        faiss_system(f"FAISS HNSW M={HNSW_M} efC={HNSW_EF_CONSTRUCTION} efS={HNSW_EF_SEARCH} (qa today)",
                     lambda: _hnsw(vectors, HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH))
    else:
        row["skipped"] = [f"FAISS HNSW M={HNSW_M} efC={HNSW_EF_CONSTRUCTION}: estimated {estimate:.0f} s > {budget:.0f} s"]
    cheap = f"FAISS HNSW M={HNSW_CHEAP['M']} efC={HNSW_CHEAP['efConstruction']} efS={HNSW_CHEAP['efSearch']}"
    if n <= 100_000:
        faiss_system(cheap, lambda: _hnsw(vectors, HNSW_CHEAP["M"], HNSW_CHEAP["efConstruction"], HNSW_CHEAP["efSearch"]))
    else:
        row.setdefault("skipped", []).append(f"{cheap}: HNSW builds are the slow ones (see 100k); IVF-Flat instead")
    faiss_system(f"FAISS IVF-Flat nlist {nlist}", lambda: _ivf(vectors, nlist), nprobes=IVF_NPROBES)
    milvus_kinds = [("IVF_FLAT", {"nlist": nlist}, {"nprobe": MILVUS_NPROBE})]
    if n <= 100_000:
        milvus_kinds += [("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 128}), ("FLAT", {}, {})]
    for kind, params, search_params in milvus_kinds:
        row["systems"].update(_milvus(vectors, queries, truth, tmp / f"m{n}-{kind}.db", kind, params, search_params))
    return row


def _flat(vectors):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def _hnsw(vectors, m, ef_construction, ef_search):
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction, index.hnsw.efSearch = ef_construction, ef_search
    index.add(vectors)
    return index


def _ivf(vectors, nlist):
    import faiss

    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 64 * nlist), replace=False)]
    index.train(sample)
    index.add(vectors)
    return index


def _milvus(vectors, queries, truth, path: Path, kind: str, params: dict, search_params: dict) -> dict:
    """Milvus Lite through qa's MilvusStore (upserts of 1,000 rows with doc ids and dates, flush,
    index built, loaded); searched without and with a scalar filter (10% of the documents)."""
    from qa.stores.base import PassageFields, Restriction
    from qa.stores.location import parse_store
    from qa.stores.milvus_store import MilvusStore

    n = len(vectors)
    label = f"Milvus Lite {kind}" + "".join(f" {k} {v}" for k, v in {**params, **search_params}.items())
    log(f"stores n={n}: {label}")
    shutil.rmtree(path, ignore_errors=True)
    before = rss_now_mb()
    started = time.perf_counter()
    store = MilvusStore.connect(parse_store(f"milvus:{path}"))
    store.create(DIM, {"model_fingerprint": "synthetic"}, index_type=kind, params=params)
    ids = [f"{i:x}" for i in range(n)]
    fields = [PassageFields((f"d{i % 100}",), ("2019-04",)) for i in range(n)]
    store.add(ids, vectors, fields)
    store.flush()
    store.load()
    build = time.perf_counter() - started
    ram = (rss_now_mb() - before) * 2**20 / n
    store.search_params = search_params
    row = {i: r for r, i in enumerate(ids)}
    results = {}
    filtered = [] if n > 100_000 else [(", filter 10% docs", Restriction(doc_ids=frozenset(f"d{i}" for i in range(10))),
                                        FILTERED_QUERIES)]
    for suffix, restriction, count in [("", None, MILVUS_QUERIES), *filtered]:
        timing, found = _time(lambda q: [row[h] for h, _ in store.search(q[None, :], K_PRODUCT, restriction)[0]],
                              queries[:count])
        entry = {"build_s": round(build, 2), **timing, "ram_bytes_per_vector": round(ram, 1)}
        if restriction is None:
            entry["recall@10"] = recall_at(found, truth[:count], 10)
        results[label + suffix] = entry
    store.close()
    disk = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    for entry in results.values():
        entry["disk_bytes_per_vector"] = round(disk / n, 1)
    shutil.rmtree(path, ignore_errors=True)
    return results


def _ray_throughput(bench: Bench, sample: int) -> dict:
    """Passages per second embedding the same PIAF paragraphs: single process (onnx, its default
    threads), Ray with 1 worker and with 2 (1 engine thread each), in two interleaved rounds."""
    from qa.engines.distributed import RayEmbedder, start_ray

    texts = [json.loads(line)["text"] for line in (PIAF / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()][:sample]
    local = bench.embedder
    log("stores: starting a local Ray (2 CPUs)")
    started = time.perf_counter()
    ray = start_ray(None, num_cpus=os.cpu_count() or 2)
    ray_start = time.perf_counter() - started
    systems = {"single process (onnx, default threads)": local, "Ray, 1 worker": RayEmbedder(local, workers=1),
               "Ray, 2 workers": RayEmbedder(local, workers=2)}
    for name, embedder in systems.items():  # warm: the actors' engines load here, timed apart
        started = time.perf_counter()
        embedder.embed_passages(texts[:8])
        log(f"stores: {name} warm-up {time.perf_counter() - started:.1f} s")
    seconds = {name: 0.0 for name in systems}
    halves = (texts[: len(texts) // 2], texts[len(texts) // 2:])
    for round_no, part in enumerate(halves):
        order = list(systems) if round_no == 0 else list(reversed(systems))
        for name in order:
            started = time.perf_counter()
            vectors = systems[name].embed_passages(part)
            seconds[name] += time.perf_counter() - started
            assert len(vectors) == len(part)
    ray.shutdown()
    base = seconds["single process (onnx, default threads)"]
    chars = sum(map(len, texts))
    return {"passages": len(texts), "mean_chars": round(chars / len(texts)), "ray_start_s": round(ray_start, 1),
            "systems": {name: {"seconds": round(s, 2), "passages_per_s": round(len(texts) / s, 1),
                               "speed_vs_single": round(base / s, 2)} for name, s in seconds.items()}}

