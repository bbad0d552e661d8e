#!/usr/bin/env python3
"""Token features for the late-interaction study: one forward pass per passage and per question.

    .venv/bin/python scripts/li_features.py [NAME ...]

For each public dataset (and our own questions over corpus/), caches in ~/.cache/qa/li/NAME.npz:
passage vectors (the model's pooling), every passage's content-token states (L2-normalised,
prefix and special tokens excluded) with their character offsets in the passage text, and the
same for the questions. scripts/li_fit.py reads them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

from qa.engines import load_embedder  # noqa: E402
from qa.evaluate import load_dataset  # noqa: E402
from qa.paths import cache_dir  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"


def encode(embedder, texts: list[str], prefix: str, batch_size: int = 32):
    """(vectors [n, d], tokens [T, d] fp32 normalised, owners [T], starts [T], ends [T])."""
    from qa.engines.base import length_batches

    tokenizer = embedder._token_counter()
    model = embedder._engine()
    encodings = tokenizer.encode_batch([prefix + t for t in texts])
    cut = len(prefix.rstrip())
    sequences, keeps = [], []
    for enc in encodings:
        ids = embedder._truncate(enc.ids)
        offsets = enc.offsets[:len(ids) - 1] + [(0, 0)]
        keep = [i for i, (a, b) in enumerate(offsets) if b > a and a >= cut and i < len(ids) - 1]
        sequences.append(ids)
        keeps.append((keep, [(max(offsets[i][0] - len(prefix), 0), offsets[i][1] - len(prefix)) for i in keep]))
    lengths = np.array([len(s) for s in sequences])
    vectors = np.empty((len(texts), embedder.dimension), np.float32)
    per_text: list[np.ndarray | None] = [None] * len(texts)
    for rows in length_batches(lengths, batch_size):
        ids, mask = embedder._pad([sequences[i] for i in rows], int(lengths[rows].max()))
        states = model.token_states(ids, mask)
        vectors[rows] = embedder._pool(states, mask)
        for j, row in enumerate(rows):
            tokens = states[j, keeps[row][0]]
            per_text[row] = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
    owners = np.concatenate([np.full(len(t), i, np.int32) for i, t in enumerate(per_text)])
    spans = np.array([s for _, ss in keeps for s in ss], np.int32).reshape(-1, 2)
    return vectors, np.concatenate(per_text).astype(np.float32), owners, spans[:, 0], spans[:, 1]


def dataset_texts(name: str):
    if name == "seed":
        from qa.ingest import load_corpus

        embedder = load_embedder()
        corpus = load_corpus([str(REPO / "corpus")], count_tokens=lambda t: embedder.count_tokens(
            embedder.spec.passage_prefix + t), max_tokens=embedder.max_tokens)
        import json
        questions = [json.loads(line)["question"] for line in
                     (REPO / "tests/data/seed_questions.jsonl").read_text().splitlines() if line.strip()]
        return corpus.passages, questions
    corpus, queries = load_dataset(DATASETS / name)
    return corpus.passages, [q.question for q in queries]


def passages_and_queries(name: str):
    """(passages, evaluation queries with their gold ids) of a public set, or of our own questions ("seed")."""
    if name == "seed":
        from qa.evaluate import seed_queries

        passages, _ = dataset_texts("seed")

        class _Index:
            pass
        index = _Index()
        index.passages = passages
        return passages, seed_queries(REPO / "tests/data/seed_questions.jsonl", index, REPO / "corpus")
    corpus, queries = load_dataset(DATASETS / name)
    return corpus.passages, queries


def main(names: list[str]) -> None:
    embedder = load_embedder()
    out_dir = cache_dir() / "li"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        started = time.time()
        passages, questions = dataset_texts(name)
        pv, pt, po, ps, pe = encode(embedder, [p.embed_text() for p in passages], embedder.spec.passage_prefix)
        # offsets relative to p.text: the context line (title) comes first in embed_text
        shift = np.array([len(p.embed_text()) - len(p.text) for p in passages], np.int32)[po]
        qv, qt, qo, _, _ = encode(embedder, questions, embedder.spec.query_prefix)
        np.savez(out_dir / f"{name}.npz", pv=pv, pt=pt, po=po, ps=ps - shift, pe=pe - shift,
                 qv=qv, qt=qt, qo=qo, ids=np.array([p.id for p in passages]))
        print(f"{name}: {len(passages)} passages, {len(pt)} tokens ({len(pt) / len(passages):.0f}/passage), "
              f"{len(questions)} questions, {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["seed", "xquad_en-de", "xquad_en-es", "xquad_en-en", "tatoeba_en-fr", "piaf_v1.1_fr-fr"])
