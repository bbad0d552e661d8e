#!/usr/bin/env python3
"""Vector stores at 1M passages with the structure of real e5 vectors (issue 22 item 5).

    .venv/bin/python scripts/bench_1m.py vectors            # real vectors -> 1M synthetic, queries, ground truth
    .venv/bin/python scripts/bench_1m.py build NAME [--n N]  # one FAISS index (flat, hnsw16, hnsw32, ivfflat, ivfpq)
    .venv/bin/python scripts/bench_1m.py time [--n N]        # every built FAISS index of that size, interleaved
    .venv/bin/python scripts/bench_1m.py milvus --n N --index HNSW|IVF_FLAT
    .venv/bin/python scripts/bench_1m.py report             # the tables of BENCHMARKS.md

Real vectors: the passage and question vectors of every public set in ../shared/datasets/ and of
corpus/ (with tests/data/seed_questions.jsonl), from ~/.cache/qa/li/*.npz (scripts/li_features.py)
when there, else embedded here once (qa's default engine) and cached in /tmp/bench1m/real.npz.

Expansion to 1M (`expand`): the real passages come first; every other vector is
normalise(a v_i + (1 - a) v_j + sigma n), v_i a real passage drawn uniformly, v_j one of its 10
nearest real neighbours, a ~ U(0, 1), n ~ N(0, Sigma) with Sigma the real passages' covariance
(so the noise has their per-dimension spread and correlations); sigma is chosen from a grid so that
a sample of synthetic vectors as large as the real set has the real set's nearest-neighbour
cosines (both distributions are printed and stored). Seed 0. Documents: every vector gets one of
10,000 synthetic documents uniformly; the filter is 1,000 of them (10%).

Queries: 500 real question vectors drawn from all sets (seed 0); ground truth: their exact
top-100 by inner product over the first N vectors, and the exact top-10 within the filter.
Everything goes to /tmp/bench1m (nothing in the repo); results append to
/tmp/bench1m/results.jsonl, one JSON object a line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"
SETS = ["seed", "xquad_en-de", "xquad_en-es", "xquad_en-en", "tatoeba_en-fr", "piaf_v1.1_fr-fr"]
OUT = Path("/tmp/bench1m")
N_TOTAL, N_QUERIES, N_DOCS, N_FILTER_DOCS, K = 1_000_000, 500, 10_000, 1_000, 100
SIGMAS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8)


def rss() -> int:
    """This process's resident set plus its children's (Milvus Lite runs a server child), bytes."""
    total = 0
    pids = [os.getpid()]
    while pids:
        pid = pids.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(c) for c in children)
        except (OSError, ValueError):
            pass
    return total


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def record(row: dict) -> None:
    row = {"at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "load": load_avg(), **row}
    with open(OUT / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


# ---------------------------------------------------------------------------- real vectors

def real_vectors() -> tuple[np.ndarray, np.ndarray, dict]:
    """(passage vectors, question vectors, where they came from)."""
    li = Path.home() / ".cache/qa/li"
    if all((li / f"{s}.npz").exists() for s in SETS):
        pv, qv = [], []
        for s in SETS:
            with np.load(li / f"{s}.npz") as z:
                pv.append(z["pv"]), qv.append(z["qv"])
        counts = {s: [len(p), len(q)] for s, p, q in zip(SETS, pv, qv)}
        return np.concatenate(pv), np.concatenate(qv), {"source": str(li), "counts": counts}
    cached = OUT / "real.npz"
    if not cached.exists():
        embed_real(cached)
    with np.load(cached, allow_pickle=True) as z:
        return z["pv"], z["qv"], {"source": str(cached), "counts": json.loads(str(z["counts"]))}


def embed_real(path: Path) -> None:
    from qa.engines import load_embedder
    from qa.evaluate import load_dataset
    from qa.ingest import load_corpus

    embedder = load_embedder()
    pv, qv, counts = [], [], {}
    for name in SETS:
        started = time.time()
        if name == "seed":
            corpus = load_corpus([str(REPO / "corpus")], count_tokens=lambda t: embedder.count_tokens(
                embedder.spec.passage_prefix + t), max_tokens=embedder.max_tokens)
            questions = [json.loads(line)["question"] for line in
                         (REPO / "tests/data/seed_questions.jsonl").read_text().splitlines() if line.strip()]
            passages = corpus.passages
        else:
            corpus, queries = load_dataset(DATASETS / name)
            passages, questions = corpus.passages, [q.question for q in queries]
        pv.append(embedder.embed_passages([p.embed_text() for p in passages]))
        qv.append(embedder.embed_queries(questions))
        counts[name] = [len(passages), len(questions)]
        print(f"{name}: {len(passages)} passages, {len(questions)} questions, {time.time() - started:.0f} s", flush=True)
    np.savez(path, pv=np.concatenate(pv).astype(np.float32), qv=np.concatenate(qv).astype(np.float32),
             counts=json.dumps(counts))


# ---------------------------------------------------------------------------- expansion

def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def nn_cosines(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Each row of x: its best cosine among y's rows (x itself, self excluded, when y is None)."""
    same = y is None
    y = x if same else y
    best = np.empty(len(x), np.float32)
    for start in range(0, len(x), 2048):
        s = x[start:start + 2048] @ y.T
        if same:
            s[np.arange(len(s)), np.arange(start, start + len(s))] = -2
        best[start:start + 2048] = s.max(axis=1)
    return best


