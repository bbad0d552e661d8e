"""Smoke tests of the `bench` package: its command line, its layout
(every section runs and renders, the package stays out of the qa wheel, --only keeps the other
sections), its scoring rule, its timing helpers, a tiny scaling run and every section's rendering
from synthetic results.

The benchmark itself takes many minutes; these only check that the package is sound (no model load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

import bench.__main__ as cli
from bench import common, quality, report, results, scaling, startup, tables, timing
from bench.workers import TASKS

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str, module: str = "bench") -> subprocess.CompletedProcess:
    """`python -m bench ARGS` from the repository root, as the README says to run it."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO)


def test_help_lists_sections():
    proc = _run("--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m bench")
    for word in ("--quick", "--only", "--out-md", "--out-json", "indexing", "scaling", "coldstart", "load", "threads",
                 "repl", "fastembed"):
        assert word in proc.stdout


def test_unknown_section_and_worker_are_refused():
    for args in (("--only", "nope"), ("--worker", "nope")):
        proc = _run(*args)
        assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_repl_clock_runs():
    repl = _run("--help", module="bench.repl")
    assert repl.returncode == 0 and "--runs" in repl.stdout


def test_every_section_runs_and_renders():
    assert list(cli.SECTION_RUNS) == list(common.SECTIONS) == list(tables.TABLES)
    assert set(TASKS) == {"index-qa", "index-plain", "index-fastembed", "index-txtai", "latency-alone"}


def test_bench_stays_out_of_the_wheel():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(REPO), include=config["include"])
    assert "qa" in packages and not [p for p in packages if p.split(".")[0] == "bench"]


def test_only_keeps_the_other_sections(tmp_path, monkeypatch):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "BENCHMARKS.md"
    out_json.write_text(json.dumps({"sections": {"repl": results.section_record({"error": "earlier"}, 1.0, True)}}))
    ran: list[str] = []

    def run_sections(sections: list[str], quick: bool, **_) -> dict[str, dict]:  # no model: an empty section
        ran.extend(sections)
        return {"storage": results.section_record({}, 2.0, quick)}

    monkeypatch.setattr(cli, "run_sections", run_sections)
    for name in ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM"):  # main sets them; restored after the test
        monkeypatch.delenv(name, raising=False)
    args = ["--quick", "--only", "storage", "--out-json", str(out_json), "--out-md", str(out_md)]
    assert cli.main(args) == 0 and ran == ["storage"]
    data = json.loads(out_json.read_text())
    assert list(data["sections"]) == ["repl", "storage"] and data["meta"]["command"] == "python -m bench " + " ".join(args)
    text = out_md.read_text()
    assert "Not measured: earlier" in text and "## Index size and load time" in text


def test_containment_rule_and_metrics():
    ranked = [["autre chose", "reçu par  Vladimir\nPoutine à Vladivostok, dans"], ["rien"], ["la réponse ici"]]
    quotes = [["reçu par Vladimir Poutine à Vladivostok"], ["absent"], ["réponse"]]
    scores = quality.ranking_metrics(ranked, quotes)
    assert scores["hit@1"] == pytest.approx(1 / 3, abs=1e-3)
    assert scores["hit@3"] == pytest.approx(2 / 3, abs=1e-3)
    assert scores["mrr@10"] == pytest.approx((0.5 + 1) / 3, abs=1e-3)


def test_plain_paragraph_split():
    assert common.split_paragraphs("a\nb\n\n  \nc\n\n\n") == ["a\nb", "c"]
    assert common.spread(list(range(10)), 3) == [0, 3, 6]


def test_interleaved_timing_runs_every_system_on_every_question():
    calls: list[tuple[str, str]] = []
    runners = {name: timing.Runner(lambda q, name=name: calls.append((name, q))) for name in ("a", "b", "c")}
    timings = timing.time_interleaved(runners, ["q1", "q2", "q3", "q4"])
    assert {name: len(t) for name, t in timings.items()} == {"a": 4, "b": 4, "c": 4}
    assert sorted(calls) == sorted((n, q) for n in "abc" for q in ("q1", "q2", "q3", "q4"))
    orders = [tuple(name for name, _ in calls[i:i + 3]) for i in range(0, 12, 3)]
    assert len(set(orders)) > 1  # a fresh order per question, not a fixed one


def test_competing_load_is_killed_even_on_error():
    with pytest.raises(RuntimeError), timing.competing_load(1):
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


