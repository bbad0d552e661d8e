"""What every section shares: the repository's paths, the run's constants, progress on stderr,
timing statistics, the plain baselines' paragraph split, and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
SEED_QUESTIONS = REPO / "tests" / "data" / "seed_questions.jsonl"
PIAF = REPO.parent / "shared" / "datasets" / "piaf_v1.1_fr-fr"
COLD_QUESTION = "where did Kim meet Putin?"

# In the order they run: indexing builds what the later sections reuse.
SECTIONS = ("indexing", "storage", "latency", "load", "threads", "coldstart", "repl", "quality", "scaling", "stores")
K_EVAL = 10  # MRR@10; hit@1 and hit@3 come from the same ranking
K_PRODUCT = 100  # candidates qa.ranking.search asks FAISS for (CANDIDATES), used for scaling latency
DIM = 384

_STARTED = time.perf_counter()
_VERSIONED = ("onnxruntime", "torch", "faiss", "sentence_transformers", "transformers", "numpy", "bm25s", "txtai",
              "fastembed")
_DISTRIBUTIONS = {"faiss": "faiss-cpu", "sentence_transformers": "sentence-transformers"}


def elapsed() -> float:
    """Seconds since the benchmark process started (this module is imported first)."""
    return time.perf_counter() - _STARTED


def log(message: str) -> None:
    """Progress on stderr, stamped with the time since start, so a long run shows where it is."""
    print(f"[bench {elapsed():7.1f}s] {message}", file=sys.stderr, flush=True)


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and mean in milliseconds: the median is the typical wait,
    p95 what a user notices on a bad question (or a load spike of the shared machine)."""
    ms = np.asarray(seconds, float) * 1000
    return {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": int(len(ms))}


def split_paragraphs(text: str) -> list[str]:
    """Blank-line paragraphs, nothing else: the plain baselines' whole ingestion."""
    return [p.strip() for p in re.split(r"\n[ \t\r\f\v]*\n", text) if p.strip()]


def _text_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())


def raw_paragraphs(folder: Path) -> list[str]:
    """The blank-line paragraphs of every .txt/.md file under `folder`, in path order."""
    paragraphs: list[str] = []
    for path in _text_files(folder):
        paragraphs.extend(split_paragraphs(path.read_text(encoding="utf-8", errors="replace")))
    return paragraphs


def corpus_chars(folder: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8", errors="replace")) for p in _text_files(folder))


def load_seed_questions() -> list[dict]:
    return [json.loads(line) for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def spread(items: Sequence, n: int) -> list:
    """`n` items evenly spaced over the list: the seed file alternates EN/FR and ends with the
    unanswerable questions, so a spread keeps the mix instead of taking the first n."""
    if n >= len(items):
        return list(items)
    return [items[int(i * len(items) / n)] for i in range(n)]


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
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "git": _git_state(), "memory_gib": round(mem_kb / 2**20, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "platform": platform.platform(), "versions": {name: _version(name) for name in _VERSIONED}}


def _version(name: str) -> str | None:
    try:
        return version(_DISTRIBUTIONS.get(name, name))
    except PackageNotFoundError:  # a peer library left uninstalled
        return None


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
