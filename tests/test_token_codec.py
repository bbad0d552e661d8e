"""The stored token codec's loss on a small public sample, with the real model's tokens.

Questions of XQuAD en-de (English) over its German paragraphs, ranked by MaxSim alone (the
term the codec feeds): the int8 codes qa stores must rank as the float32 tokens do, within the
0.3 nDCG@10 points issue 22 allows a codec. EVALUATION.md ("Token codecs") has the full study.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.evaluate import load_dataset
from qa.index.tokens import Int8Codec

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "xquad_en-de"
QUESTIONS = 200
ALLOWED_LOSS = 0.003  # 0.3 nDCG@10 points


def maxsim_ranking(question_tokens: list[np.ndarray], passage_tokens: list[np.ndarray]) -> np.ndarray:
    """[questions, passages] MaxSim scores: each question token's best passage token, summed."""
    scores = np.empty((len(question_tokens), len(passage_tokens)), np.float32)
    for j, tokens in enumerate(passage_tokens):
        for i, question in enumerate(question_tokens):
            scores[i, j] = (question @ tokens.T).max(axis=1).sum()
    return scores


def ndcg_at_10(scores: np.ndarray, gold: list[int]) -> float:
    """Mean nDCG@10 with one relevant passage per question."""
    ranks = [(row > row[g]).sum() for row, g in zip(scores, gold)]
    return float(np.mean([1 / np.log2(r + 2) if r < 10 else 0.0 for r in ranks]))


@pytest.fixture(scope="module")
def sample(embedder):
    if not DATASET.is_dir():
        pytest.skip(f"{DATASET} is not here (CI puts ../shared beside the clone)")
    corpus, queries = load_dataset(DATASET)
    position = {p.id: i for i, p in enumerate(corpus.passages)}
    queries = queries[::len(queries) // QUESTIONS][:QUESTIONS]
    passages = embedder.embed_passages_with_tokens([p.text for p in corpus.passages])
    questions = embedder.embed_queries_with_tokens([q.question for q in queries])
    gold = [position[q.gold_ids[0]] for q in queries]
    return ([passages.of(i) for i in range(len(corpus.passages))],
            [questions.of(i) for i in range(len(queries))], gold)


def test_int8_tokens_rank_as_float32_tokens_on_a_public_sample(sample):
    passage_tokens, question_tokens, gold = sample
    codec = Int8Codec(passage_tokens[0].shape[1])
    decoded = [codec.decode(codec.encode(t)) for t in passage_tokens]
    exact = ndcg_at_10(maxsim_ranking(question_tokens, passage_tokens), gold)
    stored = ndcg_at_10(maxsim_ranking(question_tokens, decoded), gold)
    assert exact > 0.7, f"MaxSim alone should find most answers here (nDCG@10 {exact:.3f})"
    assert abs(stored - exact) <= ALLOWED_LOSS, f"int8 tokens {stored:.4f} against float32 {exact:.4f}"


def test_the_sample_tells_a_lossy_codec(sample):
    """The check above can fail: one bit a dimension (the signs) loses more than it allows."""
    passage_tokens, question_tokens, gold = sample
    signs = [np.sign(t) / np.sqrt(t.shape[1]) for t in passage_tokens]
    exact = ndcg_at_10(maxsim_ranking(question_tokens, passage_tokens), gold)
    crude = ndcg_at_10(maxsim_ranking(question_tokens, signs), gold)
    assert exact - crude > ALLOWED_LOSS
