#!/usr/bin/env python3
"""Token codecs smaller than int8 (issue 22, item 2): residual codes, token pruning, both.

    .venv/bin/python scripts/li_features.py          # once: token features, ~/.cache/qa/li/
    .venv/bin/python scripts/token_codec_fit.py [--codecs int8,res2-4096,...] [--sets ...]

The default ranking's rerank (top 30 by passage cosine + BM25, reordered by passage cosine +
6 x MaxSim + BM25; RankingParams), with each codec's decoded tokens in the MaxSim term, against
the same ranking with float32 tokens: nDCG@10 per question, the mean change and a paired
bootstrap 95% interval. PIAF + XQuAD en-de + en-es are the fit sets, XQuAD en-en, Tatoeba and
our own questions held out. Codecs (names):

  fp32, int8            float32; today's int8 with a float32 scale per token (dimension + 4 B)
  sqB                   B bits per dimension, per-dimension bucket cutoffs (quantiles), no centroid
  resB-K                ColBERTv2 / PLAID residual compression (Santhanam et al. 2022): the token's
                        nearest of K k-means centroids (trained on a sample of the set's own tokens,
                        as a full build would), then B bits per dimension of the residual, with
                        per-dimension bucket cutoffs (quantiles) and bucket values (bucket means)
                        learnt from the sample; decoded = centroid + bucket values, re-normalised.
                        resB-auto: K = 2^floor(log2(16 sqrt(tokens))), ColBERTv2's rule. K is capped at
                        one centroid per 8 tokens.
  ...+punct / +stop / +both   tokens dropped before coding: no letter or digit / a whole word in
                        the BM25 stopword lists (qa.ranking.lexical, all four languages) / either.

Bytes per token are the stored codes only (the uint16 sentence number per token is extra for
every codec); bytes per passage = bytes per token x tokens kept per passage.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from qa.paths import cache_dir  # noqa: E402
from qa.ranking.lexical import STOPWORDS, LexicalIndex, guess_language  # noqa: E402
from qa.ranking.params import DEFAULT_RANKING  # noqa: E402
from qa.text import fold  # noqa: E402

FIT = ["piaf_v1.1_fr-fr", "xquad_en-de", "xquad_en-es"]
HELD_OUT = ["xquad_en-en", "tatoeba_en-fr", "seed"]
P = DEFAULT_RANKING
STOP = {fold(w) for ws in STOPWORDS.values() for w in ws}
_ALNUM = re.compile(r"\w", re.UNICODE)


@dataclass
class Set:
    name: str
    tokens: np.ndarray  # fp32 [T, d], normalised
    offsets: np.ndarray  # [n + 1]
    kind: np.ndarray  # per token: 0 word, 1 punctuation, 2 stopword, 3 heading
    qtokens: list[np.ndarray]
    rows: list[np.ndarray]  # top rerank_depth candidates per question, first-stage order
    first: list[np.ndarray]  # their first-stage fused score (passage cosine + BM25)
    rest: list[np.ndarray]  # the candidates after the rerank depth, in order (top 10 only)
    gold: list[set[str]]
    ids: np.ndarray


def ndcg(ranked: list[str], gold: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in gold)
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(len(gold), k)))


def token_kinds(texts: list[str], owners: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    kind = np.zeros(len(owners), np.int8)
    for t, (o, a, b) in enumerate(zip(owners.tolist(), starts.tolist(), ends.tolist())):
        text = texts[o]
        piece = text[a:b]
        if not _ALNUM.search(piece):
            kind[t] = 1
            continue
        before = text[a - 1] if a > 0 else " "
        after = text[b] if b < len(text) else " "
        if not _ALNUM.match(before) and not _ALNUM.match(after) and fold(piece.strip()) in STOP:
            kind[t] = 2
    return kind


def load(name: str) -> Set:
    data = dict(np.load(cache_dir() / "li" / f"{name}.npz"))  # once: each npz access re-reads the file
    pv, qv = data["pv"], data["qv"]
    offsets = np.searchsorted(data["po"], np.arange(len(pv) + 1))
    qoffsets = np.searchsorted(data["qo"], np.arange(len(qv) + 1))
    ids = data["ids"]
    from li_features import passages_and_queries
    passages, queries = passages_and_queries(name)
    texts = [p.embed_text() for p in passages]
    shift = np.array([len(p.embed_text()) - len(p.text) for p in passages], np.int32)[data["po"]]
    kind = token_kinds(texts, data["po"], data["ps"] + shift, data["pe"] + shift)
    kind[data["ps"] < 0] = 3  # the heading line (title), before the passage's text
    lexical_index = LexicalIndex(texts)
    s = Set(name, data["pt"], offsets, kind, [], [], [], [], [], ids)
    for i, query in enumerate(queries):
        if not query.gold_ids:
            continue
        p_all = pv @ qv[i]
        same = guess_language([query.question]) in (None, lexical_index.language)
        weight = P.lexical_weight_same_language if same else 0.0
        lex_all = lexical_index.scores(query.question) if weight else np.zeros(len(pv), np.float32)
        cand = set(np.argsort(-p_all)[:P.candidates].tolist())
        if weight:
            cand |= {int(j) for j in np.argsort(-lex_all, kind="stable")[:P.candidates] if lex_all[j] > 0}
        cand = np.array(sorted(cand))
        lex = lex_all[cand] / lex_all[cand].max() if lex_all[cand].max() > 0 else lex_all[cand]
        first = p_all[cand] + weight * lex
        order = np.argsort(-first, kind="stable")
        s.rows.append(cand[order[:P.rerank_depth]])
        s.first.append(first[order[:P.rerank_depth]])
        s.rest.append(cand[order[P.rerank_depth:P.rerank_depth + 10]])
        s.qtokens.append(data["qt"][qoffsets[i]:qoffsets[i + 1]])
        s.gold.append(set(query.gold_ids))
    return s


# ------------------------------------------------------------------------------------ codecs

def bucket_table(residuals: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension cutoffs [d, 2^b - 1] (quantiles) and bucket values [d, 2^b] (bucket means)."""
    n = 2 ** bits
    cutoffs = np.quantile(residuals, np.arange(1, n) / n, axis=0).T.astype(np.float32)
    buckets = quantise(residuals, cutoffs)
    values = np.zeros((residuals.shape[1], n), np.float32)
    for j in range(n):
        mask = buckets == j
        counts = mask.sum(0)
        sums = np.where(mask, residuals, 0).sum(0)
        values[:, j] = np.where(counts > 0, sums / np.maximum(counts, 1), 0)
    return cutoffs, values


