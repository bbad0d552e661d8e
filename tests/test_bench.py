"""Smoke tests of scripts/bench.py: its CLI, its scoring rule, its timing helpers, a tiny scaling
run and every section's rendering from synthetic results.

The benchmark itself takes many minutes; these only check that the script is sound (no model load).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
SCRIPT = SCRIPTS / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench", None)


def test_help_lists_sections():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("--quick", "--only", "--out-md", "--out-json", "indexing", "scaling", "coldstart", "load", "threads",
                 "repl", "fastembed"):
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


def test_interleaved_timing_runs_every_system_on_every_question(bench):
    calls: list[tuple[str, str]] = []
    runners = {name: bench.Runner(lambda q, name=name: calls.append((name, q))) for name in ("a", "b", "c")}
    timings = bench.time_interleaved(runners, ["q1", "q2", "q3", "q4"])
    assert {name: len(t) for name, t in timings.items()} == {"a": 4, "b": 4, "c": 4}
    assert sorted(calls) == sorted((n, q) for n in "abc" for q in ("q1", "q2", "q3", "q4"))
    orders = [tuple(name for name, _ in calls[i:i + 3]) for i in range(0, 12, 3)]
    assert len(set(orders)) > 1  # a fresh order per question, not a fixed one


def test_competing_load_is_killed_even_on_error(bench):
    with pytest.raises(RuntimeError), bench.competing_load(1):
        busy = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_busy_child(p)]
        assert busy
        raise RuntimeError("a section failed")
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_busy_child(p)]


def _is_busy_child(proc: Path) -> bool:
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    parent = int(stat.rsplit(")", 1)[1].split()[1])
    state = stat.rsplit(")", 1)[1].split()[0]
    return parent == os.getpid() and state != "Z" and b"while True: pass" in cmdline


def test_idle_vs_loaded_ratios(bench):
    out = bench.idle_vs_loaded({"x": bench.Runner(lambda q: sum(range(20_000)))}, ["a", "b", "c", "d"])
    assert out["x"]["idle"]["n"] == 4 and out["x"]["loaded"]["n"] == 4  # every question in both conditions
    assert out["x"]["ratio_median"] == pytest.approx(out["x"]["loaded"]["median_ms"] / out["x"]["idle"]["median_ms"],
                                                     rel=0.02)


def test_older_sections_are_dropped(bench, tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"sections": {"latency": {"results": {}}, "scaling": {"results": {}, "format": bench.FORMAT}}}))
    assert list(bench.kept_sections(path)) == ["scaling"]
    assert bench.kept_sections(tmp_path / "missing.json") == {}


def test_measure_repl_loads_by_path(bench):
    pytest.importorskip("pexpect")
    module = bench._measure_repl()
    assert callable(module.time_one_session) and module.QUESTION == bench.COLD_QUESTION


def test_tiny_scaling_run_renders(bench):
    vectors, queries = bench.synthetic_vectors(2000, 20, seed=0)
    row = bench.compare_indexes(vectors, queries)
    assert row["exact"]["bytes_per_vector"] == pytest.approx(4 * bench.DIM, rel=0.01)
    assert 0 <= row["hnsw"]["recall@10"] <= 1 and row["hnsw"]["recall@1"] > 0.9
    results = {"dim": bench.DIM, "k": bench.K_PRODUCT, "queries": 20, "synthetic": [row], "hnsw_budget_s": 60,
               "embed_ms": 7.0, "embed_backend": "onnx", "fit": bench.exact_cost_fit([row], 7.0, 6.0)}
    text = bench.render_markdown(_data({"scaling": results}))
    assert "APPROXIMATE_FROM" in text and "| 2,000 |" in text and "(onnx, 7.0 ms)" in text


def _data(results: dict[str, dict]) -> dict:
    return {"meta": {"date": "today", "quick": True, "total_s": 1.0,
                     "machine": {"nproc": 2, "cpu_model": "cpu", "memory_gib": 1, "load_average": [0, 0, 0],
                                 "versions": {"faiss": "x"}}},
            "sections": {name: {"results": r, "measured_at": "now", "quick": True} for name, r in results.items()}}


def _timing(ms: float) -> dict:
    return {"median_ms": ms, "p95_ms": 2 * ms, "mean_ms": ms, "n": 4}


def test_every_section_renders_with_targets(bench):
    idle_loaded = {"idle": _timing(6.0), "loaded": _timing(12.0), "ratio_median": 2.0, "ratio_p95": 2.0}
    build = {"threads": 1, "passages": 53, "sentences": 77, "index_s": 2.0, "passages_per_s": 26.5,
             "sentences_per_s": 38.5, "texts_per_s": 65.0, "kchars_per_s": 6.5, "model_load_s": 0.4,
             "rss_after_model_mb": 230, "peak_rss_mb": 900, "unchanged_rebuild_s": 0.1, "embedded_texts": 130}
    results = {
        "indexing": {"corpus": {"files": 5, "chars": 13000, "raw_paragraphs": 68, "qa-onnx": build,
                                "qa-torch": {**build, "index_s": 4.0, "passages_per_s": 13.2},
                                "txtai": {"error": "worker index-txtai exited with 1"}}},
        "latency": {"questions": 4, "k": 5, "passages": 53, "sentences": 77, "threads": {"qa-onnx": 1, "plain": 2},
                    "systems": {"qa-onnx": _timing(8.0), "plain": _timing(26.0)}, "errors": {"fastembed": "no"}},
        "load": {"questions": 4, "competing_processes": 2, "threads": {"qa-onnx": 1}, "errors": {},
                 "systems": {"qa-onnx": idle_loaded}},
        "threads": {"questions": 4, "competing_processes": 2, "default_threads": 1,
                    "systems": {"onnx-1": idle_loaded, "torch-2": idle_loaded}},
        "coldstart": {"command": "qa ask", "runs": 2,
                      "systems": {"qa-onnx": {"runs_s": [1.0, 1.2], "median_s": 1.1, "ok": True},
                                  "qa-torch": {"runs_s": [9.0, 9.2], "median_s": 9.1, "ok": True},
                                  "fastembed-floor": {"runs_s": [2.0], "median_s": 2.0, "ok": False, "error": "boom"}}},
        "repl": {"question": "q", "runs": 1, "systems": {
            "onnx": {"prompt_median_s": 0.3, "ready_median_s": 0.8, "answer_median_s": 0.9, "ready_runs_s": [0.8]}}},
    }
    text = bench.render_markdown(_data(results))
    for heading in ("## Targets", "## Summary", "## Indexing", "## Query latency (warm)", "competing CPU load",
                    "## Engine threads", "## Cold start", "## REPL start"):
        assert heading in text
    assert "| `qa ask` start → answer, onnx, median ≤ 1.5 s | 1.10 s | yes |" in text
    assert "8.3× (9.10 s vs 1.10 s) | yes |" in text
    assert "| warm `Retriever.search` p50 (onnx, default mode) ≤ 10 ms | 8.0 ms | yes |" in text
    assert "| REPL launch → ready, onnx, median ≤ 1.5 s | 0.80 s | yes |" in text
    assert "2.00× (12.0 ms vs 6.0 ms idle) | yes |" in text
    assert "| onnx, 1 thread |" in text and "| torch, 2 threads |" in text
    assert "failed: worker index-txtai exited with 1" in text and "NO: boom" in text
    assert "fastembed could not run: no" in text


def test_repl_error_renders(bench):
    text = bench.render_markdown(_data({"repl": {"error": "needs pexpect"}}))
    assert "Not measured: needs pexpect" in text and "## Targets" not in text