def quantiles(x: np.ndarray) -> dict:
    return {f"p{q}": round(float(np.percentile(x, q)), 4) for q in (5, 25, 50, 75, 95)}


class Expander:
    def __init__(self, real: np.ndarray, seed: int = 0):
        self.real = real
        s = real @ real.T
        np.fill_diagonal(s, -2)
        self.neighbours = np.argsort(-s, axis=1)[:, :10]
        centred = real - real.mean(axis=0)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        self.noise_basis = (sv[:, None] / np.sqrt(len(real) - 1)) * vt  # z @ basis ~ N(0, Sigma)
        self.seed = seed

    def sample(self, n: int, sigma: float, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, len(self.real), n)
        j = self.neighbours[i, rng.integers(0, self.neighbours.shape[1], n)]
        a = rng.random(n, dtype=np.float32)[:, None]
        z = rng.standard_normal((n, self.noise_basis.shape[0]), dtype=np.float32)
        return normalise(a * self.real[i] + (1 - a) * self.real[j] + sigma * (z @ self.noise_basis))


def cmd_vectors(args) -> None:
    OUT.mkdir(exist_ok=True)
    pv, qv, source = real_vectors()
    pv, qv = normalise(pv), normalise(qv)
    real_nn = nn_cosines(pv)
    expander = Expander(pv)
    fits = {}
    for sigma in SIGMAS:
        sample = expander.sample(len(pv), sigma, seed=1)
        nn = nn_cosines(sample)
        fits[sigma] = {"nn": quantiles(nn), "to_real": quantiles(nn_cosines(sample, pv)),
                       "gap": float(np.abs(np.percentile(nn, [5, 25, 50, 75, 95]) -
                                           np.percentile(real_nn, [5, 25, 50, 75, 95])).mean())}
        print(f"sigma {sigma}: {fits[sigma]}", flush=True)
    sigma = min(fits, key=lambda s: fits[s]["gap"])
    base = np.empty((N_TOTAL, pv.shape[1]), np.float32)
    base[:len(pv)] = pv
    for start in range(len(pv), N_TOTAL, 100_000):
        stop = min(N_TOTAL, start + 100_000)
        base[start:stop] = expander.sample(stop - start, sigma, seed=1000 + start)
    rng = np.random.default_rng(0)
    queries = qv[rng.choice(len(qv), N_QUERIES, replace=False)]
    docs = rng.integers(0, N_DOCS, N_TOTAL).astype(np.int32)
    chosen = np.sort(rng.choice(N_DOCS, N_FILTER_DOCS, replace=False)).astype(np.int32)
    np.save(OUT / "base.npy", base)
    np.save(OUT / "queries.npy", queries)
    np.save(OUT / "docs.npy", docs)
    np.save(OUT / "filter_docs.npy", chosen)
    for n in (100_000, 300_000, N_TOTAL):
        ground_truth(base[:n], queries, docs[:n], chosen, n)
    # structure at 1M: sampled vectors' best neighbour among the other 1M, and the queries' scores
    sample = rng.choice(N_TOTAL, 2000, replace=False)
    nn1m = np.empty(len(sample), np.float32)
    for start in range(0, len(sample), 250):
        rows = sample[start:start + 250]
        s = base[rows] @ base.T
        s[np.arange(len(rows)), rows] = -2
        nn1m[start:start + 250] = s.max(axis=1)
    gt = np.load(OUT / f"gt_{N_TOTAL}.npz")
    record({"what": "vectors", "source": source, "real_passages": len(pv), "real_questions": len(qv),
            "sigma": sigma, "fits": fits, "real_nn": quantiles(real_nn),
            "synthetic_nn_at_1M": quantiles(nn1m),
            "query_top1_real_only": quantiles((queries @ pv.T).max(axis=1)),
            "query_top1_at_1M": quantiles(gt["scores"][:, 0]), "query_top10_at_1M": quantiles(gt["scores"][:, 9]),
            "filter_rows_at_1M": int(np.isin(docs, chosen).sum())})


