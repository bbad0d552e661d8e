#!/usr/bin/env python3
"""The late-interaction study: MaxSim rerank, token compression, fusion weights, fit and held out.

    .venv/bin/python scripts/li_features.py          # once: token features, ~/.cache/qa/li/
    .venv/bin/python scripts/eval_all.py             # once: today's indexes (sentence vectors)
    .venv/bin/python scripts/li_fit.py [--codecs fp32,fp16,pq64,...]

Fits the rerank depth N and the fusion weights on PIAF + XQuAD en-de + en-es (the sum of their
nDCG@10), reports XQuAD en-en, Tatoeba and our own questions as held out, each against today's
ranking (passage + sentence vectors + BM25) with a paired bootstrap interval per question.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

from qa.evaluate import dataset_index_dir  # noqa: E402
from qa.ranking.lexical import LexicalIndex, guess_language  # noqa: E402
from qa.paths import cache_dir  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
FIT = ["piaf_v1.1_fr-fr", "xquad_en-de", "xquad_en-es"]
HELD_OUT = ["xquad_en-en", "tatoeba_en-fr", "seed"]
CANDIDATES = 100
DEPTH = 50  # rerank features are computed for this many first-stage candidates
LEXICAL_WEIGHT = 0.05


@dataclass
class Features:
    """Per question: first-stage candidates (rows) and their feature columns."""

    gold: list[set[str]]
    ids: np.ndarray
    rows: list[np.ndarray]  # top DEPTH by first stage (passage cosine + BM25)
    passage: list[np.ndarray]
    sentence: list[np.ndarray]  # best separately embedded sentence cosine
    lexical: list[np.ndarray]  # BM25 / max over the candidates
    maxsim: dict[str, list[np.ndarray]]
    weight: list[float]  # the default mode's BM25 weight for the question
    today: list[list[str]]  # today's default ranking, top 10


def ndcg(ranked: list[str], gold: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in gold)
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(len(gold), k)))


def codec(name: str, tokens: np.ndarray, seed: int = 0):
    """(decode-able stored form, bytes per token) for a compression scheme."""
    import faiss

    if name == "fp32":
        return tokens, tokens.shape[1] * 4
    if name == "fp16":
        return tokens.astype(np.float16).astype(np.float32), tokens.shape[1] * 2
    if name == "int8":
        scale = np.abs(tokens).max(1, keepdims=True) / 127
        q = np.round(tokens / scale).astype(np.int8)
        return (q.astype(np.float32) * scale), tokens.shape[1] + 4
    if name.startswith("pq"):
        m = int(name[2:])
        rng = np.random.default_rng(seed)
        sample = tokens[rng.choice(len(tokens), min(len(tokens), 100_000), replace=False)]
        pq = faiss.ProductQuantizer(tokens.shape[1], m, 8)
        pq.train(np.ascontiguousarray(sample))
        codes = pq.compute_codes(np.ascontiguousarray(tokens))
        return pq.decode(codes), m
    if name.startswith("pca"):  # pcaDDD: a PCA projection to DDD dimensions, int8 per token with its scale
        dims = int(name[3:])
        rng = np.random.default_rng(seed)
        sample = tokens[rng.choice(len(tokens), min(len(tokens), 100_000), replace=False)]
        mean = sample.mean(0)
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        basis = vt[:dims]
        projected = (tokens - mean) @ basis.T
        scale = np.abs(projected).max(1, keepdims=True) / 127
        q = np.round(projected / scale).astype(np.int8)
        return (q.astype(np.float32) * scale) @ basis + mean, dims + 4
    if name.startswith("opq"):  # a learnt rotation first (Ge et al. 2013), then PQ; inner products unchanged
        m = int(name[3:])
        rng = np.random.default_rng(seed)
        sample = np.ascontiguousarray(tokens[rng.choice(len(tokens), min(len(tokens), 50_000), replace=False)])
        opq = faiss.OPQMatrix(tokens.shape[1], m)
        opq.niter = 8
        opq.train(sample)
        pq = faiss.ProductQuantizer(tokens.shape[1], m, 8)
        pq.train(opq.apply(sample))
        rotated = pq.decode(pq.compute_codes(opq.apply(np.ascontiguousarray(tokens))))
        return opq.reverse_transform(rotated), m
    if name.startswith("rq"):  # residual against k-means centroids, then PQ of the residual
        m = int(name[2:])
        rng = np.random.default_rng(seed)
        sample = tokens[rng.choice(len(tokens), min(len(tokens), 100_000), replace=False)]
        km = faiss.Kmeans(tokens.shape[1], 4096 if len(sample) > 4096 * 39 else 256, niter=10, seed=seed)
        km.train(np.ascontiguousarray(sample))
        _, assign = km.index.search(np.ascontiguousarray(tokens), 1)
        residual = tokens - km.centroids[assign[:, 0]]
        pq = faiss.ProductQuantizer(tokens.shape[1], m, 8)
        pq.train(np.ascontiguousarray(residual[rng.choice(len(tokens), min(len(tokens), 100_000), replace=False)]))
        decoded = km.centroids[assign[:, 0]] + pq.decode(pq.compute_codes(np.ascontiguousarray(residual)))
        return decoded, m + 2
    raise ValueError(name)


def maxsim(q: np.ndarray, tokens: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean over question tokens of the best cosine among each candidate's tokens."""
    parts = [np.arange(offsets[r], offsets[r + 1]) for r in rows]
    sizes = np.array([len(p) for p in parts])
    sims = q @ tokens[np.concatenate(parts)].T  # [nq, sum]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.maximum.reduceat(sims, starts, axis=1).mean(0)


