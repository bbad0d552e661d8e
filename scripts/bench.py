#!/usr/bin/env python
"""Benchmarks of qa, measured in one run against baselines measured in the same run.

    .venv/bin/python scripts/bench.py                  # everything (10-20 min on 2 cores)
    .venv/bin/python scripts/bench.py --quick          # a few minutes: small sizes, fewer queries
    .venv/bin/python scripts/bench.py --only scaling   # one or more sections

Sections (``--only``):

  indexing   throughput and peak memory of building an index, each build in a child process
             (its ru_maxrss is the peak RSS, torch included), for qa, for plain dense retrieval and
             for txtai, on corpus/ and on the PIAF paragraphs written out as .txt files
  storage    size on disk of the built qa indexes and `PassageIndex.open` time
  latency    warm per-question latency (median, p95) of `Retriever.search` and of the baselines,
             questions interleaved across systems so a load spike from other jobs hits all alike
  coldstart  process start to first answer of `qa ask ... --index DIR` (median of 3)
  quality    hit@1, hit@3, MRR@10 of qa (default, dense, lexical) and of the baselines on the
             answerable seed questions, one rule for every system: a hit is correct when its text
             contains one of the question's answer quotes (whitespace normalised)
  scaling    exact (IndexFlatIP) vs the HNSW index qa uses above APPROXIMATE_FROM, on synthetic
             normalised vectors: latency, bytes per vector, recall@10, build time; checks the
             claims behind qa.index.APPROXIMATE_FROM

Baselines: *plain dense* is the same model with nothing else (corpus files split on blank lines,
``passage: `` prefix, FAISS exact inner product, ``query: `` prefix); *txtai* is a peer library
pointed at the same local model folder and the same raw paragraphs. Every ratio in the report
compares figures measured in the same run, since this machine is shared and absolute figures
drift from run to run.

Results go to BENCHMARKS.md (rendered from the JSON) and bench.json at the repository root;
with ``--only``, the other sections already in the JSON file are kept. Progress goes to stderr.
Indexes are built in temporary folders: embeddings/ is never touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
SEED_QUESTIONS = REPO / "tests" / "data" / "seed_questions.jsonl"
PIAF = REPO.parent / "shared" / "datasets" / "piaf_v1.1_fr-fr"
COLD_QUESTION = "where did Kim meet Putin?"

SECTIONS = ("indexing", "storage", "latency", "coldstart", "quality", "scaling")
SYSTEMS = ("qa", "plain", "txtai")
SYSTEM_LABELS = {"qa": "qa", "qa-default": "qa (default)", "qa-dense": "qa --mode dense",
                 "qa-lexical": "qa --mode lexical (BM25)", "plain": "plain dense", "txtai": "txtai",
                 "embed": "query embedding alone"}
K_EVAL = 10  # MRR@10; hit@1 and hit@3 come from the same ranking
K_PRODUCT = 100  # candidates qa.search asks FAISS for (CANDIDATES), used for scaling latency
DIM = 384


# --------------------------------------------------------------------------- small helpers


def log(message: str) -> None:
    """Progress on stderr, stamped with the time since start, so a long run shows where it is."""
    print(f"[bench {time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


_STARTED = time.perf_counter()


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and mean in milliseconds: the median is the typical wait,
    p95 what a user notices on a bad question (or a load spike of the shared machine)."""
    ms = np.asarray(seconds, float) * 1000
    return {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": int(len(ms))}


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def split_paragraphs(text: str) -> list[str]:
    """Blank-line paragraphs, nothing else: the plain baselines' whole ingestion."""
    return [p.strip() for p in re.split(r"\n[ \t\r\f\v]*\n", text) if p.strip()]


def raw_paragraphs(folder: Path) -> list[str]:
    """The blank-line paragraphs of every .txt/.md file under `folder`, in path order."""
    paragraphs: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".txt", ".md") and p.is_file()):
        paragraphs.extend(split_paragraphs(path.read_text(encoding="utf-8", errors="replace")))
    return paragraphs


def corpus_chars(folder: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8", errors="replace")) for p in folder.rglob("*")
               if p.suffix in (".txt", ".md") and p.is_file())