def ground_truth(base: np.ndarray, queries: np.ndarray, docs: np.ndarray, chosen: np.ndarray, n: int) -> None:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    scores, ids = index.search(queries, K)
    allowed = np.flatnonzero(np.isin(docs, chosen))
    fs, fi = faiss.knn(queries, base[allowed], 10, metric=faiss.METRIC_INNER_PRODUCT)
    np.savez(OUT / f"gt_{n}.npz", scores=scores, ids=ids, filter_ids=allowed[fi], allowed=allowed)


def load_base(n: int):
    base = np.load(OUT / "base.npy", mmap_mode="r")[:n]
    return (np.array(base, dtype=np.float32, copy=True), np.load(OUT / "queries.npy"), np.load(OUT / "docs.npy")[:n],
            np.load(OUT / f"gt_{n}.npz"))


def recall10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:10]) & set(t[:10])) / 10 for f, t in zip(found, truth)]))


# ---------------------------------------------------------------------------- FAISS

def make(name: str, dim: int, n: int):
    import faiss

    nlist = 4096 if n >= 500_000 else int(4 * np.sqrt(n))
    if name == "flat":
        return faiss.IndexFlatIP(dim), {}
    if name.startswith("hnsw"):
        m, efc = {"hnsw16": (16, 100), "hnsw32": (32, 200), "hnsw24": (24, 100)}[name]
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        return index, {"M": m, "efConstruction": efc}
    quantizer = faiss.IndexFlatIP(dim)
    if name == "ivfflat":
        return faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT), {"nlist": nlist}
    if name == "ivfpq":  # 48 sub-quantisers of 8 bits: 48 bytes a vector
        return faiss.IndexIVFPQ(quantizer, dim, nlist, 48, 8, faiss.METRIC_INNER_PRODUCT), {"nlist": nlist, "m": 48}
    raise SystemExit(f"unknown index {name}")


def cmd_build(args) -> None:
    import faiss

    base, _, _, _ = load_base(args.n)
    before = rss()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    index, params = make(args.name, base.shape[1], args.n)
    started = time.perf_counter()
    if not index.is_trained:
        train = base[np.random.default_rng(0).choice(len(base), min(len(base), 50 * index.nlist), replace=False)]
        index.train(train)
        del train
    trained = time.perf_counter() - started
    index.add(base)
    build_s = time.perf_counter() - started
    grown = rss() - before
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    path = OUT / f"{args.name}_{args.n}.faiss"
    faiss.write_index(index, str(path))
    record({"what": "faiss_build", "name": args.name, "n": args.n, "params": params, "threads": faiss.omp_get_max_threads(),
            "build_s": round(build_s, 1), "train_s": round(trained, 1), "ram_per_vector": round(grown / args.n),
            "peak_growth_per_vector": round(max(0, peak - max(peak_before, before)) / args.n),
            "disk_per_vector": round(path.stat().st_size / args.n)})


