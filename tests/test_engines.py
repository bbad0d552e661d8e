"""The two inference engines behind one interface: the ONNX engine (default) agrees with the torch
engine, serves indexes built by it, and keeps torch out of every question's process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.engines import load_embedder
from qa.errors import ModelError, QAError
from qa.model import default_model_dir, resolve_model
from qa.model.export import EXPORT_FOLDER, MANIFEST_FILE, MIN_COSINE, export_problem

from .conftest import CORPUS, DATA
from .test_model import QUESTIONS, paragraphs, qa_cli

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
HEAVY = ("torch", "transformers", "sentence_transformers", "trafilatura", "pypdfium2", "pypdf", "docx", "htmldate")

pytestmark = pytest.mark.slow  # every test here runs or inspects the real engines


@pytest.fixture(scope="module")
def torch_embedder():
    return load_embedder(backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder():
    return load_embedder(backend="onnx", precision="fp32")  # the exact export (int8: tests/test_precision.py)


def seed_questions() -> list[str]:
    return [json.loads(line)["question"] for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line]


def test_default_engine_is_onnx_with_a_verified_export():
    embedder = load_embedder()
    assert embedder.backend == "onnx"
    assert export_problem(embedder.spec) is None
    manifest = json.loads((default_model_dir() / EXPORT_FOLDER / MANIFEST_FILE).read_text())
    assert manifest["parity"]["min_cosine"] >= MIN_COSINE
    assert manifest["source_fingerprint"] == embedder.spec.fingerprint
    assert {"model.onnx", "model.onnx_data"} <= set(manifest["files"])


def test_onnx_vectors_equal_torch_vectors(onnx_embedder, torch_embedder):
    """Passages of the corpus (batched, padded, some over 100 tokens) and questions, both prefixes."""
    texts = paragraphs()
    a, b = onnx_embedder.embed_passages(texts), torch_embedder.embed_passages(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert (a * b).sum(1).min() >= MIN_COSINE
    questions = seed_questions()
    q_onnx = np.concatenate([onnx_embedder.embed_queries([q]) for q in questions[:10]] +
                            [onnx_embedder.embed_queries(questions[10:])])
    assert (q_onnx * torch_embedder.embed_queries(questions)).sum(1).min() >= MIN_COSINE
    assert np.allclose(np.linalg.norm(q_onnx, axis=1), 1, atol=1e-5)


def test_over_long_passages_are_truncated_like_torch(onnx_embedder, torch_embedder):
    long = " ".join(paragraphs()) * 3  # thousands of tokens: both engines read the first 512
    assert onnx_embedder.count_tokens(long) > 2000
    cosine = float((onnx_embedder.embed_passages([long]) * torch_embedder.embed_passages([long])).sum())
    assert cosine >= MIN_COSINE
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    reference.enable_truncation(512)
    texts = ["passage: " + long, "passage: " + long[:1500], "x"]
    assert onnx_embedder._token_ids(texts * 400) == [e.ids for e in reference.encode_batch(texts * 400)]


def test_fast_question_tokenizer_equals_tokenizers():
    """The Unigram fast path gives `tokenizers`' ids on every question of the public sets, on
    passages, and on the awkward cases (added tokens in the text, control characters, emoji)."""
    from tokenizers import Tokenizer

    from qa.engines.unigram import VOCAB_FILE, FastUnigram

    folder = default_model_dir()
    fast = FastUnigram(folder / EXPORT_FOLDER / VOCAB_FILE, 512)
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.enable_truncation(512)
    texts = ["query: " + q for q in QUESTIONS + seed_questions()]
    for queries in sorted(DATASETS.glob("*/queries.jsonl")):
        texts += ["query: " + json.loads(line)["question"] for line in queries.read_text().splitlines() if line]
    texts += ["passage: " + p for p in paragraphs()]
    texts += ["", " ", "<s>", "a<mask>b", "x</s></s>y", "<pad><unk>", "\x01\x02", "tab\there\nnew", "  spaces  ",
              "日本語のテキスト", "😀🙃 emoji", "ǄﬁⅣ①", "\u200b\u200b", "e\u0301cole", "a" * 3000, "▁▁x"]
    ours = [fast.encode(t) for t in texts]
    theirs = [e.ids for e in reference.encode_batch(texts)]
    mismatched = [t for t, a, b in zip(texts, ours, theirs) if a != b]
    assert len(texts) > 1000 and not mismatched, mismatched[:3]


def test_an_index_built_by_torch_is_served_by_onnx(tmp_path, torch_embedder, onnx_embedder):
    from qa.index import PassageIndex, build_index
    from qa.ranking.search import Retriever

    build_index([CORPUS], tmp_path / "idx", torch_embedder)
    by_torch = Retriever(PassageIndex.open(tmp_path / "idx"), torch_embedder)
    by_onnx = Retriever.open(tmp_path / "idx", backend="onnx", precision="fp32")  # exact parity: fp32
    assert by_onnx.embedder.backend == "onnx"
    for question in seed_questions():
        assert ([h.passage_id for h in by_onnx.search(question, k=5)] ==
                [h.passage_id for h in by_torch.search(question, k=5)]), question


PROBE = """
import json, sys
{body}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps({{"heavy": heavy, "onnxruntime": "onnxruntime" in sys.modules}}))
"""

PATHS = {
    "qa ask": "from qa.cli import main\nmain(['ask', '--index', INDEX, '-k', '2', 'where did Kim meet Putin?'])",
    "qa ask int8": "from qa.cli import main\nmain(['ask', '--precision', 'int8', '--index', INDEX, 'where did Kim meet Putin?'])",
    "qa stats": "from qa.cli import main\nmain(['stats', '--index', INDEX])",
    "Retriever": "from qa import Retriever\nassert Retriever.open(INDEX).search('où Kim a-t-il rencontré Poutine ?')",
    "REPL": """
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from qa.repl import Repl
from qa.ranking.search import Retriever
def factory():
    retriever = Retriever.open(INDEX, build_missing=True)
    retriever.warm_up()
    return retriever
