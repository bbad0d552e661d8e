"""Hostile input and damaged indexes (issue 15): one line and exit 1, never a traceback, never a
lost index, and always a command that repairs.

Damage is done to copies of real indexes built with the real model; bad names are real files,
disk full is a real size-limited write, stdin bytes go through a real pipe.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.corpus import load_corpus, read_text
from qa.errors import IndexStoreError
from qa.index import PassageIndex, _build_lock, _token_counter, build_index, live_generation
from qa.search import Retriever

from .conftest import CORPUS, REPO

QUESTION = "where did Kim meet Putin?"


# --------------------------------------------------------------------------- helpers


def qa(*args: str, stdin: bytes | None = None, env: dict | None = None, timeout: float = 180,
       preexec=None) -> subprocess.CompletedProcess:
    """`python -m qa ARGS` in a child process; stdout/stderr decoded with replacement."""
    proc = subprocess.run([sys.executable, "-m", "qa", *args], input=stdin, capture_output=True, cwd=REPO,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})}, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL, preexec_fn=preexec)
    proc.stdout, proc.stderr = (s.decode("utf-8", "replace") for s in (proc.stdout, proc.stderr))
    return proc


def one_error(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (asserting exit 1 and no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, proc.stderr)
    return lines[0]


def answers(index_dir: Path, embedder) -> str:
    """The top passage for the standard question: the index opens and answers."""
    hits = Retriever(PassageIndex.open(index_dir), embedder).search(QUESTION, k=1)
    assert hits
    return hits[0].text


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    """A corpus that is not the shipped one: a rebuild from the default corpus would show."""
    folder = tmp_path_factory.mktemp("small") / "articles"
    folder.mkdir()
    text = (CORPUS / sorted(p.name for p in CORPUS.glob("*.txt"))[0]).read_text()
    (folder / "kim.txt").write_text("\n\n".join(text.split("\n\n")[:6]))
    (folder / "tuna.txt").write_text("Le thon rouge est pêché en Méditerranée au printemps.\n\n"
                                     "Les marées d'équinoxe sont les plus fortes de l'année en Bretagne.\n")
    return folder


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, small_corpus, embedder) -> Path:
    path = tmp_path_factory.mktemp("small-index") / "idx"
    build_index([small_corpus], path, embedder)
    return path


def copy_of(index: Path, tmp_path: Path, name: str = "idx") -> Path:
    target = tmp_path / name
    shutil.copytree(index, target, ignore=shutil.ignore_patterns(".lock"))
    return target


# --------------------------------------------------------------------------- file names and file kinds


def test_file_name_not_utf8_is_kept_and_shown_escaped(small_corpus, tmp_path, embedder):
    folder = tmp_path / "articles"
    shutil.copytree(small_corpus, folder)
    bad = os.path.join(os.fsencode(folder), b"bad\xffname.txt")
    with open(bad, "w") as fh:
        fh.write("La baleine bleue est le plus grand animal ayant jamais vécu sur Terre.\n")
    index_dir = tmp_path / "idx"
    proc = qa("index", str(folder), "-q", "--index", str(index_dir))
    assert proc.returncode == 0 and "3 documents" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr
    answer = qa("ask", "--json", "-k", "1", "--index", str(index_dir), "quel est le plus grand animal ?")
    hit = json.loads(answer.stdout)["hits"][0]
    assert hit["doc_id"] == "bad\\xffname.txt" and "baleine" in hit["text"]
    document = next(d for d in PassageIndex.open(index_dir).documents if d.doc_id == hit["doc_id"])
    assert os.fsencode(document.file()) == bad and "baleine" in read_text(document.file())
    assert build_index(None, index_dir, embedder).embedded == 0  # found again as the same file


def test_fifo_named_on_the_command_line_is_refused(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    line = one_error(qa("index", str(fifo), "--index", str(tmp_path / "idx"), timeout=60))
    assert line == f"qa: error: not a regular file or folder (a FIFO, socket or device): {fifo}"


def test_fifo_and_device_in_a_folder_are_skipped(small_corpus, tmp_path):
    folder = tmp_path / "articles"
    shutil.copytree(small_corpus, folder)
    os.mkfifo(folder / "pipe.txt")
    (folder / "zero.md").symlink_to("/dev/zero")
    corpus = load_corpus(folder)
    assert {d.doc_id for d in corpus.documents} == {"kim.txt", "tuna.txt"}
    for name in ("pipe.txt", "zero.md"):
        assert f"skipped {folder / name}: not a regular file (a FIFO, socket or device)" in corpus.warnings


# --------------------------------------------------------------------------- long unbroken text


def _letters(n: int) -> str:
    rng = random.Random(15)
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))


def _cut_word(tmp_path: Path, size: int, count) -> tuple[list, int]:
    """Ingest one word of `size` letters; (passages, characters given to the token counter)."""
    folder = tmp_path / f"word{size}"
    folder.mkdir()
    word = _letters(size)
    (folder / "word.txt").write_text(word + "\n")
    seen = [0]

    def counting(text: str) -> int:
        seen[0] += len(text)
        return count(text)

    corpus = load_corpus(folder, count_tokens=counting, max_tokens=500)
    assert "".join(p.text for p in corpus.passages) == word
    return corpus.passages, seen[0]


def test_long_word_is_cut_in_linear_time_with_the_real_tokenizer(tmp_path, embedder):
    """The tokenized text is a fixed multiple of the word, not a multiple of its square."""
    count = _token_counter(embedder)
    passages, work = _cut_word(tmp_path, 1_000_000, count)
    assert all(count(p.text) <= 500 for p in passages)
    assert work < 16 * 1_000_000


def test_five_megabyte_word(tmp_path):
    started = time.perf_counter()
    passages, work = _cut_word(tmp_path, 5_000_000, lambda text: len(text) // 3 + 1)
    assert len(passages) > 1000 and work < 16 * 5_000_000
    assert time.perf_counter() - started < 30