# efSearch below k (100) is k in FAISS, so the HNSW sweep starts at 100. ivfpq_rr: IVF-PQ asked for
# 4k candidates, re-ranked exactly from the float vectors (which qa keeps in vectors.npy anyway).
SWEEPS = {"flat": [None], "hnsw16": [100, 160, 256, 512], "hnsw24": [100, 160, 256, 512],
          "hnsw32": [100, 160, 256, 512], "ivfflat": [8, 16, 32, 64, 128], "ivfpq": [16, 64],
          "ivfpq_rr": [16, 32, 64, 128]}


def search_params(name: str, value, selector=None):
    import faiss

    if name.startswith("hnsw"):
        return faiss.SearchParametersHNSW(efSearch=max(value, K), sel=selector) if value else None
    if name.startswith("ivf"):
        return faiss.SearchParametersIVF(nprobe=value, sel=selector)
    return faiss.SearchParameters(sel=selector) if selector is not None else None


def cmd_time(args) -> None:
    """Every index built at this size, the settings of its sweep interleaved query by query."""
    import faiss

    base, queries, docs, gt = load_base(args.n)
    chosen = np.load(OUT / "filter_docs.npy")
    allowed = gt["allowed"]
    bitmap = np.zeros(args.n, bool)
    bitmap[allowed] = True
    packed = np.packbits(bitmap, bitorder="little")
    selector = faiss.IDSelectorBitmap(args.n, faiss.swig_ptr(packed))
    indexes = {name: faiss.read_index(str(OUT / f"{name}_{args.n}.faiss"))
               for name in SWEEPS if (OUT / f"{name}_{args.n}.faiss").exists()}
    if "ivfpq" in indexes:
        indexes["ivfpq_rr"] = indexes["ivfpq"]
    settings = [(name, v) for name in indexes for v in SWEEPS[name]]
    q = queries[:args.queries]
    times = {s: [] for s in settings}
    found = {s: [] for s in settings}
    ftimes = {s: [] for s in settings}
    ffound = {s: [] for s in settings}
    qa_filter_t, qa_filter_found = [], []
    for qi in range(len(q)):
        one = q[qi:qi + 1]
        order = settings if qi % 2 == 0 else settings[::-1]
        for s in order:
            name, value = s
            params = search_params(name, value)
            t = time.perf_counter()
            if name == "ivfpq_rr":
                _, ids = indexes[name].search(one, 4 * K, params=params)
                exact = base[ids[0]] @ one[0]
                ids = ids[:, np.argsort(-exact, kind="stable")[:K]]
            else:
                _, ids = indexes[name].search(one, K, params=params)
            times[s].append(time.perf_counter() - t)
            found[s].append(ids[0])
            if qi < args.filter_queries and name not in ("flat", "ivfpq_rr"):
                # efSearch/nprobe as unfiltered; the selector skips rows outside the filter
                t = time.perf_counter()
                _, ids = indexes[name].search(one, K, params=search_params(name, value, selector))
                ftimes[s].append(time.perf_counter() - t)
                ffound[s].append(ids[0])
        if qi < args.filter_queries:  # qa's way (FaissStore.search_rows): exact over the allowed rows
            t = time.perf_counter()
            rows = np.flatnonzero(np.isin(docs, chosen))
            scores = one @ base[rows].T
            top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
            qa_filter_t.append(time.perf_counter() - t)
            qa_filter_found.append(rows[top[0]])
    for s in settings:
        name, value = s
        row = {"what": "faiss_search", "name": name, "n": args.n, "setting": value, "queries": len(q),
               "p50_ms": round(1000 * float(np.percentile(times[s], 50)), 3),
               "p95_ms": round(1000 * float(np.percentile(times[s], 95)), 3),
               "recall10": round(recall10(found[s], gt["ids"]), 4)}
        if ftimes[s]:
            row.update({"filter_queries": len(ftimes[s]),
                        "filter_p50_ms": round(1000 * float(np.percentile(ftimes[s], 50)), 3),
                        "filter_p95_ms": round(1000 * float(np.percentile(ftimes[s], 95)), 3),
                        "filter_recall10": round(recall10(ffound[s], gt["filter_ids"]), 4)})
        record(row)
    record({"what": "faiss_search", "name": "qa exact over the allowed rows", "n": args.n, "filter_queries": len(qa_filter_t),
            "filter_p50_ms": round(1000 * float(np.percentile(qa_filter_t, 50)), 3),
            "filter_p95_ms": round(1000 * float(np.percentile(qa_filter_t, 95)), 3),
            "filter_recall10": round(recall10(qa_filter_found, gt["filter_ids"]), 4)})