with create_pipe_input() as pipe:
    pipe.send_text("where did Kim meet Putin?\\n\\x04")
    assert Repl(factory, input=pipe, output=DummyOutput(), history_path=HISTORY).run() == 0
""",
}


@pytest.mark.parametrize("path", list(PATHS))
def test_question_paths_never_import_torch(path, corpus_index, tmp_path):
    body = f"INDEX = {str(corpus_index)!r}\nHISTORY = {str(tmp_path / 'history')!r}\n" + PATHS[path]
    result = subprocess.run([sys.executable, "-c", PROBE.format(body=body, heavy=HEAVY)], capture_output=True,
                            text=True, timeout=120, cwd=REPO, env={**os.environ, "QA_BACKEND": ""})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["onnxruntime"] == (path != "qa stats")


def test_backend_and_threads_are_validated():
    with pytest.raises(QAError, match="unknown backend 'tensorflow'"):
        load_embedder(backend="tensorflow")
    with pytest.raises(QAError, match="between 1 and 256"):
        load_embedder(threads=0)
    result = qa_cli("ask", "x", env={"QA_THREADS": "many"})
    assert result.returncode == 1
    assert result.stderr.strip() == "qa: error: QA_THREADS must be a whole number (got 'many')"
    result = qa_cli("ask", "--backend", "jax", "x")
    assert result.returncode == 2 and "invalid choice: 'jax'" in result.stderr


def test_threads_reach_the_engine(monkeypatch):
    embedder = load_embedder(threads=2)
    embedder.embed_queries(["x"])
    options = embedder._engine().session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    monkeypatch.delenv("QA_THREADS", raising=False)
    assert load_embedder().threads == len(os.sched_getaffinity(0))  # onnx: one per core
    assert load_embedder(backend="torch").threads == 1  # torch's spinning threads collapse under load
    monkeypatch.setenv("QA_THREADS", "3")
    assert load_embedder(backend="torch").threads == 3


def test_bulk_work_on_two_threads_equals_one_thread(onnx_embedder):
    """A build's batches run two at a time on the one-thread session (token-budget batches): the
    same vectors and tokens as one thread running the questions' kind of batches (to 1e-5)."""
    texts = paragraphs() * 3
    two = load_embedder(threads=2, precision="fp32")
    one = load_embedder(threads=1, precision="fp32")
    a, b = two.embed_passages_with_tokens(texts), one.embed_passages_with_tokens(texts)
    assert two._engine()._bulk is not None and one._engine()._bulk is None
    assert two._engine()._bulk.get_session_options().intra_op_num_threads == 1
    assert np.array_equal(a.offsets, b.offsets) and np.allclose(a.tokens, b.tokens, atol=1e-5)
    assert np.allclose(a.vectors, b.vectors, atol=1e-6)
    assert np.allclose(two.embed_passages(texts), a.vectors, atol=1e-6)
    question = two.embed_queries(["où Kim a-t-il rencontré Poutine ?"])
    assert np.allclose(question, one.embed_queries(["où Kim a-t-il rencontré Poutine ?"]), atol=1e-6)