def load_seed_questions() -> list[dict]:
    return [json.loads(line) for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def spread(items: Sequence, n: int) -> list:
    """`n` items evenly spaced over the list: the seed file alternates EN/FR and ends with the
    unanswerable questions, so a spread keeps the mix instead of taking the first n."""
    if n >= len(items):
        return list(items)
    return [items[int(i * len(items) / n)] for i in range(n)]


def ranking_metrics(ranked_texts: Sequence[Sequence[str]], quote_sets: Sequence[Sequence[str]]) -> dict[str, float]:
    """hit@1, hit@3, MRR@10 by text containment of an answer quote, the same rule for every system
    (the baselines' passages are raw paragraphs, not qa's, so passage ids cannot be compared)."""
    h1 = h3 = mrr = 0.0
    for texts, quotes in zip(ranked_texts, quote_sets):
        wanted = [normalize_ws(q) for q in quotes]
        first = next((i for i, t in enumerate(texts[:K_EVAL]) if any(q in normalize_ws(t) for q in wanted)), None)
        if first is not None:
            h1 += first == 0
            h3 += first < 3
            mrr += 1 / (first + 1)
    n = max(len(quote_sets), 1)
    return {"hit@1": round(h1 / n, 4), "hit@3": round(h3 / n, 4), "mrr@10": round(mrr / n, 4),
            "questions": len(quote_sets)}


def rss_now_mb() -> float:
    """Current resident memory of this process (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_info() -> dict[str, Any]:
    """Where the figures come from: they are only comparable on the same machine and load."""
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    versions = {}
    for name in ("torch", "faiss", "sentence_transformers", "transformers", "numpy", "bm25s", "txtai"):
        try:
            from importlib.metadata import version

            distribution = {"faiss": "faiss-cpu", "sentence_transformers": "sentence-transformers"}.get(name, name)
            versions[name] = version(distribution)
        except Exception:
            versions[name] = None
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "git": _git_state(), "memory_gib": round(mem_kb / 2**20, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


def _git_state() -> str | None:
    """The commit measured, and which tracked files differed from it (others edit concurrently)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--name-only", "HEAD"], capture_output=True, text=True, cwd=REPO,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (f" + uncommitted changes to {', '.join(dirty)}" if dirty else "")


# --------------------------------------------------------------------------- child processes


def run_worker(task: str, **params: Any) -> dict[str, Any]:
    """Run `task` in a fresh Python process and return its JSON result plus its peak RSS.

    A child of its own is the only way to see the true peak of an indexing run: torch allocates
    outside Python's heap (tracemalloc misses it) and this process has already loaded models.
    os.wait4 gives the rusage of exactly that child.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", task, "--params", json.dumps(params)]
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
    tasks: dict[str, Callable[[dict], dict]] = {"index-qa": _worker_index_qa, "index-plain": _worker_index_plain,
                                                 "index-txtai": _worker_index_txtai}
    result = tasks[task](params)
    print(json.dumps(result), flush=True)
    return 0


def _loaded_embedder():
    """The default model, loaded and warmed up; with its load time (s) and the RSS after (MiB)."""
    from qa.embedding import Embedder

    started = time.perf_counter()
    embedder = Embedder()
    embedder.embed_queries(["warm up"])
    return embedder, time.perf_counter() - started, rss_now_mb()


def _worker_index_qa(params: dict) -> dict:
    """qa's own build (ingestion, passages and sentences embedded, FAISS, written to disk), then a
    second build of the unchanged corpus, which must embed nothing."""
    from qa.index import build_index, live_generation, read_manifest

    embedder, model_s, rss_model = _loaded_embedder()
    started = time.perf_counter()
    report = build_index([params["corpus"]], params["index"], embedder)
    build_s = time.perf_counter() - started
    generation = live_generation(Path(params["index"]))
    sentences = int(np.load(generation / "sentence_spans.npy", mmap_mode="r").shape[0])
    started = time.perf_counter()
    again = build_index([params["corpus"]], params["index"], embedder)
    return {"model_load_s": round(model_s, 2), "rss_after_model_mb": round(rss_model, 1),
            "index_s": round(build_s, 3), "passages": report.passages, "documents": report.documents,
            "sentences": sentences, "embedded_texts": report.passages + sentences,
            "faiss": read_manifest(generation).faiss["kind"],
            "unchanged_rebuild_s": round(time.perf_counter() - started, 3), "unchanged_embedded": again.embedded}


def _worker_index_plain(params: dict) -> dict:
    """The plain dense baseline's build: blank-line paragraphs, embedded, IndexFlatIP."""
    import faiss

    embedder, model_s, rss_model = _loaded_embedder()
    started = time.perf_counter()
    paragraphs = raw_paragraphs(Path(params["corpus"]))
    vectors = embedder.embed_passages(paragraphs)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return {"model_load_s": round(model_s, 2), "rss_after_model_mb": round(rss_model, 1),
            "index_s": round(time.perf_counter() - started, 3), "passages": len(paragraphs),
            "embedded_texts": len(paragraphs)}


def _worker_index_txtai(params: dict) -> dict:
    """txtai's build of the same raw paragraphs (content stored, its default ANN backend)."""
    started = time.perf_counter()
    embeddings = make_txtai()
    model_s = time.perf_counter() - started
    rss_model = rss_now_mb()
    started = time.perf_counter()
    paragraphs = raw_paragraphs(Path(params["corpus"]))
    embeddings.index([(str(i), text, None) for i, text in enumerate(paragraphs)])
    return {"model_load_s": round(model_s, 2), "rss_after_model_mb": round(rss_model, 1),
            "index_s": round(time.perf_counter() - started, 3), "passages": len(paragraphs),
            "embedded_texts": len(paragraphs), "ann": embeddings.config.get("backend", "faiss")}


def make_txtai():
    """txtai over qa's local model folder. With method="sentence-transformers" txtai calls
    encode_query/encode_document, which apply the folder's own `query: `/`passage: ` prompts, so no
    `instructions` are passed (they would double the prefix); `txtai_prefix_check` verifies it."""
    from txtai import Embeddings

    from qa.model import default_model_dir

    return Embeddings(path=str(default_model_dir()), content=True, method="sentence-transformers", gpu=False)


# --------------------------------------------------------------------------- shared state


class Bench:
    """What the sections share: temp folders, built indexes, loaded models, the baselines."""

    def __init__(self, quick: bool, tmp: Path):
        self.quick, self.tmp = quick, tmp
        # what --quick trims: the PIAF-size builds, the 100k/1M scaling sizes, the number of queries
        self.with_piaf = not quick
        self.scaling_sizes = [10_000] if quick else [10_000, 100_000, 1_000_000]
        self.scaling_queries = 50 if quick else 200
        self.latency_questions = 15 if quick else 50
        self.piaf_limit = 0  # paragraphs of PIAF to write out (whole articles); 0: all
        self.questions = load_seed_questions()
        self._embedder = None
        self._corpus_index: Path | None = None
        self._piaf_dir: Path | None = None
        self.piaf_index: Path | None = None
        self._systems: dict[str, Any] | None = None
        self.embed_ms: float | None = None  # median query-embedding latency, when measured

    @property
    def embedder(self):
        if self._embedder is None:
            from qa.embedding import Embedder

            log("loading the model in the main process")
            self._embedder = Embedder()
            self._embedder.embed_queries(["warm up"])
        return self._embedder

    def corpus_index(self) -> Path:
        """The qa index of corpus/, built once in a child (the indexing section's build is reused)."""
        if self._corpus_index is None:
            path = self.tmp / "index-corpus"
            log("building the qa index of corpus/")
            result = run_worker("index-qa", corpus=str(CORPUS), index=str(path))
            if "error" in result:
                raise RuntimeError(result["error"])
            self._corpus_index = path
        return self._corpus_index

    def piaf_corpus(self) -> Path | None:
        """PIAF's paragraphs as one .txt file per article (blank line between paragraphs), so qa
        ingests them through its real path, like a user's folder of articles."""
        if self._piaf_dir is None and (PIAF / "corpus.jsonl").is_file():
            folder = self.tmp / "piaf-txt"
            folder.mkdir()
            articles: dict[str, list[str]] = {}
            for line in (PIAF / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    if self.piaf_limit and row["doc_id"] not in articles and \
                            sum(map(len, articles.values())) >= self.piaf_limit:
                        continue
                    articles.setdefault(row["doc_id"], []).append(row["text"])
            for i, (title, paragraphs) in enumerate(articles.items()):
                slug = re.sub(r"[^\w-]+", "_", title)[:60].strip("_")
                (folder / f"{i:04d}_{slug}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
            self._piaf_dir = folder
        return self._piaf_dir

    def systems(self) -> dict[str, Any]:
        """qa and the two baselines over corpus/, loaded in this process for the query sections."""
        if self._systems is None:
            from qa.index import PassageIndex
            from qa.search import Retriever

            retriever = Retriever(PassageIndex.open(self.corpus_index()), self.embedder)
            retriever.warm_up()
            systems: dict[str, Any] = {"qa": retriever, "plain": PlainDense(self.embedder, raw_paragraphs(CORPUS))}
            try:
                log("building the txtai index of corpus/ in process")
                systems["txtai"] = TxtaiSystem(raw_paragraphs(CORPUS))
            except Exception as exc:  # reported, not fatal: the rest of the benchmark stands
                systems["txtai_error"] = f"{type(exc).__name__}: {exc}"
                log(f"txtai unavailable: {systems['txtai_error']}")
            self._systems = systems
        return self._systems


class PlainDense:
    """The same model and nothing else: raw paragraphs, exact inner product, no sentences, no BM25."""

    def __init__(self, embedder, paragraphs: list[str]):
        import faiss

        self.embedder, self.paragraphs = embedder, paragraphs
        vectors = embedder.embed_passages(paragraphs)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, question: str, k: int = K_EVAL) -> list[str]:
        vector = self.embedder.embed_queries([question])
        _, ids = self.index.search(vector, min(k, len(self.paragraphs)))
        return [self.paragraphs[i] for i in ids[0] if i >= 0]


class TxtaiSystem:
    """txtai over the same raw paragraphs and the same model folder."""

    def __init__(self, paragraphs: list[str]):
        self.embeddings = make_txtai()
        self.embeddings.index([(str(i), text, None) for i, text in enumerate(paragraphs)])

    def search(self, question: str, k: int = K_EVAL) -> list[str]:
        return [row["text"] for row in self.embeddings.search(question, k)]

    def prefix_check(self, embedder) -> float:
        """Cosine between txtai's and qa's vectors of one query and one passage (1.0: same prefixes)."""
        q = self.embeddings.batchtransform([COLD_QUESTION], category="query")[0]
        p = self.embeddings.batchtransform(["Kim a rencontré Poutine."], category="data")[0]
        return round(min(float(q @ embedder.embed_queries([COLD_QUESTION])[0]),
                         float(p @ embedder.embed_passages(["Kim a rencontré Poutine."])[0])), 5)


# --------------------------------------------------------------------------- sections


def section_indexing(bench: Bench) -> dict:
    """Build time, throughput and peak RSS of qa and of both baselines, each in its own process."""
    corpora = {"corpus": CORPUS}
    if bench.with_piaf and bench.piaf_corpus() is not None:
        corpora["piaf"] = bench.piaf_corpus()
    results: dict[str, Any] = {}
    for name, folder in corpora.items():
        row: dict[str, Any] = {"files": sum(1 for p in folder.rglob("*.txt")), "chars": corpus_chars(folder),
                               "raw_paragraphs": len(raw_paragraphs(folder))}
        for system in SYSTEMS:
            log(f"indexing {name} with {system} (child process)")
            if system == "qa":
                target = bench.tmp / f"index-{name}"
                shutil.rmtree(target, ignore_errors=True)
                result = run_worker("index-qa", corpus=str(folder), index=str(target))
                if "error" not in result:
                    if name == "corpus":
                        bench._corpus_index = target
                    else:
                        bench.piaf_index = target
            else:
                result = run_worker(f"index-{system}", corpus=str(folder))
            if "error" not in result:
                seconds = max(result["index_s"], 1e-9)
                result["passages_per_s"] = round(result["passages"] / seconds, 1)
                result["texts_per_s"] = round(result["embedded_texts"] / seconds, 1)
                result["kchars_per_s"] = round(row["chars"] / seconds / 1000, 2)
                if "sentences" in result:
                    result["sentences_per_s"] = round(result["sentences"] / seconds, 1)
            else:
                log(result["error"])
            row[system] = result
        results[name] = row
    return results


def section_storage(bench: Bench) -> dict:
    """Index size on disk and `PassageIndex.open` time (warm file cache, median of 5, after a
    first open that pays the faiss import)."""
    from qa.index import PassageIndex, live_generation

    indexes = {"corpus": bench.corpus_index()}
    if bench.piaf_index is not None:
        indexes["piaf"] = bench.piaf_index
    results = {}
    for name, path in indexes.items():
        generation = live_generation(path)
        files = {f.name: f.stat().st_size for f in sorted(generation.iterdir()) if f.is_file()}
        started = time.perf_counter()
        index = PassageIndex.open(path)
        first = time.perf_counter() - started
        times = []
        for _ in range(5):
            started = time.perf_counter()
            PassageIndex.open(path)
            times.append(time.perf_counter() - started)
        results[name] = {"bytes": sum(files.values()), "files": files, "passages": len(index),
                         "sentences": int(len(index.sentence_vectors)),
                         "bytes_per_passage": round(sum(files.values()) / len(index)),
                         "first_open_ms": round(first * 1000, 2), "open": summarize(times)}
        log(f"storage {name}: {sum(files.values()) / 1e6:.2f} MB, open {np.median(times) * 1000:.1f} ms")
    return results


def section_latency(bench: Bench) -> dict:
    """Warm latency per question, one question at a time as a user asks them.

    Systems are interleaved question by question (not run one after the other) so that a load
    spike from other jobs on the shared CPU lands on every system alike.
    """
    systems = bench.systems()
    embedder = bench.embedder
    qa = systems["qa"]
    questions = [q["question"] for q in spread(bench.questions, bench.latency_questions)]
    runners: dict[str, Callable[[str], Any]] = {
        "embed": lambda q: embedder.embed_queries([q]),
        "qa-default": lambda q: qa.search(q, k=5),
        "qa-dense": lambda q: qa.search(q, k=5, mode="dense"),
        "qa-lexical": lambda q: qa.search(q, k=5, mode="lexical"),
        "plain": lambda q: systems["plain"].search(q, k=5),
    }
    if "txtai" in systems:
        runners["txtai"] = lambda q: systems["txtai"].search(q, k=5)
    for run in runners.values():  # 3 warm-up calls each
        for q in ("warm up", "où Kim a-t-il rencontré Poutine ?", COLD_QUESTION):
            run(q)
    timings: dict[str, list[float]] = {name: [] for name in runners}
    log(f"latency: {len(questions)} questions x {len(runners)} systems")
    names = list(runners)
    shuffler = random.Random(0)
    for q in questions:
        # A fresh order per question: with a fixed (or merely rotated) order, the system that
        # always ran right after txtai, which holds its own copy of the model, measured slower.
        for name in shuffler.sample(names, len(names)):
            run = runners[name]
            started = time.perf_counter()
            run(q)
            timings[name].append(time.perf_counter() - started)
    results: dict[str, Any] = {"questions": len(questions), "k": 5, "index": "corpus/",
                               "passages": len(qa.index), "sentences": int(len(qa.index.sentence_vectors)),
                               "systems": {name: summarize(t) for name, t in timings.items()},
                               "threads": _embed_threads_comparison(embedder, questions)}
    if "txtai_error" in systems:
        results["txtai_error"] = systems["txtai_error"]
    bench.embed_ms = results["systems"]["embed"]["median_ms"]
    if bench.piaf_index is not None:
        results["piaf"] = _latency_piaf(bench)
    return results


def _embed_threads_comparison(embedder, questions: list[str]) -> dict:
    """Query embedding at this run's torch thread count and at the other natural setting (1 vs
    one per core), alternated question by question. On a shared machine whose cores are busy,
    a multi-threaded forward pass of one short question waits at every barrier for a thread
    the OS has descheduled; this shows how much that costs here."""
    import torch

    configured = torch.get_num_threads()
    other = 1 if configured > 1 else (os.cpu_count() or 1)
    timings: dict[int, list[float]] = {configured: [], other: []}
    try:
        for q in questions[:15]:  # a 2-thread call on a busy machine can take a second: 15 are enough
            for threads in (configured, other):
                torch.set_num_threads(threads)
                embedder.embed_queries([q])  # one untimed call after each switch
                started = time.perf_counter()
                embedder.embed_queries([q])
                timings[threads].append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(configured)
    return {"configured": configured, **{f"embed_{n}_threads": summarize(t) for n, t in timings.items()}}


def _latency_piaf(bench: Bench) -> dict:
    """qa's latency on the PIAF-size index (1.5k paragraphs, their sentences): the default corpus
    is too small to show what grows with the index (FAISS, BM25, candidate scoring)."""
    from qa.index import PassageIndex
    from qa.search import Retriever

    retriever = Retriever(PassageIndex.open(bench.piaf_index), bench.embedder)
    retriever.warm_up()
    queries = [json.loads(line)["question"] for line in
               (PIAF / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:50] if line.strip()]
    for q in queries[:3]:
        retriever.search(q)
    timings: dict[str, list[float]] = {"embed": [], "qa-default": [], "qa-lexical": []}
    for q in queries:
        for name, run in (("embed", lambda: bench.embedder.embed_queries([q])), ("qa-default", lambda: retriever.search(q)),
                          ("qa-lexical", lambda: retriever.search(q, mode="lexical"))):
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    return {"questions": len(queries), "passages": len(retriever.index),
            "sentences": int(len(retriever.index.sentence_vectors)),
            "systems": {name: summarize(t) for name, t in timings.items()}}


def section_coldstart(bench: Bench) -> dict:
    """Process start to first answer of the CLI: imports, model load, index load, one question."""
    index = bench.corpus_index()
    qa_bin = Path(sys.executable).parent / "qa"
    command = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa"]
    command += ["ask", COLD_QUESTION, "--index", str(index)]
    env = {k: v for k, v in os.environ.items() if k not in ("QA_INDEX", "QA_CORPUS")}
    from qa.model import default_model_dir

    floor = [sys.executable, "-c", COLD_FLOOR.format(model=str(default_model_dir()), question=COLD_QUESTION)]
    times, floor_times, answered = [], [], []
    for i in range(3):  # alternated, so both see the same load
        log(f"cold start {i + 1}/3")
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
        times.append(time.perf_counter() - started)
        answered.append(proc.returncode == 0 and "Vladivostok" in proc.stdout)
        started = time.perf_counter()
        subprocess.run(floor, capture_output=True, env=env, cwd=REPO, check=True)
        floor_times.append(time.perf_counter() - started)
    return {"command": f"qa ask {COLD_QUESTION!r} --index <tmp index of corpus/>", "runs_s": [round(t, 3) for t in times],
            "median_s": round(float(np.median(times)), 3), "answered": all(answered),
            "floor_runs_s": [round(t, 3) for t in floor_times], "floor_median_s": round(float(np.median(floor_times)), 3)}


# The least any dense retriever on this stack pays before its first answer: start Python, import
# sentence-transformers (torch), load the model, embed one question.
COLD_FLOOR = """
from sentence_transformers import SentenceTransformer
SentenceTransformer({model!r}, device="cpu").encode([{question!r}], prompt="query: ")
"""


def section_quality(bench: Bench) -> dict:
    """Quality of every system on the answerable seed questions, by the text-containment rule."""
    systems = bench.systems()
    answerable = [q for q in bench.questions if q["answers"]]
    quotes = [[a["quote"] for a in q["answers"]] for q in answerable]
    questions = [q["question"] for q in answerable]
    qa = systems["qa"]
    rankers: dict[str, Callable[[str], list[str]]] = {
        "qa-default": lambda q: [h.text for h in qa.search(q, k=K_EVAL)],
        "qa-dense": lambda q: [h.text for h in qa.search(q, k=K_EVAL, mode="dense")],
        "qa-lexical": lambda q: [h.text for h in qa.search(q, k=K_EVAL, mode="lexical")],
        "plain": lambda q: systems["plain"].search(q, K_EVAL),
    }
    if "txtai" in systems:
        rankers["txtai"] = lambda q: systems["txtai"].search(q, K_EVAL)
    results: dict[str, Any] = {"questions": len(answerable), "languages": _count_languages(answerable),
                               "rule": "a hit is correct when its text contains one of the question's answer quotes "
                                       "(whitespace normalised)", "systems": {}}
    for name, rank in rankers.items():
        log(f"quality: {name}")
        ranked = [rank(q) for q in questions]
        scores = ranking_metrics(ranked, quotes)
        by_language = {}
        for lang in ("en", "fr"):
            rows = [i for i, q in enumerate(answerable) if q.get("lang") == lang]
            by_language[lang] = ranking_metrics([ranked[i] for i in rows], [quotes[i] for i in rows])
        results["systems"][name] = {**scores, "by_language": by_language}
    if "txtai" in systems:
        results["txtai_prefix_cosine"] = systems["txtai"].prefix_check(bench.embedder)
    elif "txtai_error" in systems:
        results["txtai_error"] = systems["txtai_error"]
    results["raw_paragraphs"] = len(systems["plain"].paragraphs)
    results["qa_passages"] = len(qa.index)
    return results


def _count_languages(questions: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for q in questions:
        counts[q.get("lang") or "?"] = counts.get(q.get("lang") or "?", 0) + 1
    return counts


def section_scaling(bench: Bench, hnsw_budget_s: float) -> dict:
    """Exact vs HNSW search as the index grows, on synthetic normalised vectors.

    Queries are noisy copies of stored vectors (cosine about 0.8 to their source) so each has a
    true nearest neighbour. Latency is one query at a time with k = CANDIDATES (what qa.search
    asks FAISS for); recall@10 compares HNSW's top 10 with the exact top 10. Random vectors in 384
    dimensions have no cluster structure, which makes them a hard case for HNSW: recall on real
    embeddings is measured too when the PIAF index was built (its sentence vectors).
    """
    sizes, n_queries = bench.scaling_sizes, bench.scaling_queries
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
    import faiss

    results: dict[str, Any] = {"dim": DIM, "k": K_PRODUCT, "queries": n_queries, "synthetic": rows,
                               "hnsw_budget_s": hnsw_budget_s, "search_threads": faiss.omp_get_max_threads()}
    if bench.piaf_index is not None:
        results["real"] = _scaling_real(bench, n_queries)
        results["sentences_per_passage"] = results["real"].pop("sentences_per_passage")
    results["embed_ms"] = bench.embed_ms if bench.embed_ms is not None else _embed_latency(bench)
    results["fit"] = exact_cost_fit(rows, results["embed_ms"], results.get("sentences_per_passage"))
    return results


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

    from qa.index import APPROXIMATE_FROM, _faiss_params, make_faiss_index

    n = len(vectors)
    row: dict[str, Any] = {"n": n}
    log(f"scaling {label}: exact index")
    started = time.perf_counter()
    exact = make_faiss_index(vectors, _faiss_params(0))
    row["exact"] = {"build_s": round(time.perf_counter() - started, 3)}
    _, truth = exact.search(queries, 10)  # batched: the ground truth, not timed
    row["exact"].update(_time_single_queries(exact, queries))
    row["exact"]["bytes_per_vector"] = round(len(faiss.serialize_index(exact)) / n, 1)
    del exact
    if not build_hnsw:
        row["hnsw"] = None
        return row
    params = _faiss_params(max(n, APPROXIMATE_FROM))
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
    row["hnsw"] = {"build_s": round(build_s, 2), **timing, "efSearch": params["efSearch"], "M": params["M"],
                   "efConstruction": params["efConstruction"], "build_threads": build_threads,
                   "recall@10": recall_at(found, truth, 10),
                   "recall@1": recall_at(found, truth, 1),
                   "bytes_per_vector": round(len(faiss.serialize_index(hnsw)) / n, 1)}
    log(f"scaling {label}: exact {row['exact']['median_ms']:.2f} ms, HNSW {timing['median_ms']:.2f} ms, "
        f"recall@10 {row['hnsw']['recall@10']:.3f}, build {build_s:.1f} s")
    return row


def _time_single_queries(index, queries: np.ndarray) -> dict[str, float]:
    """One query per call, k = CANDIDATES, as qa.search issues them (after 3 warm-up calls)."""
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
    """Exact vs HNSW on real vectors: the PIAF index's sentence vectors, queried with PIAF
    questions embedded by the model. Small, but with the structure real embeddings have."""
    from qa.index import PassageIndex

    index = PassageIndex.open(bench.piaf_index)
    questions = [json.loads(line)["question"] for line in
                 (PIAF / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:n_queries] if line.strip()]
    queries = bench.embedder.embed_queries(questions)
    row = compare_indexes(np.ascontiguousarray(index.sentence_vectors), queries, label="PIAF sentences")
    row["what"] = "sentence vectors of the PIAF index, PIAF questions"
    row["sentences_per_passage"] = round(len(index.sentence_vectors) / len(index), 2)
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

    qa runs two searches per question (passages and sentences) and switches both indexes to
    HNSW when the *sentence* count reaches APPROXIMATE_FROM, so the crossover is reported both
    for one index and for the pair.
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


# --------------------------------------------------------------------------- report


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.{digits}f}×"


def render_markdown(data: dict) -> str:
    """BENCHMARKS.md, derived entirely from the JSON so both always agree."""
    meta, sections = data["meta"], data["sections"]
    machine = meta["machine"]
    lines = ["# Benchmarks", "",
             f"Generated by `python scripts/{meta.get('command', 'bench.py')}` on {meta['date']} "
             f"(total {meta.get('total_s', 0):.0f} s). Raw figures: `bench.json`.", "",
             f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB RAM, "
             f"load average at start {machine['load_average']} (the CPUs are shared with other jobs: "
             "absolute times drift between runs, the ratios below come from the same run).",
             "- Threads: " + (f"torch and FAISS limited to {meta['threads']} (`--threads {meta['threads']}`, set "
                              "through OMP_NUM_THREADS for this process and every child, the CLI runs included), "
                              "because on busy shared cores a multi-threaded forward pass stalls at every barrier "
                              "(see the thread comparison under query latency); HNSW builds still use every core."
                              if meta.get("threads") else "the libraries' defaults (one per core)."),
             f"- Code measured: {machine.get('git') or 'unknown'}.",
             "- Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v), ""]
    renderers = {"indexing": _md_indexing, "storage": _md_storage, "latency": _md_latency,
                 "coldstart": _md_coldstart, "quality": _md_quality, "scaling": _md_scaling}
    summary = _md_summary(sections)
    if summary:
        lines += summary
    for name in SECTIONS:
        if name in sections:
            section = sections[name]
            lines += renderers[name](section["results"], section)
    return "\n".join(lines).rstrip() + "\n"


def _note(section: dict) -> str:
    load = section.get("load_average_after")
    return (f" _(measured {section['measured_at']}{', --quick' if section.get('quick') else ''}"
            f"{f', load average after: {load[0]}' if load else ''})_")


def _md_summary(sections: dict) -> list[str]:
    """The headline ratios against the baselines measured in the same run."""
    out = []
    idx = sections.get("indexing", {}).get("results", {})
    lat = sections.get("latency", {}).get("results", {}).get("systems", {})
    qual = sections.get("quality", {}).get("results", {}).get("systems", {})
    scal = sections.get("scaling", {}).get("results", {})
    if lat:
        qa_ms = lat.get("qa-default", {}).get("median_ms")
        out.append(f"| qa query latency / plain dense | {ratio(qa_ms, lat.get('plain', {}).get('median_ms'))} | "
                   f"{fmt(qa_ms, 1)} ms vs {fmt(lat.get('plain', {}).get('median_ms'), 1)} ms (median, warm) |")
        if "txtai" in lat:
            out.append(f"| qa query latency / txtai | {ratio(qa_ms, lat['txtai']['median_ms'])} | "
                       f"{fmt(qa_ms, 1)} ms vs {fmt(lat['txtai']['median_ms'], 1)} ms |")
        out.append(f"| qa query latency / embedding the question alone | {ratio(qa_ms, lat['embed']['median_ms'])} | "
                   f"{fmt(qa_ms, 1)} ms vs {fmt(lat['embed']['median_ms'], 1)} ms (the model is the cost) |")
    cold = sections.get("coldstart", {}).get("results")
    if cold and "floor_median_s" in cold:
        out.append(f"| qa cold start / bare sentence-transformers start | "
                   f"{ratio(cold['median_s'], cold['floor_median_s'])} | "
                   f"{cold['median_s']:.2f} s vs {cold['floor_median_s']:.2f} s |")
    for corpus in ("corpus", "piaf"):
        row = idx.get(corpus)
        if not row or "error" in row.get("qa", {"error": 1}):
            continue
        for other in ("plain", "txtai"):
            if "index_s" in row.get(other, {}):
                out.append(f"| qa index time / {SYSTEM_LABELS[other]} ({corpus}) | "
                           f"{ratio(row['qa']['index_s'], row[other]['index_s'])} | {fmt(row['qa']['index_s'], 2)} s vs "
                           f"{fmt(row[other]['index_s'], 2)} s; qa embeds {row['qa']['embedded_texts']:,} texts "
                           f"(passages + sentences), {SYSTEM_LABELS[other]} {row[other]['embedded_texts']:,} |")
        for other in ("plain", "txtai"):
            if "peak_rss_mb" in row.get(other, {}):
                out.append(f"| qa peak RSS / {SYSTEM_LABELS[other]} ({corpus}) | "
                           f"{ratio(row['qa']['peak_rss_mb'], row[other]['peak_rss_mb'])} | "
                           f"{fmt(row['qa']['peak_rss_mb'], 0)} MiB vs {fmt(row[other]['peak_rss_mb'], 0)} MiB |")
    if qual:
        base = qual.get("qa-default", {})
        for other in ("plain", "txtai", "qa-lexical"):
            if other in qual:
                d1 = 100 * (base["hit@1"] - qual[other]["hit@1"])
                dm = 100 * (base["mrr@10"] - qual[other]["mrr@10"])
                out.append(f"| qa hit@1 − {SYSTEM_LABELS[other]} | {d1:+.1f} pts | MRR@10 {dm:+.1f} pts "
                           f"({qual['qa-default']['questions']} questions) |")
    if scal.get("fit"):
        fit = scal["fit"]
        out.append(f"| exact search cost | {fmt(fit['ms_per_10k'], 2)} ms per 10k vectors | slower than embedding a "
                   f"question ({fmt(fit['embed_ms'], 1)} ms) from ~{fmt(fit['crossover_vectors'])} vectors |")
    if not out:
        return []
    return ["## Summary (ratios within this run)", "", "| comparison | ratio / difference | figures |",
            "|---|---|---|", *out, ""]


def _md_indexing(results: dict, section: dict) -> list[str]:
    out = ["## Indexing" + _note(section), "",
           "Each build runs in a child process; peak RSS is its `ru_maxrss` (model and torch included). Index time "
           "excludes model loading (listed apart). qa embeds every passage *and* every sentence (sentence vectors "
           "mark the answer without embedding at question time); the baselines embed raw blank-line paragraphs only.",
           "", "| corpus | system | passages | sentences | index time (s) | passages/s | sentences/s | texts embedded/s "
           "| kchars/s | model load (s) | RSS after load (MiB) | peak RSS (MiB) | unchanged re-index (s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for corpus, row in results.items():
        label = {"corpus": "corpus/", "piaf": "PIAF paragraphs as .txt"}.get(corpus, corpus)
        label += f" ({row['files']} files, {row['chars'] / 1000:,.0f} kchars)"
        for system in SYSTEMS:
            r = row.get(system, {})
            if "error" in r or not r:
                out.append(f"| {label} | {SYSTEM_LABELS[system]} | failed: {r.get('error', 'not run')[:80]} |"
                           + " |" * 10)
                continue
            out.append(f"| {label} | {SYSTEM_LABELS[system]} | {fmt(r['passages'])} | {fmt(r.get('sentences'))} | "
                       f"{fmt(r['index_s'], 2)} | {fmt(r['passages_per_s'])} | {fmt(r.get('sentences_per_s'))} | "
                       f"{fmt(r['texts_per_s'])} | {fmt(r['kchars_per_s'], 2)} | {fmt(r['model_load_s'], 1)} | "
                       f"{fmt(r['rss_after_model_mb'], 0)} | {fmt(r['peak_rss_mb'], 0)} | "
                       f"{fmt(r.get('unchanged_rebuild_s'), 2)} |")
    return out + [""]


def _md_storage(results: dict, section: dict) -> list[str]:
    out = ["## Index size and load time" + _note(section), "",
           "| index | passages | sentences | size on disk | bytes/passage | `PassageIndex.open` median (ms) | "
           "first open in the process (ms) |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        out.append(f"| {name} | {fmt(r['passages'])} | {fmt(r['sentences'])} | {r['bytes'] / 1e6:.2f} MB | "
                   f"{fmt(r['bytes_per_passage'])} | {fmt(r['open']['median_ms'], 1)} | {fmt(r['first_open_ms'], 1)} |")
    return out + ["", "The first open of the first index also pays the faiss import.", ""]


def _md_latency(results: dict, section: dict) -> list[str]:
    out = ["## Query latency (warm)" + _note(section), "",
           f"{results['questions']} seed questions (EN and FR, answerable or not), one at a time, k={results['k']}, "
           f"after 3 warm-up calls; systems interleaved question by question. Index: corpus/ "
           f"({results['passages']} passages, {results['sentences']} sentences).", "",
           "| system | median (ms) | p95 (ms) | mean (ms) | median / plain dense |", "|---|---|---|---|---|"]
    plain = results["systems"].get("plain", {}).get("median_ms")
    for name, r in results["systems"].items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)} | {fmt(r['median_ms'], 2)} | {fmt(r['p95_ms'], 2)} | "
                   f"{fmt(r['mean_ms'], 2)} | {ratio(r['median_ms'], plain)} |")
    threads = results.get("threads")
    if threads:
        cells = ", ".join(f"{key.split('_')[1]} thread(s): median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms"
                          for key, r in threads.items() if key.startswith("embed_"))
        out += ["", f"torch ran with {threads['configured']} thread(s) in this run. Query embedding alone, by thread "
                    f"count (alternated question by question): {cells}."]
    if results.get("txtai_error"):
        out.append(f"\ntxtai could not run: {results['txtai_error']}")
    piaf = results.get("piaf")
    if piaf:
        out += ["", f"On the PIAF-size index ({piaf['passages']:,} passages, {piaf['sentences']:,} sentences), "
                    f"{piaf['questions']} PIAF questions:", "",
                "| system | median (ms) | p95 (ms) |", "|---|---|---|"]
        for name, r in piaf["systems"].items():
            out.append(f"| {SYSTEM_LABELS.get(name, name)} | {fmt(r['median_ms'], 2)} | {fmt(r['p95_ms'], 2)} |")
    return out + [""]


def _md_coldstart(results: dict, section: dict) -> list[str]:
    return ["## Cold start" + _note(section), "",
            f"`{results['command']}`, process start to exit (first answer printed), median of 3: "
            f"**{results['median_s']:.2f} s** (runs: {', '.join(f'{t:.2f}' for t in results['runs_s'])} s; "
            f"answer found: {'yes' if results['answered'] else 'NO'}).", "",
            f"Floor for comparison, alternated with those runs: `python -c` that imports sentence-transformers, loads "
            f"the same model folder and embeds the question, nothing else: median **{results['floor_median_s']:.2f} s** "
            f"(qa / floor: {ratio(results['median_s'], results['floor_median_s'])}).", ""]


def _md_quality(results: dict, section: dict) -> list[str]:
    out = ["## Retrieval quality on the seed questions" + _note(section), "",
           f"{results['questions']} answerable questions of `tests/data/seed_questions.jsonl` "
           f"({', '.join(f'{v} {k.upper()}' for k, v in results['languages'].items())}); {results['rule']}, "
           f"for every system alike. qa ranks its {results['qa_passages']} passages; the baselines rank "
           f"{results['raw_paragraphs']} raw paragraphs.", "",
           "| system | hit@1 | hit@3 | MRR@10 | hit@1 EN | hit@1 FR | hit@1 − qa |", "|---|---|---|---|---|---|---|"]
    qa_h1 = results["systems"].get("qa-default", {}).get("hit@1", 0)
    for name, r in results["systems"].items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | {r['mrr@10']:.3f} | "
                   f"{r['by_language']['en']['hit@1']:.3f} | {r['by_language']['fr']['hit@1']:.3f} | "
                   f"{100 * (r['hit@1'] - qa_h1):+.1f} pts |")
    if "txtai_prefix_cosine" in results:
        out.append(f"\ntxtai applies the model folder's own `query: ` / `passage: ` prompts (cosine with qa's vectors: "
                   f"{results['txtai_prefix_cosine']}).")
    if results.get("txtai_error"):
        out.append(f"\ntxtai could not run: {results['txtai_error']}")
    return out + [""]