# ---------------------------------------------------------------------------- Milvus Lite

def cmd_milvus(args) -> None:
    import logging

    from pymilvus import DataType, MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    base, queries, docs, gt = load_base(args.n)
    chosen = np.load(OUT / "filter_docs.npy")
    folder = OUT / f"milvus_{args.index}_{args.n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    before = rss()
    started = time.perf_counter()
    client = MilvusClient(uri=str(folder / "m.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=base.shape[1])
    schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
    schema.add_field("date", DataType.VARCHAR, max_length=16)
    index = client.prepare_index_params()
    if args.index == "HNSW":
        params = {"M": args.m, "efConstruction": args.ef_construction}
    elif args.index == "IVF_FLAT":
        params = {"nlist": 4096 if args.n >= 500_000 else int(4 * np.sqrt(args.n))}
    else:
        params = {}
    index.add_index("vector", index_type=args.index, metric_type="IP", params=params)
    index.add_index("doc_id", index_type="INVERTED")
    index.add_index("date", index_type="INVERTED")
    client.create_collection("c", schema=schema, index_params=index)
    for start in range(0, args.n, 1000):
        stop = min(args.n, start + 1000)
        client.insert("c", [{"pk": i, "vector": base[i], "doc_id": f"d{docs[i]:05d}", "date": f"2019-{1 + docs[i] % 12:02d}"}
                            for i in range(start, stop)])
    inserted = time.perf_counter() - started
    client.flush("c")
    client.release_collection("c")
    client.load_collection("c")
    build_s = time.perf_counter() - started
    grown = rss() - before
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    values = json.dumps([f"d{d:05d}" for d in chosen])
    sweep = args.sweep or ([100, 160, 256] if args.index == "HNSW" else [16, 32, 64] if args.index == "IVF_FLAT" else [0])
    q = queries[:args.queries]
    times = {(v, f): [] for v in sweep for f in (False, True)}
    found = {(v, f): [] for v in sweep for f in (False, True)}
    for qi in range(len(q)):
        for v in (sweep if qi % 2 == 0 else sweep[::-1]):
            sp = {"ef": max(v, K)} if args.index == "HNSW" else {"nprobe": v} if args.index == "IVF_FLAT" else {}
            for filtered in ((False, True) if qi < args.filter_queries else (False,)):
                t = time.perf_counter()
                hits = client.search("c", data=[q[qi]], limit=K, filter=f"doc_id in {values}" if filtered else "",
                                     search_params={"metric_type": "IP", "params": sp}, output_fields=[])[0]
                times[(v, filtered)].append(time.perf_counter() - t)
                found[(v, filtered)].append(np.array([h["pk"] for h in hits]))
    client.close()
    for v in sweep:
        row = {"what": "milvus", "index": args.index, "params": params, "n": args.n, "setting": v,
               "build_s": round(build_s, 1), "insert_s": round(inserted, 1),
               "ram_per_vector": round(grown / args.n), "disk_per_vector": round(disk / args.n), "queries": len(q),
               "p50_ms": round(1000 * float(np.percentile(times[(v, False)], 50)), 2),
               "p95_ms": round(1000 * float(np.percentile(times[(v, False)], 95)), 2),
               "recall10": round(recall10(found[(v, False)], gt["ids"]), 4)}
        if times[(v, True)]:
            row.update({"filter_queries": len(times[(v, True)]),
                        "filter_p50_ms": round(1000 * float(np.percentile(times[(v, True)], 50)), 2),
                        "filter_p95_ms": round(1000 * float(np.percentile(times[(v, True)], 95)), 2),
                        "filter_recall10": round(recall10(found[(v, True)], gt["filter_ids"]), 4)})
        record(row)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def cmd_report(args) -> None:
    """Markdown tables of results.jsonl: the last build and the last timing of every setting."""
    rows = [json.loads(line) for line in open(OUT / "results.jsonl")]
    builds = {(r["name"], r["n"]): r for r in rows if r["what"] == "faiss_build"}
    searches = {(r["name"], r["n"], r.get("setting")): r for r in rows if r["what"] == "faiss_search"}
    base_of = {"ivfpq_rr": "ivfpq"}
    print("| vectors | index | setting | build (s) | RAM B/vector | disk B/vector | p50 (ms) | p95 (ms) | recall@10 "
          "| filtered p50 (ms) | filtered p95 (ms) | filtered recall@10 | load average |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for (name, n, setting), r in sorted(searches.items(), key=lambda x: (x[0][1], x[0][0], x[0][2] or 0)):
        b = builds.get((base_of.get(name, name), n), {})
        params = ", ".join(f"{k} {v}" for k, v in b.get("params", {}).items())
        knob = {"hnsw": "efSearch", "ivf": "nprobe"}.get(name[:4] if name.startswith("hnsw") else name[:3], "")
        print(f"| {n:,} | {name}{' (' + params + ')' if params else ''} | {knob + ' ' + str(setting) if setting else ''} "
              f"| {b.get('build_s', '')} | {b.get('ram_per_vector', '')} | {b.get('disk_per_vector', '')} "
              f"| {r.get('p50_ms', '')} | {r.get('p95_ms', '')} | {r.get('recall10', '')} | {r.get('filter_p50_ms', '')} "
              f"| {r.get('filter_p95_ms', '')} | {r.get('filter_recall10', '')} | {r['load'][0]} |")
    print()
    print("| vectors | index | setting | build (s) | RAM B/vector | disk B/vector | p50 (ms) | p95 (ms) | recall@10 "
          "| filtered p50 (ms) | filtered p95 (ms) | filtered recall@10 | load average |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r["what"] == "milvus":
            params = ", ".join(f"{k} {v}" for k, v in r["params"].items())
            knob = "ef" if r["index"] == "HNSW" else "nprobe"
            print(f"| {r['n']:,} | Milvus Lite {r['index']} ({params}) | {knob} {r['setting']} | {r['build_s']} "
                  f"| {r['ram_per_vector']} | {r['disk_per_vector']} | {r['p50_ms']} | {r['p95_ms']} | {r['recall10']} "
                  f"| {r.get('filter_p50_ms', '')} | {r.get('filter_p95_ms', '')} | {r.get('filter_recall10', '')} "
                  f"| {r['load'][0]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("vectors")
    sub.add_parser("report")
    b = sub.add_parser("build")
    b.add_argument("name")
    b.add_argument("--n", type=int, default=N_TOTAL)
    t = sub.add_parser("time")
    t.add_argument("--n", type=int, default=N_TOTAL)
    t.add_argument("--queries", type=int, default=300)
    t.add_argument("--filter-queries", type=int, default=50)
    m = sub.add_parser("milvus")
    m.add_argument("--n", type=int, default=100_000)
    m.add_argument("--index", default="HNSW", choices=["HNSW", "IVF_FLAT", "FLAT"])
    m.add_argument("--m", type=int, default=16)
    m.add_argument("--ef-construction", type=int, default=100)
    m.add_argument("--sweep", type=int, nargs="*")
    m.add_argument("--queries", type=int, default=100)
    m.add_argument("--filter-queries", type=int, default=20)
    m.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    {"vectors": cmd_vectors, "build": cmd_build, "time": cmd_time, "milvus": cmd_milvus, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
