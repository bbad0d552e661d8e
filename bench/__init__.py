"""Benchmarks of qa, measured in one run against baselines measured in the same run.

    .venv/bin/python -m bench                  # everything (the last run's total is in BENCHMARKS.md)
    .venv/bin/python -m bench --quick          # small sizes, fewer queries and runs
    .venv/bin/python -m bench --only scaling   # one or more sections

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
  stores     FAISS exact, FAISS HNSW (qa's and cheaper), FAISS IVF-Flat and Milvus Lite (IVF_FLAT,
             HNSW, FLAT) on 100k and 1M synthetic passages: build, p50/p95, recall@10, RAM and disk
             per vector; Ray Data embedding throughput with 1 and 2 workers vs one process

Baselines: *plain sentence-transformers* is the peer qa is compared against: the same model
folder loaded by `SentenceTransformer(folder, device="cpu")` and nothing else (corpus files split
on blank lines, ``passage: `` / ``query: `` prompts, normalised vectors, FAISS exact inner
product); *txtai* and *fastembed* are peer libraries pointed at the same local model folder
(fastembed at its ONNX export, registered with `TextEmbedding.add_custom_model`) and the same raw
paragraphs. Each system runs at its own default thread count (qa: onnx one per core, torch 1; the torch peers: torch's
default; fastembed: onnxruntime's), recorded with its figures. Everything runs offline
(HF_HUB_OFFLINE=1). Every ratio in the report compares figures measured in the same run, since
this machine is shared and absolute figures drift from run to run.

Results go to BENCHMARKS.md (rendered from the JSON) and bench.json at the repository root;
with ``--only``, the other sections already in the JSON file are kept. Progress goes to stderr.
Indexes are built in temporary folders: embeddings/ is never touched.

The package lives beside `qa/`, outside the `qa` wheel, and runs from the repository root:
`__main__` (the command line), `state` (what the sections share), one module per section or
group of sections (`indexing`, `latency`, `startup`, `quality`, `scaling`, `stores`), `systems` (the peers),
`workers` (measured child processes), `timing`, `results` (bench.json) and `report` (BENCHMARKS.md).
"""
