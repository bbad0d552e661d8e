"""The quality section: hit@1, hit@3 and MRR@10 of qa's modes and of the peers on the answerable
seed questions, by one rule for every system (a hit's text contains an answer quote)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .common import CORPUS, K_EVAL, log, raw_paragraphs
from .state import Bench
from .systems import PEERS
from .timing import use_torch_threads

RULE = "a hit is correct when its text contains one of the question's answer quotes (whitespace normalised)"


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def ranking_metrics(ranked_texts: Sequence[Sequence[str]], quote_sets: Sequence[Sequence[str]]) -> dict[str, float]:
    """hit@1, hit@3, MRR@10 by text containment of an answer quote, the same rule for every system
    (the baselines' passages are raw paragraphs, not qa's, so passage ids cannot be compared)."""
    h1 = h3 = mrr = 0.0
    for texts, quotes in zip(ranked_texts, quote_sets):
        wanted = [normalize_ws(q) for q in quotes]
        first = next((i for i, t in enumerate(texts[:K_EVAL]) if any(q in normalize_ws(t) for q in wanted)), None)
        if first is not None:
            h1 += first == 0
            h3 += first < 3
            mrr += 1 / (first + 1)
    n = max(len(quote_sets), 1)
    return {"hit@1": round(h1 / n, 4), "hit@3": round(h3 / n, 4), "mrr@10": round(mrr / n, 4),
            "questions": len(quote_sets)}


def section_quality(bench: Bench) -> dict:
    """Quality of every system on the answerable seed questions, by the text-containment rule."""
    systems = bench.systems()
    answerable = [q for q in bench.questions if q["answers"]]
    quotes = [[a["quote"] for a in q["answers"]] for q in answerable]
    questions = [q["question"] for q in answerable]
    qa = systems["qa-onnx"]
    results: dict[str, Any] = {"questions": len(answerable),
                               "languages": dict(Counter(q.get("lang") or "?" for q in answerable)),
                               "rule": RULE, "systems": {}}
    use_torch_threads(bench.peer_threads)
    for name, rank in _rankers(systems).items():
        log(f"quality: {name}")
        ranked = [rank(q) for q in questions]
        by_language = {}
        for lang in ("en", "fr"):
            rows = [i for i, q in enumerate(answerable) if q.get("lang") == lang]
            by_language[lang] = ranking_metrics([ranked[i] for i in rows], [quotes[i] for i in rows])
        results["systems"][name] = {**ranking_metrics(ranked, quotes), "by_language": by_language}
    results["cosine_with_qa"] = {name: systems[name].agreement(bench.embedder) for name in PEERS if name in systems}
    results["errors"] = dict(bench.system_errors)
    results["raw_paragraphs"] = len(raw_paragraphs(CORPUS))
    results["qa_passages"] = len(qa.index)
    return results


def _rankers(systems: dict[str, Any]) -> dict[str, Callable[[str], list[str]]]:
    """Question → ranked texts, for qa's three modes and every peer that loaded."""
    qa = systems["qa-onnx"]
    rankers: dict[str, Callable[[str], list[str]]] = {
        "qa-default": lambda q: [h.text for h in qa.search(q, k=K_EVAL)],
        "qa-dense": lambda q: [h.text for h in qa.search(q, k=K_EVAL, mode="dense")],
        "qa-lexical": lambda q: [h.text for h in qa.search(q, k=K_EVAL, mode="lexical")],
    }
    for name in PEERS:
        if name in systems:
            rankers[name] = lambda q, peer=systems[name]: peer.search(q, K_EVAL)
    return rankers