def test_idle_vs_loaded_ratios():
    out = timing.idle_vs_loaded({"x": timing.Runner(lambda q: sum(range(20_000)))}, ["a", "b", "c", "d"])
    assert out["x"]["idle"]["n"] == 4 and out["x"]["loaded"]["n"] == 4  # every question in both conditions
    assert out["x"]["ratio_median"] == pytest.approx(out["x"]["loaded"]["median_ms"] / out["x"]["idle"]["median_ms"],
                                                     rel=0.02)


def test_older_sections_are_dropped(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"sections": {"latency": {"results": {}}, "scaling": {"results": {}, "format": results.FORMAT}}}))
    assert list(results.kept_sections(path)) == ["scaling"]
    assert results.kept_sections(tmp_path / "missing.json") == {}


def test_repl_figures_per_mark():
    runs = [{"prompt": 0.3, "ready": 0.9, "answer": 1.0}, {"prompt": 0.5, "ready": 0.7, "answer": 1.2}]
    figures = startup.session_figures(runs)
    assert figures["ready_runs_s"] == [0.9, 0.7] and figures["ready_median_s"] == pytest.approx(0.8)
    assert set(figures) == {f"{mark}_{what}" for mark in runs[0] for what in ("runs_s", "median_s")}


def test_tiny_scaling_run_renders():
    vectors, queries = scaling.synthetic_vectors(2000, 20, seed=0)
    row = scaling.compare_indexes(vectors, queries)
    assert row["exact"]["bytes_per_vector"] == pytest.approx(4 * common.DIM, rel=0.01)
    assert 0 <= row["hnsw"]["recall@10"] <= 1 and row["hnsw"]["recall@1"] > 0.9
    figures = {"dim": common.DIM, "k": common.K_PRODUCT, "queries": 20, "synthetic": [row], "hnsw_budget_s": 60,
               "embed_ms": 7.0, "embed_backend": "onnx", "fit": scaling.exact_cost_fit([row], 7.0, 6.0)}
    text = report.render_markdown(_data({"scaling": figures}))
    assert "APPROXIMATE_FROM" in text and "| 2,000 |" in text and "(onnx, 7.0 ms)" in text


def _data(figures: dict[str, dict]) -> dict:
    return {"meta": {"date": "today", "quick": True, "total_s": 1.0,
                     "machine": {"nproc": 2, "cpu_model": "cpu", "memory_gib": 1, "load_average": [0, 0, 0],
                                 "versions": {"faiss": "x"}}},
            "sections": {name: {"results": r, "measured_at": "now", "quick": True} for name, r in figures.items()}}


def _timing(ms: float) -> dict:
    return {"median_ms": ms, "p95_ms": 2 * ms, "mean_ms": ms, "n": 4}


def test_every_section_renders_with_targets():
    idle_loaded = {"idle": _timing(6.0), "loaded": _timing(12.0), "ratio_median": 2.0, "ratio_p95": 2.0}
    build = {"threads": 1, "passages": 53, "sentences": 77, "index_s": 2.0, "passages_per_s": 26.5,
             "sentences_per_s": 38.5, "texts_per_s": 65.0, "kchars_per_s": 6.5, "model_load_s": 0.4,
             "rss_after_model_mb": 230, "peak_rss_mb": 900, "unchanged_rebuild_s": 0.1, "embedded_texts": 130}
    figures = {
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
    text = report.render_markdown(_data(figures))
    assert text.startswith("# Benchmarks\n\nGenerated by `python -m bench` on today")
    for heading in ("## Targets", "## Summary", "## Indexing", "## Query latency (warm)", "competing CPU load",
                    "## Engine threads", "## Cold start", "## REPL start"):
        assert heading in text
    assert "| `qa ask` start → answer, onnx, median ≤ 1.5 s | 1.10 s | yes |" in text
    assert "8.3× (9.10 s vs 1.10 s) | yes |" in text
    assert "| warm `Retriever.search` p50 (onnx, default mode) ≤ 10 ms, interleaved with the torch peers | 8.0 ms | yes |" in text
    assert "| REPL launch → ready, onnx, median ≤ 1.5 s | 0.80 s | yes |" in text
    assert "2.00× (12.0 ms vs 6.0 ms idle) | yes |" in text
    assert "| onnx, 1 thread |" in text and "| torch, 2 threads |" in text
    assert "failed: worker index-txtai exited with 1" in text and "NO: boom" in text
    assert "fastembed could not run: no" in text


def test_repl_error_renders():
    text = report.render_markdown(_data({"repl": {"error": "needs pexpect"}}))
    assert "Not measured: needs pexpect" in text and "## Targets" not in text