def quantise(x: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    out = np.zeros(x.shape, np.uint8)
    for j in range(cutoffs.shape[1]):
        out += x > cutoffs[:, j]
    return out


_ASSIGN: dict = {}


def centroids_for(s: Set, k: int, sample: np.ndarray, seed: int = 0):
    """(centroids [k, d], nearest centroid of every token), cached per set and k."""
    key = (s.name, k)
    if key not in _ASSIGN:
        import faiss

        started = time.time()
        km = faiss.Kmeans(s.tokens.shape[1], k, niter=8, seed=seed, spherical=True, max_points_per_centroid=32)
        km.train(np.ascontiguousarray(sample))
        index = faiss.IndexFlatIP(s.tokens.shape[1])
        index.add(km.centroids)
        assign = np.empty(len(s.tokens), np.int64)
        for a in range(0, len(s.tokens), 65536):
            assign[a:a + 65536] = index.search(np.ascontiguousarray(s.tokens[a:a + 65536]), 1)[1][:, 0]
        _ASSIGN[key] = (km.centroids.copy(), assign)
        print(f"  {s.name}: {k} centroids on {len(sample)} tokens, {time.time() - started:.0f} s", file=sys.stderr)
    return _ASSIGN[key]


def decode_all(name: str, s: Set, seed: int = 0) -> tuple[np.ndarray, float]:
    """(every token of the set as the codec stores and decodes it, bytes per token)."""
    tokens, d = s.tokens, s.tokens.shape[1]
    rng = np.random.default_rng(seed)
    sample_rows = rng.choice(len(tokens), min(len(tokens), 150_000), replace=False)
    if name == "fp32":
        return tokens, d * 4
    if name == "fp16":
        return tokens.astype(np.float16).astype(np.float32), d * 2
    if name == "int8":
        scale = np.abs(tokens).max(1, keepdims=True) / 127
        return np.round(tokens / scale).astype(np.int8).astype(np.float32) * scale, d + 4
    if name.startswith("sq"):
        bits = int(name[2:])
        cutoffs, values = bucket_table(tokens[sample_rows], bits)
        out = np.empty_like(tokens)
        for a in range(0, len(tokens), 65536):
            b = quantise(tokens[a:a + 65536], cutoffs)
            out[a:a + 65536] = values[np.arange(d), b]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, math.ceil(d * bits / 8)
    if name.startswith("res"):
        bits_s, k_s = name[3:].split("-")
        bits = int(bits_s)
        k = 2 ** int(math.log2(16 * math.sqrt(len(tokens)))) if k_s == "auto" else int(k_s)
        k = min(k, len(tokens) // 8)
        centroids, assign = centroids_for(s, k, tokens[sample_rows], seed)
        residual_sample = tokens[sample_rows] - centroids[assign[sample_rows]]
        cutoffs, values = bucket_table(residual_sample, bits)
        out = np.empty_like(tokens)
        for a in range(0, len(tokens), 65536):
            c = centroids[assign[a:a + 65536]]
            b = quantise(tokens[a:a + 65536] - c, cutoffs)
            out[a:a + 65536] = c + values[np.arange(d), b]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, math.ceil(math.log2(k) / 8) + math.ceil(d * bits / 8)
    raise ValueError(name)


def keep_mask(s: Set, prune: str | None) -> np.ndarray:
    if prune is None:
        return np.ones(len(s.kind), bool)
    drop = {"punct": (1,), "stop": (2,), "both": (1, 2)}[prune]
    keep = ~np.isin(s.kind, drop)
    # a passage keeps at least its first token
    empty = np.flatnonzero(np.add.reduceat(keep.astype(np.int64), s.offsets[:-1][np.diff(s.offsets) > 0]) == 0)
    starts = s.offsets[:-1][np.diff(s.offsets) > 0]
    keep[starts[empty]] = True
    return keep


# ----------------------------------------------------------------------------------- scoring

def maxsims(s: Set, decoded: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    out = []
    for q, rows in zip(s.qtokens, s.rows):
        parts = [np.arange(s.offsets[r], s.offsets[r + 1]) for r in rows]
        parts = [p[keep[p]] for p in parts]
        sizes = np.array([len(p) for p in parts])
        sims = q @ decoded[np.concatenate(parts)].T
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        scores = np.zeros(len(rows), np.float32)
        nonempty = sizes > 0
        scores[nonempty] = np.maximum.reduceat(sims, starts[nonempty], axis=1).mean(0)
        out.append(scores)
    return out


def per_question(s: Set, ms: list[np.ndarray]) -> np.ndarray:
    result = np.empty(len(s.gold))
    for i, (rows, first, rest, m) in enumerate(zip(s.rows, s.first, s.rest, ms)):
        fused = first + P.maxsim_weight * m
        ranked = list(rows[np.argsort(-fused, kind="stable")]) + list(rest)
        result[i] = ndcg([str(s.ids[r]) for r in ranked[:10]], s.gold[i])
    return result


def interval(diff: np.ndarray, rounds: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), (rounds, len(diff)))].mean(1)
    return 100 * np.percentile(means, 2.5), 100 * np.percentile(means, 97.5)


def wins(s: Set) -> dict[str, list[float]]:
    """Per token kind: its share of the stored tokens and of the MaxSim wins (float32 tokens,
    each question token's best token within each question's gold passages)."""
    won = np.zeros(4)
    for q, gold in zip(s.qtokens, s.gold):
        for r in np.flatnonzero(np.isin(s.ids, list(gold))):
            a, b = s.offsets[r], s.offsets[r + 1]
            if b > a:
                np.add.at(won, s.kind[a + np.argmax(q @ s.tokens[a:b].T, axis=1)], 1)
    share = np.bincount(s.kind, minlength=4) / len(s.kind)
    return {k: [round(100 * share[j], 1), round(100 * won[j] / max(won.sum(), 1), 1)]
            for j, k in enumerate(("word", "punct", "stop", "heading"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codecs", default="int8,sq2,res1-4096,res2-1024,res2-4096,res2-auto,fp32+punct,"
                        "fp32+stop,fp32+both,res2-4096+punct,res2-4096+both")
    parser.add_argument("--sets", default=",".join(FIT + HELD_OUT))
    parser.add_argument("--out", type=Path, default=Path("/tmp/token_codec_fit.json"))
    args = parser.parse_args()
    report: dict = {}
    for name in args.sets.split(","):
        started = time.time()
        s = load(name)
        per_passage = len(s.tokens) / (len(s.offsets) - 1)
        print(f"{name}: {len(s.gold)} questions, {len(s.offsets) - 1} passages, {per_passage:.1f} tokens/passage, "
              f"wins {wins(s)}, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        base = per_question(s, maxsims(s, s.tokens, np.ones(len(s.tokens), bool)))
        report[name] = {"fp32": round(100 * base.mean(), 2), "tokens_per_passage": round(per_passage, 1),
                        "wins": wins(s)}
        cache: dict[str, tuple[np.ndarray, float]] = {}
        for spec in args.codecs.split(","):
            codec_name, _, prune = spec.partition("+")
            if codec_name not in cache:
                cache.clear()
                cache[codec_name] = decode_all(codec_name, s)
            decoded, size = cache[codec_name]
            keep = keep_mask(s, prune or None)
            new = per_question(s, maxsims(s, decoded, keep))
            lo, hi = interval(new - base)
            kept = keep.sum() / (len(s.offsets) - 1)
            row = {"bytes_per_token": size, "tokens_per_passage": round(float(kept), 1),
                   "bytes_per_passage": round(size * float(kept)), "ndcg": round(100 * new.mean(), 2),
                   "diff": round(100 * (new - base).mean(), 2), "ci": [round(lo, 2), round(hi, 2)]}
            report[name][spec] = row
            print(f"{name:16s} {spec:18s} {row}", flush=True)
        del cache
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
