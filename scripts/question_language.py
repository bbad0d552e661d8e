#!/usr/bin/env python3
"""The question-language step of the default ranking, measured on the public sets:

1. how often `guess_language` tells a question's language right, wrong or not at all (each
   set's queries carry their language);
2. the weight of BM25 over the numbers alone of a question in another language than the corpus
   (`RankingParams.numbers_weight_other_language`), paired per question against 0.

    .venv/bin/python scripts/question_language.py [--weights 0.05 0.15 0.3]

Fit on XQuAD en-de + en-es; Tatoeba is reported as held out (PIAF's questions are all in the
corpus's language, so the weight does not touch it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

from qa.evaluate import open_dataset  # noqa: E402
from qa.ranking.lexical import guess_language  # noqa: E402
from qa.ranking import RankingParams  # noqa: E402
from qa.ranking.search import Retriever  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
LANGUAGES = {"fr": "french", "en": "english", "de": "german", "es": "spanish"}
WEIGHT_SETS = ("xquad_en-de", "xquad_en-es", "tatoeba_en-fr")


def ndcg(ranked: list[str], gold: set[str], k: int = 10) -> float:
    gain = sum(1 / math.log2(i + 2) for i, p in enumerate(ranked[:k]) if p in gold)
    return gain / sum(1 / math.log2(i + 2) for i in range(min(len(gold), k)))


def guess_table() -> None:
    print("| set | questions | right | unclear | wrong |\n|---|---|---|---|---|")
    for folder in sorted(p for p in DATASETS.iterdir() if (p / "queries.jsonl").is_file()):
        rows = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line]
        outcome = Counter()
        for row in rows:
            guess = guess_language([row["question"]])
            outcome["unclear" if guess is None else "right" if guess == LANGUAGES[row.get("lang", "en")] else "wrong"] += 1
        print(f"| {folder.name} | {len(rows)} | {outcome['right']} | {outcome['unclear']} | {outcome['wrong']} |")


def weight_table(weights: list[float]) -> None:
    print("\n| set | numeric questions | weight 0 | " + " | ".join(f"weight {w:g}" for w in weights) + " |")
    print("|---|---|---|" + "---|" * len(weights))
    for name in WEIGHT_SETS:
        base, queries = open_dataset(DATASETS / name, progress=False)
        questions = [q.question for q in queries]

        def scores(weight: float) -> np.ndarray:
            retriever = Retriever(base.index, base.embedder, RankingParams(numbers_weight_other_language=weight))
            retriever._lexical = base.lexical  # one BM25 index for every weight
            return np.array([ndcg(r, set(q.gold_ids)) for r, q in zip(retriever.rank_ids(questions, 10), queries)])

        zero = scores(0.0)
        cells = []
        for weight in weights:
            delta = scores(weight) - zero
            cells.append(f"{100 * (zero.mean() + delta.mean()):.2f} ({100 * delta.mean():+.3f}; "
                         f"{int((delta > 1e-9).sum())} better, {int((delta < -1e-9).sum())} worse)")
        numeric = sum(any(c.isdigit() for c in q) for q in questions)
        print(f"| {name} | {numeric} | {100 * zero.mean():.2f} | " + " | ".join(cells) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.05, 0.15, 0.3])
    args = parser.parse_args()
    guess_table()
    weight_table(args.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
