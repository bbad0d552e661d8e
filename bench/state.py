"""What the sections of one run share: the sizes --quick trims, the temporary folder, the qa
indexes built (indexing's builds are reused by the later sections), qa's engines loaded once,
and the systems loaded in this process for the query sections."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import CORPUS, PIAF, load_seed_questions, log, raw_paragraphs
from .systems import PEERS, FastembedPeer, PlainST, TxtaiSystem
from .timing import Runner, use_torch_threads
from .workers import run_worker


class Bench:
    """The run's shared state; every section takes it and adds what the next ones reuse."""

    def __init__(self, quick: bool, tmp: Path, *, piaf_limit: int = 0, hnsw_budget_s: float = 600):
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
        self.piaf_limit = piaf_limit  # paragraphs of PIAF to write out (whole articles); 0: all
        self.hnsw_budget_s = hnsw_budget_s
        self.questions = load_seed_questions()
        self.indexes: dict[str, Path] = {}  # qa's onnx index per corpus ("corpus", "piaf"), once built
        self.system_errors: dict[str, str] = {}
        self.embed_ms: float | None = None  # median ONNX query-embedding latency, when measured
        self._engines: dict[tuple[str, int], Any] = {}
        self._peer_threads: int | None = None
        self._piaf_dir: Path | None = None
        self._systems: dict[str, Any] | None = None

    def engine(self, backend: str, threads: int | None = None):
        """qa's embedder on `backend` with `threads` (default: qa's), loaded and warmed up once."""
        from qa.engines import load_embedder, resolve_threads

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

    @property
    def piaf_index(self) -> Path | None:
        """qa's index of the PIAF paragraphs, when the indexing section built it."""
        return self.indexes.get("piaf")

    def corpus_index(self) -> Path:
        """The qa index of corpus/, built once in a child (the indexing section's build is reused)."""
        if "corpus" not in self.indexes:
            path = self.tmp / "index-corpus"
            log("building the qa index of corpus/")
            result = run_worker("index-qa", corpus=str(CORPUS), index=str(path), backend="onnx")
            if "error" in result:
                raise RuntimeError(result["error"])
            self.indexes["corpus"] = path
        return self.indexes["corpus"]

    def piaf_corpus(self) -> Path | None:
        """PIAF's paragraphs as one .txt file per article (blank line between paragraphs), so qa
        ingests them through its real path, like a user's folder of articles."""
        if self._piaf_dir is None and (PIAF / "corpus.jsonl").is_file():
            folder = self.tmp / "piaf-txt"
            folder.mkdir()
            for i, (title, paragraphs) in enumerate(self._piaf_articles().items()):
                slug = re.sub(r"[^\w-]+", "_", title)[:60].strip("_")
                (folder / f"{i:04d}_{slug}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
            self._piaf_dir = folder
        return self._piaf_dir

    def _piaf_articles(self) -> dict[str, list[str]]:
        """PIAF's paragraphs by article, whole articles only, up to about `piaf_limit` paragraphs."""
        articles: dict[str, list[str]] = {}
        for line in (PIAF / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if self.piaf_limit and row["doc_id"] not in articles and \
                        sum(map(len, articles.values())) >= self.piaf_limit:
                    continue
                articles.setdefault(row["doc_id"], []).append(row["text"])
        return articles

    def systems(self) -> dict[str, Any]:
        """qa on each engine and the peers over corpus/, loaded in this process for the query
        sections; a peer that cannot load is recorded in `system_errors`, not fatal."""
        if self._systems is None:
            from qa.index import PassageIndex
            from qa.ranking.search import Retriever

            systems: dict[str, Any] = {}
            for name, embedder in (("qa-onnx", self.embedder), ("qa-torch", self.torch_embedder)):
                systems[name] = Retriever(PassageIndex.open(self.corpus_index()), embedder)
                systems[name].warm_up()
            use_torch_threads(self.peer_threads)
            systems.update(self._load_peers(raw_paragraphs(CORPUS)))
            self._systems = systems
        return self._systems

    def _load_peers(self, paragraphs: list[str]) -> dict[str, Any]:
        """Every peer that loads, each with its index of `paragraphs`."""
        factories: dict[str, Callable[[], Any]] = {"plain": lambda: PlainST().build(paragraphs),
                                                   "txtai": lambda: TxtaiSystem(paragraphs),
                                                   "fastembed": lambda: FastembedPeer().build(paragraphs)}
        peers: dict[str, Any] = {}
        for name, factory in factories.items():
            log(f"building the {name} index of corpus/ in process")
            try:
                peers[name] = factory()
            except Exception as exc:  # reported, not fatal: the rest of the benchmark stands
                self.system_errors[name] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                log(f"{name} unavailable: {self.system_errors[name]}")
        return peers

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
