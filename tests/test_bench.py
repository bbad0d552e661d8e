"""Smoke tests of scripts/bench.py: its CLI, its scoring rule and a tiny scaling run, rendered.

The benchmark itself takes minutes; these only check that the script is sound (no model load).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_sections():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("--quick", "--only", "--out-md", "--out-json", "indexing", "scaling", "coldstart"):
        assert word in out


def test_unknown_section_is_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_containment_rule_and_metrics(bench):
    ranked = [["autre chose", "reçu par  Vladimir\nPoutine à Vladivostok, dans"], ["rien"], ["la réponse ici"]]
    quotes = [["reçu par Vladimir Poutine à Vladivostok"], ["absent"], ["réponse"]]
    scores = bench.ranking_metrics(ranked, quotes)
    assert scores["hit@1"] == pytest.approx(1 / 3, abs=1e-3)
    assert scores["hit@3"] == pytest.approx(2 / 3, abs=1e-3)
    assert scores["mrr@10"] == pytest.approx((0.5 + 1) / 3, abs=1e-3)


def test_plain_paragraph_split(bench):
    assert bench.split_paragraphs("a\nb\n\n  \nc\n\n\n") == ["a\nb", "c"]
    assert bench.spread(list(range(10)), 3) == [0, 3, 6]


def test_tiny_scaling_run_renders(bench):
    vectors, queries = bench.synthetic_vectors(2000, 20, seed=0)
    row = bench.compare_indexes(vectors, queries)
    assert row["exact"]["bytes_per_vector"] == pytest.approx(4 * bench.DIM, rel=0.01)
    assert 0 <= row["hnsw"]["recall@10"] <= 1 and row["hnsw"]["recall@1"] > 0.9
    results = {"dim": bench.DIM, "k": bench.K_PRODUCT, "queries": 20, "synthetic": [row], "hnsw_budget_s": 60,
               "embed_ms": 25.0, "fit": bench.exact_cost_fit([row], 25.0, 6.0)}
    data = {"meta": {"date": "today", "quick": True, "total_s": 1.0,
                     "machine": {"nproc": 2, "cpu_model": "cpu", "memory_gib": 1, "load_average": [0, 0, 0],
                                 "versions": {"faiss": "x"}}},
            "sections": {"scaling": {"results": results, "measured_at": "now", "quick": True}}}
    text = bench.render_markdown(data)
    assert "APPROXIMATE_FROM" in text and "| 2,000 |" in text
