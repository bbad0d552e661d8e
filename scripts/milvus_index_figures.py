"""Figures of a whole-in-Milvus index against the FAISS folder: bytes per passage, open, per question.

1. The shipped corpus with the real model: the same index built as a FAISS folder and in a Milvus
   Lite file; bytes on disk per passage, then `Retriever.open` and the seed questions answered,
   the two interleaved `--rounds` times (the machine is shared: read the ratios).
2. `--synthetic N` passages of generated French-like text with the fake embedder (no model): the
   Milvus build's seconds, the .db's bytes per passage, and the reader's open (records fetched,
   BM25 built) against the FAISS folder's.

Run: .venv/bin/python scripts/milvus_index_figures.py [--rounds 3] [--synthetic 20000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def corpus_figures(tmp: Path, rounds: int) -> dict:
    from qa.engines import load_embedder
    from qa.index import build_index
    from qa.ranking.search import Retriever

    questions = [json.loads(line)["question"] for line in
                 (REPO / "tests" / "data" / "seed_questions.jsonl").read_text().splitlines() if line]
    embedder = load_embedder()
    build_index([REPO / "corpus"], tmp / "faiss", embedder)
    report = build_index([REPO / "corpus"], None, embedder, store=f"milvus:{tmp / 'x.db'}")
    n = report.passages
    opened = {"faiss": [], "milvus": []}
    asked = {"faiss": [], "milvus": []}
    for _ in range(rounds):
        for kind in ("faiss", "milvus"):
            seconds, retriever = timed(lambda: Retriever.open(tmp / "faiss") if kind == "faiss" else
                                       Retriever.open(store=f"milvus:{tmp / 'x.db'}"))
            retriever.warm_up()  # open: the engine and the index read; BM25 is built here, outside the timing
            opened[kind].append(seconds)
            for question in questions:
                asked[kind].append(timed(lambda: retriever.search(question, k=5))[0])
            if kind == "milvus":
                retriever.index.close()
    return {"passages": n, "faiss_bytes_per_passage": size(tmp / "faiss") / n,
            "milvus_bytes_per_passage": size(tmp / "x.db") / n,
            "open_s_median": {k: statistics.median(v) for k, v in opened.items()},
            "question_ms_p50": {k: 1000 * float(np.percentile(v, 50)) for k, v in asked.items()},
            "question_ms_p90": {k: 1000 * float(np.percentile(v, 90)) for k, v in asked.items()},
            "questions": len(asked["faiss"])}


def synthetic_figures(tmp: Path, n: int) -> dict:
    from qa.index import PassageIndex, build_index
    from qa.ranking.search import Retriever
    from qa.stores.location import parse_store
    from tests.fake_embedder import FakeEmbedder

    rng = np.random.default_rng(0)
    words = [f"mot{i}" for i in range(5000)]
    corpus = tmp / "synthetic"
    corpus.mkdir()
    per_file = 200
    for f in range(n // per_file):
        paragraphs = [" ".join(rng.choice(words, 90)) + "." for _ in range(per_file)]
        (corpus / f"doc_{f:05d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    embedder = FakeEmbedder()
    faiss_s, faiss = timed(lambda: build_index([corpus], tmp / "sfaiss", embedder))
    milvus_s, milvus = timed(lambda: build_index([corpus], None, embedder, store=f"milvus:{tmp / 's.db'}"))
    open_faiss, index = timed(lambda: PassageIndex.open(tmp / "sfaiss"))
    lexical_faiss, _ = timed(lambda: Retriever(index, embedder).lexical)
    open_milvus, stored = timed(lambda: PassageIndex.open(None, parse_store(f"milvus:{tmp / 's.db'}")))
    lexical_milvus, _ = timed(lambda: Retriever(stored, embedder).lexical)
    retriever = Retriever(stored, embedder)
    asked = [timed(lambda: retriever.search(" ".join(rng.choice(words, 8)), k=5))[0] for _ in range(30)]
    stored.close()
    return {"passages": milvus.passages, "fake_embedder_dimension": embedder.dimension,
            "build_s": {"faiss": faiss_s, "milvus": milvus_s},
            "bytes_per_passage": {"faiss": size(tmp / "sfaiss") / faiss.passages, "milvus": size(tmp / "s.db") / milvus.passages},
            "open_s": {"faiss": open_faiss, "milvus": open_milvus},
            "bm25_build_s": {"faiss": lexical_faiss, "milvus": lexical_milvus},
            "milvus_question_ms_p50": 1000 * float(np.percentile(asked, 50))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=0, metavar="N")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qa-milvus-figures-"))
    try:
        figures = {"corpus": corpus_figures(tmp, args.rounds)}
        if args.synthetic:
            figures["synthetic"] = synthetic_figures(tmp, args.synthetic)
        print(json.dumps(figures, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
