"""The persistent index: incremental updates, atomic writes, mismatch detection, bad input."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexStoreError, QAError
from qa.index import PassageIndex, build_index, live_generation
from qa.ranking.search import Retriever

from .conftest import CORPUS, REPO


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS, folder)
    return folder


def test_default_corpus_index(corpus_index):
    index = PassageIndex.open(corpus_index)
    assert index.manifest.documents == 5
    assert len(index) == index.vectors.shape[0] == index.faiss_passages.ntotal > 40
    tokens = index.tokens  # one forward pass per passage: its content tokens, stored
    assert len(tokens.offsets) == len(index) + 1 and (np.diff(tokens.offsets) > 0).all()
    assert index.manifest.tokens == tokens.codec.record and tokens.codec.record.kind == "int8"
    decoded = tokens.codec.decode(np.asarray(tokens.codes))
    assert np.allclose(np.linalg.norm(decoded, axis=1), 1, atol=1e-2)
    assert len(index.sentence_spans) >= len(index)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1, atol=1e-4)
    assert index.manifest.faiss["kind"] == "IndexFlatIP"
    assert index.manifest.query_prefix == "query: " and index.manifest.passage_prefix == "passage: "
    texts = " ".join(p.text for p in index.passages)
    assert "Publicité" not in texts and "Laisser un commentaire" not in texts


def test_incremental_counts(corpus_copy, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    first = build_index([corpus_copy], index_dir, embedder)
    assert first.full and first.embedded == first.passages
    again = build_index(None, index_dir, embedder)  # no paths: the ones it was built from
    assert (again.embedded, again.new, again.changed, again.removed) == (0, 0, 0, 0)
    assert not again.full

    (corpus_copy / "new.txt").write_text("Un tout nouveau paragraphe sur la pêche au thon en Bretagne.\n\n"
                                         "Un second paragraphe, sur les marées d'équinoxe.\n")
    added = build_index(None, index_dir, embedder)
    assert (added.embedded, added.new, added.changed, added.removed) == (2, 2, 0, 0)

    path = corpus_copy / "new.txt"
    path.write_text(path.read_text().replace("thon", "maquereau"))
    changed = build_index(None, index_dir, embedder)
    assert (changed.embedded, changed.new, changed.changed, changed.removed) == (1, 0, 1, 0)

    path.unlink()
    removed = build_index(None, index_dir, embedder)
    assert (removed.embedded, removed.new, removed.changed, removed.removed) == (0, 0, 0, 2)
    assert len(PassageIndex.open(index_dir)) == first.passages


def test_model_mismatch_detected_and_rebuilt(corpus_index, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    shutil.copytree(corpus_index, index_dir)
    generation = live_generation(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["model_fingerprint"] = "0123456789abcdef"
    manifest["model_id"] = "some/other-model"
    (generation / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(QAError, match="built with some/other-model"):
        Retriever.open(index_dir, model="multilingual-e5-small")
    report = build_index(None, index_dir, embedder)
    assert report.full and "built with model some/other-model" in report.reason
    assert report.embedded == report.passages
    Retriever.open(index_dir)  # usable again


def test_format_mismatch_forces_full_rebuild(corpus_index, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    shutil.copytree(corpus_index, index_dir)
    generation = live_generation(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["format_version"] = 0
    (generation / "manifest.json").write_text(json.dumps(manifest))
    report = build_index(None, index_dir, embedder)
    assert report.full and "format" in report.reason


def test_an_index_of_format_2_is_refused_with_the_rebuild_command_then_rebuilt(corpus_index, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    shutil.copytree(corpus_index, index_dir)
    generation = live_generation(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["format_version"] = 2
    manifest.pop("tokens")
    (generation / "manifest.json").write_text(json.dumps(manifest))
    for name in ("token_codes.npy", "token_offsets.npy", "token_sentences.npy"):
        (generation / name).unlink()
    shutil.copy(generation / "vectors.npy", generation / "sentences.npy")  # what format 2 held
    shutil.copy(generation / "faiss.index", generation / "sentences.faiss")
    with pytest.raises(IndexStoreError, match=r"has format 2, this version of qa reads 3; rebuild it with "
                                              rf"`qa index --index {index_dir}`"):
        PassageIndex.open(index_dir)
    report = build_index(None, index_dir, embedder)
    assert report.full and "index format 2" in report.reason and report.embedded == report.passages
    assert len(PassageIndex.open(index_dir)) == report.passages


def test_stored_tokens_are_the_engines_and_survive_incremental_builds(corpus_copy, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    build_index([corpus_copy], index_dir, embedder)
    index = PassageIndex.open(index_dir)
    fresh = embedder.embed_passages_with_tokens([p.embed_text() for p in index.passages[:5]])
    stored, counts = index.tokens.tokens(np.arange(5))
    assert list(counts) == list(np.diff(fresh.offsets))
    cosines = (stored * fresh.tokens).sum(1) / np.linalg.norm(stored, axis=1)
    assert cosines.min() > 0.999  # int8 with a per-token scale
    before = {p.content_hash(): np.asarray(index.tokens.block(i).codes) for i, p in enumerate(index.passages)}
    (corpus_copy / "new.txt").write_text("Un tout nouveau paragraphe sur la pêche au thon en Bretagne.\n")
    assert build_index(None, index_dir, embedder).embedded == 1
    after = PassageIndex.open(index_dir)
    for i, p in enumerate(after.passages):
        if p.content_hash() in before:
            assert np.array_equal(np.asarray(after.tokens.block(i).codes), before[p.content_hash()])
    assert "thon" in Retriever(after, embedder).search("pêche au thon", 1)[0].text


def test_missing_index_is_clear(tmp_path):
    with pytest.raises(IndexStoreError, match="no index at"):
        PassageIndex.open(tmp_path / "nothing")


def test_damaged_index_is_clear(corpus_index, tmp_path):
    index_dir = tmp_path / "idx"
    shutil.copytree(corpus_index, index_dir)
    (live_generation(index_dir) / "faiss.index").write_bytes(b"garbage")
    with pytest.raises(IndexStoreError, match="damaged"):
        PassageIndex.open(index_dir)


def test_empty_folder_is_an_error(tmp_path, embedder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(QAError):
        build_index([tmp_path / "empty"], tmp_path / "idx", embedder)
    assert live_generation(tmp_path / "idx") is None


@pytest.mark.slow  # `qa index` loads the model's tokenizer
def test_unusable_index_path_is_one_clear_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    for target, message in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "idx", "cannot create")):
        proc = subprocess.run([sys.executable, "-m", "qa", "index", str(CORPUS), "--index", str(target)],
                              capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_reader_keeps_working_during_rebuild(corpus_copy, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    build_index([corpus_copy], index_dir, embedder)
    reader = Retriever(PassageIndex.open(index_dir), embedder)
    old_generation = reader.index.generation
    (corpus_copy / "extra.txt").write_text("Un paragraphe ajouté pendant que le lecteur travaille.\n")
    build_index(None, index_dir, embedder)
    assert old_generation.exists(), "the generation a reader may still use was deleted"
    hits = reader.search("where did Kim meet Putin?", k=3)
    assert any("Vladivostok" in h.text for h in hits)


def _big_corpus(folder: Path, copies: int) -> None:
    """Enough distinct text that embedding takes over a minute, so a kill lands mid-build.

    Each copy shuffles the words of every paragraph (seeded): copies that only differed by a
    suffix would be merged by the near-duplicate detection and leave a corpus of 53 passages.
    """
    folder.mkdir()
    paragraphs = [p for f in sorted(CORPUS.glob("*.txt")) for p in f.read_text().split("\n\n") if len(p) > 80]
    for i in range(copies):
        shuffled = []
        for j, paragraph in enumerate(paragraphs):
            words = paragraph.split()
            random.Random(f"{i}.{j}").shuffle(words)
            shuffled.append(" ".join(words))
        (folder / f"copy_{i:03d}.txt").write_text("\n\n".join(shuffled))


def _start_full_build(tmp_path: Path, corpus_index: Path, copies: int):
    """A copy of the built index, then a full rebuild of it over a new corpus, in a child process."""
    index_dir = tmp_path / "idx"
    shutil.copytree(corpus_index, index_dir)
    before = PassageIndex.open(index_dir)
    corpus = tmp_path / "corpus"
    _big_corpus(corpus, copies=copies)
    process = subprocess.Popen([sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index_dir), "--full",
                                "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return index_dir, before, corpus, process


def _assert_intact_after_kill(index_dir: Path, before: PassageIndex, documents: int) -> None:
    after = PassageIndex.open(index_dir)  # usable, whatever the moment of the kill
    if after.generation == before.generation:
        assert len(after) == len(before) and np.array_equal(after.vectors, before.vectors)
    else:  # killed after the switch to the new generation: then it must be complete
        assert after.manifest.documents == documents and len(after) == after.faiss_passages.ntotal


@pytest.mark.parametrize("delay", [3.0, 12.0])
def test_kill_during_build_leaves_previous_index(tmp_path, corpus_index, delay):
    """kill -9 while the model loads (3 s) or mid-embedding (12 s; the corpus takes over a minute)."""
    index_dir, before, _, process = _start_full_build(tmp_path, corpus_index, copies=24)
    time.sleep(delay)
    assert process.poll() is None, "the build finished before the kill: make the corpus bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _assert_intact_after_kill(index_dir, before, documents=24)


def test_kill_while_writing_the_new_generation(tmp_path, corpus_index, embedder):
    """kill -9 the moment the new generation's staging folder appears, i.e. while it is written."""
    index_dir, before, small, process = _start_full_build(tmp_path, corpus_index, copies=1)
    while process.poll() is None and not any(p.name.startswith(".tmp-g") for p in index_dir.iterdir()):
        time.sleep(0.001)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _assert_intact_after_kill(index_dir, before, documents=1)
    build_index([small], index_dir, embedder)  # the next build finishes the job and sweeps the leftovers
    assert PassageIndex.open(index_dir).manifest.documents == 1
    assert not [p.name for p in index_dir.iterdir() if p.name.startswith((".tmp-g", ".CURRENT.tmp-"))]