def load(name: str, codecs: list[str]) -> Features:
    data = np.load(cache_dir() / "li" / f"{name}.npz")
    pv, qv = data["pv"], data["qv"]
    offsets = np.searchsorted(data["po"], np.arange(len(pv) + 1))
    qoffsets = np.searchsorted(data["qo"], np.arange(len(qv) + 1))
    ids = data["ids"]
    from li_features import passages_and_queries
    passages, queries = passages_and_queries(name)
    texts = [p.embed_text() for p in passages]
    sentence_vectors = None if name == "seed" else _today_sentences(name, len(pv))
    lexical_index = LexicalIndex(texts)
    keep = [i for i, q in enumerate(queries) if q.gold_ids]
    tokens = {c: codec(c, data["pt"]) for c in codecs}
    for c, (_, size) in tokens.items():
        print(f"  {name} {c}: {size} bytes/token, {size * len(data['pt']) / len(pv) / 1024:.1f} KiB/passage",
              file=sys.stderr)
    f = Features([], ids, [], [], [], [], {c: [] for c in codecs}, [], [])
    for i in keep:
        query = queries[i]
        qvec = qv[i]
        qtok = data["qt"][qoffsets[i]:qoffsets[i + 1]]
        p_all = pv @ qvec
        same = guess_language([query.question]) in (None, lexical_index.language)
        weight = LEXICAL_WEIGHT if same else 0.0
        lex_all = lexical_index.scores(query.question) if weight else np.zeros(len(pv), np.float32)
        cand = set(np.argsort(-p_all)[:CANDIDATES].tolist())
        if weight:
            cand |= {int(j) for j in np.argsort(-lex_all, kind="stable")[:CANDIDATES] if lex_all[j] > 0}
        cand = np.array(sorted(cand))
        lex = lex_all[cand] / lex_all[cand].max() if lex_all[cand].max() > 0 else lex_all[cand]
        if sentence_vectors is not None:
            svec, srows = sentence_vectors
            s_all = np.maximum.reduceat(svec @ qvec, srows[:-1])
            s_all = np.where(np.diff(srows) > 0, s_all, -1)
            today_score = 0.5 * p_all[cand] + 0.5 * s_all[cand] + weight * lex
            f.today.append([str(ids[j]) for j in cand[np.argsort(-today_score, kind="stable")[:10]]])
        first = p_all[cand] + weight * lex
        order = np.argsort(-first, kind="stable")[:DEPTH]
        rows = cand[order]
        f.gold.append(set(query.gold_ids))
        f.rows.append(rows)
        f.passage.append(p_all[rows])
        f.lexical.append(lex[order])
        f.sentence.append(s_all[rows] if sentence_vectors is not None else p_all[rows])
        f.weight.append(weight)
        for c, (decoded, _) in tokens.items():
            f.maxsim[c].append(maxsim(qtok, decoded, offsets, rows))
    return f


