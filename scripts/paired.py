"""Per-question scores and paired bootstrap intervals, shared by the measurement scripts.

    from paired import per_question_ndcg, paired_interval
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def per_question_ndcg(rankings: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], k: int = 10) -> np.ndarray:
    """nDCG@k of each question, as qa.evaluate.score computes it (x100)."""
    out = np.zeros(len(rankings))
    for i, (ranked, ids) in enumerate(zip(rankings, gold)):
        ids = set(ids)
        dcg = sum(1 / math.log2(r + 2) for r, pid in enumerate(list(ranked)[:k]) if pid in ids)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(len(ids), k)))
        out[i] = 100 * dcg / ideal
    return out


def paired_interval(after: np.ndarray, before: np.ndarray, resamples: int = 4000, seed: int = 0
                    ) -> tuple[float, float, float]:
    """(mean difference, 2.5 %, 97.5 %) of after - before, resampling questions."""
    diff = np.asarray(after, float) - np.asarray(before, float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def describe(after: np.ndarray, before: np.ndarray) -> str:
    mean, low, high = paired_interval(after, before)
    better, worse = int((after > before + 1e-9).sum()), int((after < before - 1e-9).sum())
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}] ({better} better, {worse} worse)"