def _md_scaling(results: dict, section: dict) -> list[str]:
    out = ["## Search scaling: exact vs HNSW" + _note(section), "",
           f"Synthetic unit vectors (dim {results['dim']}); {results['queries']} queries, each a noisy copy of a stored "
           f"vector (cosine ≈ 0.8); one query per call, k={results['k']} (the candidates qa asks for). HNSW is "
           "`qa.index.make_faiss_index` with the parameters qa uses above `APPROXIMATE_FROM`. Recall@10: share of the "
           "exact top 10 that HNSW returns; recall@1: the exact best found first.", "",
           "| vectors | exact median (ms) | exact p95 (ms) | exact bytes/vector | HNSW median (ms) | HNSW p95 (ms) | "
           "HNSW recall@10 | HNSW recall@1 | HNSW bytes/vector | HNSW build (s) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    rows = list(results["synthetic"]) + ([results["real"]] if results.get("real") else [])
    for r in rows:
        e, h = r["exact"], r.get("hnsw")
        label = fmt(r["n"]) + (" (real: PIAF sentences)" if r.get("what") else "")
        if h:
            hnsw = (f"{fmt(h['median_ms'], 3)} | {fmt(h['p95_ms'], 3)} | {h['recall@10']:.3f} | {h['recall@1']:.3f} | "
                    f"{fmt(h['bytes_per_vector'], 0)} | {fmt(h['build_s'], 1)}")
        else:
            hnsw = (f"not built (estimated {fmt(r.get('hnsw_build_estimate_s'), 0)} s > budget "
                    f"{fmt(results['hnsw_budget_s'], 0)} s) | | | | |")
        out.append(f"| {label} | {fmt(e['median_ms'], 3)} | {fmt(e['p95_ms'], 3)} | {fmt(e['bytes_per_vector'], 0)} | "
                   f"{hnsw} |")
    fit = results["fit"]
    built = [r for r in rows if r.get("hnsw")]
    hnsw_ms = ", ".join(f"{fmt(r['hnsw']['median_ms'], 2)} ms at {fmt(r['n'])}" for r in built) or "not built"
    recalls = ", ".join(f"{r['hnsw']['recall@10']:.3f} at {fmt(r['n'])}{' (real)' if r.get('what') else ''}"
                        for r in built) or "not built"
    out += ["", "### The claims behind `APPROXIMATE_FROM` (comment in `qa/index.py`) against this run", "",
            "| claim | measured here |", "|---|---|",
            f"| exact search costs 0.9-1.6 ms per 10k vectors per query | {fit['ms_per_10k']:.2f} ms per 10k vectors |",
            f"| at 200k sentences the two exact searches cost about as much as embedding the question (25-32 ms) | "
            f"{fit.get('exact_pair_ms_at_approximate_from', float('nan')):.1f} ms for the pair, embedding "
            f"{fit['embed_ms']:.1f} ms |",
            f"| HNSW (M=32, efSearch=128) answers in 0.2-1.6 ms | {hnsw_ms} |",
            f"| recall@10 0.987 on real sentence vectors, 0.52 on 100k random ones | {recalls} |"]
    out += ["", "### `APPROXIMATE_FROM`", "",
            f"Exact search costs **{fit['ms_per_10k']:.2f} ms per 10k vectors** per query here (least-squares line, "
            f"intercept {fit['intercept_ms']:.2f} ms); embedding one question takes **{fit['embed_ms']:.1f} ms** "
            f"(median, same run), so one exact search becomes slower than embedding the question at about "
            f"**{fmt(fit['crossover_vectors'])} vectors**. At `APPROXIMATE_FROM` = {fit['approximate_from']:,} an "
            f"exact search would take about {fit['exact_ms_at_approximate_from']:.1f} ms.", "",
            "qa counts *sentences* against `APPROXIMATE_FROM` (`_faiss_params(len(vectors.sentences))`) and searches "
            "two indexes per question (passages and sentences), so an exact question scans both."]
    if fit.get("sentences_per_passage"):
        out[-1] += (f" With PIAF's {fit['sentences_per_passage']:.2f} sentences per passage, the pair costs about "
                    f"{fit['exact_pair_ms_at_approximate_from']:.1f} ms at the threshold, and equals the embedding "
                    f"time at about {fmt(fit['pair_crossover_sentences'])} sentences.")
    return out + [""]


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure qa (indexing, storage, latency, cold start, quality, search scaling) against "
                    "plain dense retrieval and txtai, measured in the same run; write a markdown report and JSON.",
        epilog="sections:\n" + "\n".join(f"  {line}" for line in __doc__.split("Sections (``--only``):")[1]
                                           .split("Baselines:")[0].strip("\n").splitlines()))
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: scaling at 10k only, fewer queries, no PIAF-size indexing")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTIONS)}); others already in --out-json are kept")
    parser.add_argument("--out-md", default=str(REPO / "BENCHMARKS.md"), metavar="PATH",
                        help="markdown report (default: BENCHMARKS.md at the repository root)")
    parser.add_argument("--out-json", default=str(REPO / "bench.json"), metavar="PATH",
                        help="raw results (default: bench.json at the repository root)")
    parser.add_argument("--hnsw-budget", type=float, default=600, metavar="SECONDS",
                        help="skip an HNSW build whose time, extrapolated from the previous size, exceeds this "
                             "(default 600)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch and FAISS, in this process and every child (sets "
                             "OMP_NUM_THREADS); default: the libraries' own (one per core). On a machine whose cores "
                             "are busy with other jobs, 1 gives stable figures: an OpenMP barrier waits for the "
                             "slowest thread, and a descheduled thread stalls every small query")
    parser.add_argument("--piaf-limit", type=int, default=0, metavar="N",
                        help="index only the first PIAF articles, about N paragraphs (default: all 1,518)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_sections(sections: Sequence[str], quick: bool, hnsw_budget: float,
                 configure: Callable[[Bench], None] | None = None) -> dict[str, dict]:
    """Run the sections in a fixed order (indexing builds what later sections reuse)."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        bench = Bench(quick, Path(tmp))
        if configure:
            configure(bench)
        runners: dict[str, Callable[[], dict]] = {
            "indexing": lambda: section_indexing(bench), "storage": lambda: section_storage(bench),
            "latency": lambda: section_latency(bench), "coldstart": lambda: section_coldstart(bench),
            "quality": lambda: section_quality(bench), "scaling": lambda: section_scaling(bench, hnsw_budget)}
        for name in SECTIONS:
            if name not in sections:
                continue
            log(f"== {name}")
            started = time.perf_counter()
            result = runners[name]()
            results[name] = {"results": result, "seconds": round(time.perf_counter() - started, 1), "quick": quick,
                             "measured_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                             "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, json.loads(args.params or "{}"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:  # before torch or faiss is imported; children inherit it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sections = args.only or list(SECTIONS)
    machine = machine_info()
    log(f"{machine['nproc']} CPUs, {machine['cpu_model']}, load {machine['load_average']}; "
        f"sections: {', '.join(sections)}{' (quick)' if args.quick else ''}")
    results = run_sections(sections, args.quick, args.hnsw_budget,
                           lambda bench: setattr(bench, "piaf_limit", args.piaf_limit))
    out_json, out_md = Path(args.out_json), Path(args.out_md)
    data = {"sections": {}}
    if args.only and out_json.is_file():
        try:
            data = json.loads(out_json.read_text())
        except ValueError:
            data = {"sections": {}}
    data["sections"].update(results)
    data["meta"] = {"date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "machine": machine,
                    "quick": args.quick, "threads": args.threads,
                    "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
                    "total_s": round(time.perf_counter() - _STARTED, 1)}
    out_json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    out_md.write_text(render_markdown(data), encoding="utf-8")
    log(f"wrote {out_md} and {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
