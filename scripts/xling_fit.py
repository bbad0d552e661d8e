#!/usr/bin/env python3
"""Cross-lingual mechanisms, measured: fitted on XQuAD en-de + en-es, the other sets held out.

    .venv/bin/python scripts/xling_fit.py fit  [--out FILE]     # every candidate on the fit sets
    .venv/bin/python scripts/xling_fit.py held [--variant NAME ...] [--out FILE]

Each candidate is today's default ranking (qa.search.Retriever) with one change, written here as
a subclass so that a mechanism that loses never reaches the library:

* prf: pseudo-relevance feedback in vector space (Rocchio): the question vector plus beta x the
  mean of the top m passage vectors of a first ranking (the reranked one), normalised, searched
  and ranked again (MaxSim still uses the question's own tokens);
* match: the model's token alignments as lexical evidence: in the rerank, + w x the share of
  question tokens whose best cosine among the passage's tokens is at least tau;
* names: a question in another language than the corpus gets BM25 on its numbers *and* its
  capitalised words (names, acronyms: "KCNA", "Pompeo"), not on its numbers alone;
* depth / maxsim: rerank depth and MaxSim weight re-fitted for questions in another language.

The mechanisms that act on "another language" only leave same-language questions (PIAF, XQuAD
en-en) unchanged by construction; those sets are still run, to show it. Question vectors and
tokens are computed once per set and reused by every candidate. Per question nDCG@10, paired
bootstrap 95 % intervals against today's default (scripts/paired.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from paired import describe, paired_interval, per_question_ndcg  # noqa: E402

FIT = ["xquad_en-de", "xquad_en-es"]
HELD_OUT = ["piaf_v1.1_fr-fr", "xquad_en-en", "tatoeba_en-fr", "seed"]
DATASETS = REPO.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Variant:
    name: str = "today"
    prf_depth: int = 0
    prf_weight: float = 0.0
    prf_scope: str = "other"  # other: questions in another language than the corpus; all
    match_weight: float = 0.0
    match_cosine: float = 0.9
    names_weight: float = 0.0  # 0: numbers only, at the shipped numbers weight
    other_depth: int | None = None
    other_maxsim: float | None = None


class CachedQueries:
    """The embedder, with each batch of questions embedded once."""

    def __init__(self, embedder):
        self.inner, self.cache = embedder, {}

    def embed_queries_with_tokens(self, texts, batch_size: int = 32):
        key = tuple(texts)
        if key not in self.cache:
            self.cache[key] = self.inner.embed_queries_with_tokens(list(texts), batch_size)
        return self.cache[key]

    def __getattr__(self, name):
        return getattr(self.inner, name)


NAME = re.compile(r"\b(?:[A-Z][\w'’-]*|\w*\d\w*)")


def make_retriever(index, embedder, variant: Variant):
    from qa.ranking.lexical import guess_language
    from qa.text import words
    from qa.ranking.params import DEFAULT_RANKING
    from qa.ranking.search import Retriever
    from qa.index.tokens import maxsim

    class Experimental(Retriever):
        def _other(self, question: str) -> bool:
            language = guess_language([question])
            return language is not None and language != self.lexical.language

        def _lexical_plan(self, question, mode):
            if mode == "default" and variant.names_weight > 0 and self._other(question):
                found = [m.group() for i, m in enumerate(NAME.finditer(question))
                         if any(c.isdigit() for c in m.group()) or m.start() > 0]
                terms = " ".join(w for w in words(" ".join(found)))
                return (variant.names_weight if terms else 0.0), terms
            return super()._lexical_plan(question, mode)

        def _rank(self, question, query, k, mode, subset, restriction=None):
            other = self._other(question)
            self._current_other = other
            hits, confidence = super()._rank(question, query, k, mode, subset, restriction)
            prf = variant.prf_depth > 0 and (variant.prf_scope == "all" or other)
            if not prf or query is None or not hits:
                return hits, confidence
            qvec, qtokens = query
            if getattr(self, "_position", None) is None:
                self._position = {p.id: i for i, p in enumerate(self.index.passages)}
            position = self._position
            top = [position[h.passage_id] for h in hits[: variant.prf_depth]]
            moved = qvec + variant.prf_weight * self.index.vectors[top].mean(0)
            moved = (moved / np.linalg.norm(moved)).astype(np.float32)
            return super()._rank(question, (moved, qtokens), k, mode, subset, restriction)

        def _rerank(self, rows, order, fused, qtokens, k):
            other = getattr(self, "_current_other", False)
            depth_param = variant.other_depth if other and variant.other_depth is not None else self.params.rerank_depth
            weight = variant.other_maxsim if other and variant.other_maxsim is not None else self.params.maxsim_weight
            depth = min(len(order), max(depth_param, 2 * k)) if depth_param else 0
            if depth == 0 or len(qtokens) == 0 or weight == 0:
                return order, fused, {}
            top = order[:depth]
            similarities, counts = self.index.tokens.similarities(qtokens, rows[top])
            fused = fused.copy()
            fused[top] += weight * maxsim(similarities, counts)
            if variant.match_weight > 0:
                nonempty = counts > 0
                share = np.zeros(len(counts), np.float32)
                if similarities.size and nonempty.any():
                    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
                    best = np.maximum.reduceat(similarities, starts, axis=1)
                    share[nonempty] = (best >= variant.match_cosine).mean(0)
                fused[top] += variant.match_weight * share
            ends = np.cumsum(counts)
            alignments = {int(row): similarities[:, end - count:end] for row, end, count in zip(rows[top], ends, counts)}
            return np.concatenate([top[np.argsort(-fused[top], kind="stable")], order[depth:]]), fused, alignments

    return Experimental(index, embedder, DEFAULT_RANKING)


def open_set(name: str, embedder):
    """(index, questions, gold) for a public set (its cached evaluation index) or our own."""
    from qa.evaluate import load_dataset, open_dataset, seed_queries
    from qa.index import PassageIndex, build_index

    if name == "seed":
        where = Path("/tmp/qa-xling-seed")
        build_index([REPO / "corpus"], where, embedder.inner)
        index = PassageIndex.open(where)
        queries = [q for q in seed_queries(REPO / "tests/data/seed_questions.jsonl", index, REPO / "corpus")
                   if q.gold_ids]
    else:
        retriever, queries = open_dataset(DATASETS / name, progress=False)
        index = retriever.index
    return index, [q.question for q in queries], [q.gold_ids for q in queries], [q.lang for q in queries]


def run(index, embedder, variant: Variant, questions, gold) -> np.ndarray:
    retriever = make_retriever(index, embedder, variant)
    ranked = []
    for start in range(0, len(questions), 64):
        ranked += retriever.rank_ids(questions[start:start + 64], 10)
    return per_question_ndcg(ranked, gold)


def candidates() -> list[Variant]:
    """The grid (pruned for time on 2 shared cores: a first pass over PRF with m 1-3, beta 0.2-1
    moved en-de by -0.02 to +0.05, so PRF keeps two points)."""
    out = [Variant()]
    for depth, weight in ((3, 0.5), (5, 1.0)):
        out.append(Variant(f"prf m={depth} b={weight}", prf_depth=depth, prf_weight=weight))
    for tau, weight in ((0.85, 1.0), (0.9, 1.0), (0.9, 2.0)):
        out.append(Variant(f"match tau={tau} w={weight}", match_weight=weight, match_cosine=tau))
    for weight in (0.05, 0.15, 0.3):
        out.append(Variant(f"names w={weight}", names_weight=weight))
    for depth, weight in ((50, 6.0), (100, 6.0), (30, 8.0), (30, 4.0), (50, 8.0)):
        out.append(Variant(f"other depth={depth} maxsim={weight}", other_depth=depth, other_maxsim=weight))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["fit", "held"])
    parser.add_argument("--variant", nargs="*", help="held: variant names (from the fit output) to run")
    parser.add_argument("--sets", nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from qa.engines import load_embedder

    embedder = CachedQueries(load_embedder(backend="onnx", precision="fp32"))
    pool = {v.name: v for v in candidates()}
    if args.stage == "fit":
        variants, sets = list(pool.values()), args.sets or FIT
    else:
        variants = [Variant()] + [pool[n] if n in pool else eval(n, {"Variant": Variant}) for n in args.variant or []]
        sets = args.sets or HELD_OUT + FIT
    table, pooled = {}, {v.name: ([], []) for v in variants[1:]}
    for name in sets:
        started = time.time()
        index, questions, gold, _ = open_set(name, embedder)
        base = run(index, embedder, variants[0], questions, gold)
        table[name] = {"today": round(float(base.mean()), 2), "questions": len(questions)}
        for variant in variants[1:]:
            scores = run(index, embedder, variant, questions, gold)
            table[name][variant.name] = [round(x, 3) for x in paired_interval(scores, base)] + [
                int((scores > base + 1e-9).sum()), int((scores < base - 1e-9).sum())]
            print(f"{name:16} {variant.name:32} {scores.mean():6.2f} {describe(scores, base)}", flush=True)
            if name in FIT:
                pooled[variant.name][0].append(scores)
                pooled[variant.name][1].append(base)
        print(f"{name}: today {base.mean():.2f} ({time.time() - started:.0f} s)", flush=True)
    print("\nthe fit sets' questions pooled (mean difference per question, 95 % interval):")
    for name, (after, before) in pooled.items():
        if after:
            print(f"  {name:32} {describe(np.concatenate(after), np.concatenate(before))}")
    if args.stage == "fit":
        print("\nsum over the fit sets (mean difference):")
        totals = sorted(((sum(table[s][v.name][0] for s in sets), v.name) for v in variants[1:]), reverse=True)
        for total, name in totals[:15]:
            print(f"  {total:+.3f}  {name}")
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
