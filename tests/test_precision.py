"""The int8 engine: its export is written beside the fp32 one and recorded in the manifest, its
vectors stay close to fp32's and rank our questions as well, and the precision is chosen,
validated and remembered (an index knows what its passages were embedded at)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa.engines import AUTO_PRECISION, load_embedder
from qa.errors import QAError
from qa.fileops import sha256_file
from qa.model import resolve_model
from qa.model.export import INT8_DATA_FILE, INT8_MIN_COSINE, int8_path, int8_problem, read_export_manifest, verify_export

from .conftest import CORPUS, DATA, open_retriever
from .test_model import qa_cli

pytestmark = pytest.mark.slow  # the real model's two exports


@pytest.fixture(scope="module")
def engines():
    return {p: load_embedder(backend="onnx", precision=p) for p in ("fp32", "int8")}


def test_the_int8_export_sits_beside_the_fp32_one_with_its_own_manifest_entry():
    spec = resolve_model()
    assert int8_problem(spec) is None
    manifest = read_export_manifest(spec)
    entry = manifest["variants"]["int8"]
    path = int8_path(spec)
    assert path.parent.name == "onnx" and path.name == "model_int8.onnx"
    assert sorted(entry["files"]) == sorted([INT8_DATA_FILE, path.name])
    for name, facts in entry["files"].items():
        assert facts["sha256"] == sha256_file(path.parent / name) and facts["bytes"] == (path.parent / name).stat().st_size
    assert entry["source_sha256"] == manifest["files"]["model.onnx_data"]["sha256"]  # made from this fp32 export
    assert entry["parity"]["min_cosine_vs_fp32"] >= INT8_MIN_COSINE
    weights = (path.parent / INT8_DATA_FILE).stat().st_size
    assert weights < 0.4 * (path.parent / "model.onnx_data").stat().st_size  # int8 weights, mostly
    assert path.stat().st_size < 0.01 * weights  # the graph alone: the weights are memory-mapped
    assert verify_export(spec) == []


def test_each_side_runs_the_export_of_its_precision(engines):
    for precision, engine in engines.items():
        assert (engine.query_precision, engine.passage_precision) == (precision, precision)
        names = {engine._engine(query=True).path.name, engine._engine().path.name}
        assert names == {"model_int8.onnx" if precision == "int8" else "model.onnx"}
    auto = load_embedder(backend="onnx")
    assert (auto.query_precision, auto.passage_precision) == AUTO_PRECISION
    assert auto._engine(query=True).path.name == ("model_int8.onnx" if AUTO_PRECISION[0] == "int8" else "model.onnx")
    assert auto._engine().path.name == ("model_int8.onnx" if AUTO_PRECISION[1] == "int8" else "model.onnx")


def test_int8_vectors_stay_close_to_fp32_and_rank_our_questions_as_well(engines, corpus_index):
    items = [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line]
    questions = [item["question"] for item in items]
    fp32, int8 = (engines[p].embed_queries(questions) for p in ("fp32", "int8"))
    cosines = (fp32 * int8).sum(1)
    assert cosines.min() >= INT8_MIN_COSINE and cosines.mean() >= 0.99
    assert cosines.max() < 0.99999  # really another engine, not the fp32 one under another name
    passages = [line for line in (CORPUS / sorted(p.name for p in CORPUS.iterdir())[0]).read_text().splitlines()
                if len(line) > 80][:8]
    a, b = (engines[p].embed_passages(passages) for p in ("fp32", "int8"))
    assert (a * b).sum(1).min() >= INT8_MIN_COSINE
    # The same fp32 index asked with int8 questions: the top three agree with fp32's on nearly all.
    by = {p: open_retriever(corpus_index, engines[p]) for p in engines}
    tops = {p: [set(by[p].rank_ids([q], 3)[0]) for q in questions] for p in by}
    firsts = {p: [by[p].rank_ids([q], 1)[0][0] for q in questions] for p in by}
    assert sum(a == b for a, b in zip(firsts["fp32"], firsts["int8"])) >= len(questions) - 4
    assert sum(len(a & b) for a, b in zip(tops["fp32"], tops["int8"])) >= 0.9 * 3 * len(questions)


def test_precision_is_validated_on_one_line(monkeypatch):
    with pytest.raises(QAError, match=r"unknown precision 'fp16': choose one of auto, fp32, int8"):
        load_embedder(precision="fp16")
    with pytest.raises(QAError, match=r"int8 runs on the onnx engine only"):
        load_embedder(backend="torch", precision="int8")
    assert load_embedder(backend="torch").query_precision == "fp32"  # auto on torch: fp32, no error
    monkeypatch.setenv("QA_PRECISION", "int8")
    assert load_embedder(backend="onnx").query_precision == "int8"
    result = qa_cli("ask", "x", env={"QA_PRECISION": "half"})
    assert result.returncode == 1
    assert result.stderr.strip() == "qa: error: unknown precision 'half': choose one of auto, fp32, int8"
    result = qa_cli("ask", "--precision", "fp16", "x")
    assert result.returncode == 2 and "invalid choice: 'fp16'" in result.stderr


def test_an_index_remembers_its_passage_precision_and_a_change_rebuilds_it(tmp_path, engines):
    from qa.index import build_index, live_generation, read_manifest

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(sorted(CORPUS.iterdir())[0], corpus)
    first = build_index([corpus], tmp_path / "idx", engines["int8"])
    assert first.full and read_manifest(live_generation(tmp_path / "idx")).passage_precision == "int8"
    again = build_index([corpus], tmp_path / "idx", engines["int8"])
    assert again.embedded == 0  # same precision: nothing re-embedded
    changed = build_index([corpus], tmp_path / "idx", engines["fp32"])
    assert changed.full and "embedded at int8, this build embeds them at fp32" in changed.reason
    assert changed.embedded == changed.passages
    assert read_manifest(live_generation(tmp_path / "idx")).passage_precision == "fp32"
    from qa.index import describe

    assert describe(tmp_path / "idx").passage_precision == "fp32"  # what `qa stats` shows
    # Questions of either precision search either index.
    hits = open_retriever(tmp_path / "idx", engines["int8"]).search("where did Kim meet Putin?", k=1)
    assert hits and np.isfinite(hits[0].score)