def _today_sentences(name: str, n: int):
    """Today's sentence vectors and per-passage sentence row offsets, from scripts/eval_all.py's cache."""
    from qa.engines import load_embedder
    from qa.index import live_generation

    path = dataset_index_dir(DATASETS / name, load_embedder().spec.fingerprint)
    generation = live_generation(path)
    vectors = np.load(generation / "sentences.npy")
    spans = np.load(generation / "sentence_spans.npy")
    return vectors, np.searchsorted(spans[:, 0], np.arange(n + 1))


def rank(f: Features, i: int, depth: int, w_dense: float, w_max: float, w_sent: float, codec_name: str,
         lexical_scale: float = 1.0) -> list[str]:
    """Top 10: the first `depth` candidates reordered by the fused score, then the rest in order."""
    d = min(depth, len(f.rows[i]))
    fused = (w_dense * f.passage[i][:d] + w_max * f.maxsim[codec_name][i][:d] + w_sent * f.sentence[i][:d]
             + lexical_scale * f.weight[i] * f.lexical[i][:d])
    order = np.argsort(-fused, kind="stable")
    rows = list(f.rows[i][:d][order]) + list(f.rows[i][d:])
    return [str(f.ids[r]) for r in rows[:10]]


def per_question(f: Features, **params) -> np.ndarray:
    return np.array([ndcg(rank(f, i, **params), f.gold[i]) for i in range(len(f.gold))])


def today(f: Features) -> np.ndarray:
    return np.array([ndcg(r, g) for r, g in zip(f.today, f.gold)])


def interval(diff: np.ndarray, rounds: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), (rounds, len(diff)))].mean(1)
    return 100 * np.percentile(means, 2.5), 100 * np.percentile(means, 97.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codecs", default="fp32,fp16,int8,pq32,pq48,pq64,pq96")
    parser.add_argument("--fit-codec", default="fp32")
    parser.add_argument("--out", type=Path, default=Path("/tmp/li_fit.json"))
    parser.add_argument("--sets", default=",".join(FIT + HELD_OUT))
    args = parser.parse_args()
    codecs = args.codecs.split(",")
    features = {}
    for name in args.sets.split(","):
        features[name] = load(name, codecs)
        print(f"loaded {name}: {len(features[name].gold)} questions", file=sys.stderr)
    grid = []
    for depth, w_max, w_sent, lexical_scale in itertools.product(
            (20, 30, 50), (0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0), (0, 0.25, 0.5), (1.0, 2.0, 3.0)):
        params = dict(depth=depth, w_dense=1.0, w_max=w_max, w_sent=w_sent, codec_name=args.fit_codec,
                      lexical_scale=lexical_scale)
        fit = [100 * per_question(features[n], **params).mean() for n in FIT]
        grid.append((sum(fit), params, fit))
    grid.sort(key=lambda g: -g[0])
    report = {"grid_top": [(round(s, 2), p, [round(x, 2) for x in fit]) for s, p, fit in grid[:15]]}
    for s, p, fit in grid[:15]:
        print(f"{s:.2f} {p} {[round(x, 2) for x in fit]}")
    best_with, best_without = (next(g for g in grid if (g[1]["w_sent"] > 0) == flag) for flag in (True, False))
    for label, (_, params, _) in (("with sentences", best_with), ("without sentences", best_without)):
        print(f"\n== {label}: {params}")
        report[label] = {"params": params}
        for name in features:
            f = features[name]
            for c in codecs:
                new = per_question(f, **{**params, "codec_name": c})
                row = {"ndcg": round(100 * new.mean(), 2)}
                if f.today:
                    base = today(f)
                    lo, hi = interval(new - base)
                    row.update(today=round(100 * base.mean(), 2), diff=round(100 * (new - base).mean(), 2),
                               ci=[round(lo, 2), round(hi, 2)])
                report[label][f"{name} {c}"] = row
                print(f"{name:18s} {c:5s} {row}")
    args.out.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
