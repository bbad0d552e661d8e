#!/usr/bin/env python3
"""Calibrate the weak-answer signal (qa.search.WEAK_MARGIN) on answerable and unanswerable questions.

    .venv/bin/python scripts/calibrate_weak.py [--questions N]

Answerable: each set's own questions over its own corpus (PIAF, XQuAD en-de, our questions over
corpus/). Unanswerable: one set's questions over another set's corpus, and our unanswerable
questions. Prints, for candidate margins, the share of each flagged weak; the chosen margin
should flag few answerable questions and many unanswerable ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.evaluate import open_dataset, seed_queries  # noqa: E402
from qa.index import PassageIndex, build_index  # noqa: E402
from qa.search import WEAK_MARGIN, Retriever  # noqa: E402


def confidences(retriever, questions) -> np.ndarray:
    out: list[float] = []
    for i in range(0, len(questions), 64):
        out += [a.confidence for a in retriever.ask_many([q.question for q in questions[i:i + 64]], 10)]
    return np.asarray(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--questions", type=int, default=600, help="answerable questions per set")
    args = parser.parse_args()
    piaf_r, piaf = open_dataset(args.datasets / "piaf_v1.1_fr-fr", progress=False)
    xquad_r, xquad = open_dataset(args.datasets / "xquad_en-de", progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        build_index([REPO / "corpus"], tmp, piaf_r.embedder)
        seed_r = Retriever(PassageIndex.open(tmp), piaf_r.embedder)
        seed = seed_queries(REPO / "tests/data/seed_questions.jsonl", seed_r.index, REPO / "corpus")
        n, m = args.questions, args.questions // 2
        answerable = {"PIAF": confidences(piaf_r, piaf[:n]), "XQuAD en-de": confidences(xquad_r, xquad[:n]),
                      "ours": confidences(seed_r, [q for q in seed if q.gold_ids])}
        unanswerable = {"XQuAD q. on PIAF": confidences(piaf_r, xquad[:m]),
                        "PIAF q. on XQuAD": confidences(xquad_r, piaf[:m]),
                        "ours (unanswerable)": confidences(seed_r, [q for q in seed if not q.gold_ids]),
                        "PIAF q. on corpus/": confidences(seed_r, piaf[:m]),
                        "XQuAD q. on corpus/": confidences(seed_r, xquad[:m])}
    names = list(answerable) + list(unanswerable)
    print("| margin | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for t in (0.025, 0.03, WEAK_MARGIN, 0.035, 0.04):
        cells = [f"{100 * np.mean(v < t):.1f}" for v in (*answerable.values(), *unanswerable.values())]
        mark = " (chosen)" if t == WEAK_MARGIN else ""
        print(f"| {t}{mark} | " + " | ".join(cells) + " |")
    print("\n% of questions flagged weak; the first three columns are answerable, the rest are not.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