def copy_without_export(tmp_path: Path) -> Path:
    """The default model as a foreign folder (no qa manifest) without its ONNX export."""
    folder = tmp_path / "model"
    shutil.copytree(default_model_dir(), folder, ignore=shutil.ignore_patterns(EXPORT_FOLDER, "qa-model.json", ".*"))
    return folder


def test_a_folder_without_export_runs_on_torch_and_qa_model_writes_it(tmp_path):
    folder = copy_without_export(tmp_path)
    spec = resolve_model(str(folder))
    assert load_embedder(str(folder)).backend == "torch"
    with pytest.raises(ModelError, match=r"has no ONNX export; write it with `qa model --model .*`, or use --backend torch"):
        load_embedder(str(folder), backend="onnx")
    result = qa_cli("model", "--model", str(folder), "--export", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "engine: onnx" in result.stdout
    assert resolve_model(str(folder)).fingerprint == spec.fingerprint  # the export is not part of the identity
    onnx, torch = load_embedder(str(folder)), load_embedder(str(folder), backend="torch")
    assert onnx.backend == "onnx"
    question = ["where did Kim meet Putin?"]
    assert float((onnx.embed_queries(question) * torch.embed_queries(question)).sum()) >= MIN_COSINE


def test_a_damaged_export_is_not_used(tmp_path):
    folder = copy_without_export(tmp_path)
    shutil.copytree(default_model_dir() / EXPORT_FOLDER, folder / EXPORT_FOLDER)
    manifest = json.loads((folder / EXPORT_FOLDER / MANIFEST_FILE).read_text())
    manifest["source_fingerprint"] = resolve_model(str(folder)).fingerprint  # as if written for this folder
    (folder / EXPORT_FOLDER / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert load_embedder(str(folder)).backend == "onnx"
    with open(folder / EXPORT_FOLDER / "model.onnx_data", "r+b") as fh:
        fh.truncate(1000)
    assert load_embedder(str(folder)).backend == "torch"
    result = qa_cli("model", "--model", str(folder))
    assert result.returncode == 1
    assert "PROBLEMS: onnx/model.onnx_data" in result.stdout


def test_an_error_while_the_engine_loads_exits_cleanly(corpus_index):
    """The engine starts loading in the background as the index opens; a filter error raised
    meanwhile must end in its one line and exit 1, not abort inside onnxruntime (exit 134)."""
    for _ in range(3):
        result = qa_cli("ask", "--index", str(corpus_index), "--doc", "nomatch*", "x")
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("qa: error: no document matches 'nomatch*'")
        assert "terminate" not in result.stderr
