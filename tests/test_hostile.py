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
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.ingest import load_corpus, read_text
from qa.errors import IndexStoreError
from qa.index import PassageIndex, build_index, live_generation, token_counter
from qa.index.writing import build_lock
from qa.ranking.search import Retriever

from .conftest import CORPUS, REPO

QUESTION = "where did Kim meet Putin?"


# --------------------------------------------------------------------------- helpers


# Sets the file size limit, then becomes `python -m qa ...`: a preexec_fn would run Python in a
# child forked from this process, where Ray's and Milvus's gRPC fork handlers may abort it.
_LIMITED = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "limit = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
            "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")


def qa(*args: str, stdin: bytes | None = None, env: dict | None = None, timeout: float = 180,
       file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """`python -m qa ARGS` in a child process; stdout/stderr decoded with replacement. With
    `file_size_limit`, a write past that many bytes fails with EFBIG (as on a full disk)."""
    launch = [sys.executable, "-c", _LIMITED, str(file_size_limit)] if file_size_limit else [sys.executable]
    proc = subprocess.run([*launch, "-m", "qa", *args], input=stdin, capture_output=True, cwd=REPO,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})}, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
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


# --------------------------------------------------------------------------- the CURRENT pointer


@pytest.mark.parametrize("damage", ["deleted", "truncated", "random bytes", "outside"])
def test_bad_current_uses_the_intact_generation(small_index, small_corpus, tmp_path, embedder, damage):
    """Whatever CURRENT holds, when it names no generation readers use the complete one (and say
    so), and a rebuild without PATH uses the index's own sources: the index of another corpus is
    never replaced by corpus/. (CURRENT naming a generation that is gone: tests/test_silent_loss.py.)"""
    index_dir = copy_of(small_index, tmp_path)
    generation = live_generation(index_dir)
    current = index_dir / "CURRENT"
    if damage == "deleted":
        current.unlink()
    elif damage == "truncated":
        current.write_bytes(b"g00")
    elif damage == "random bytes":
        current.write_bytes(bytes(random.Random(15).randrange(256) for _ in range(64)))
    else:
        copy_of(small_index, tmp_path, "other")
        current.write_text("../other/g000001\n")
    assert live_generation(index_dir) == generation
    assert "Vladivostok" in answers(index_dir, embedder)
    stats = qa("stats", "--index", str(index_dir))
    assert stats.returncode == 0 and "using g000001, the newest complete generation" in stats.stdout, stats.stderr
    report = build_index(None, index_dir, embedder)
    assert (report.documents, report.embedded, report.full) == (2, 0, False)
    assert any("updated from g000001" in w for w in report.warnings)
    after = PassageIndex.open(index_dir)
    assert after.manifest.sources == [str(small_corpus.resolve())] and after.note is None
    full = qa("index", "--full", "-q", "--index", str(index_dir))
    assert full.returncode == 0 and "2 documents" in full.stdout, full.stderr


def test_current_outside_the_folder_is_not_followed(small_index, tmp_path):
    """`../other/g000001` names a real index elsewhere; it is not read, even with nothing here."""
    copy_of(small_index, tmp_path, "other")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "CURRENT").write_text("../other/g000001\n")
    assert live_generation(victim) is None
    line = one_error(qa("ask", "--index", str(victim), QUESTION))
    assert line == f"qa: error: no index at {victim}; build it with `qa index PATH... --index {victim}`"


def test_rebuild_without_record_refuses_instead_of_using_corpus(small_index, tmp_path):
    """No readable manifest or sources.json anywhere: `qa index --index X` names PATH and keeps
    the files, instead of filling X with the shipped corpus and deleting the generation."""
    index_dir = copy_of(small_index, tmp_path)
    generation = live_generation(index_dir)
    (generation / "manifest.json").write_text('{"format_version": 2, "mod')
    (generation / "sources.json").unlink()
    files = sorted(p.name for p in generation.iterdir())
    expected = (f"qa: error: the index at {index_dir} has no readable record of what it was built from; "
                f"name it: `qa index PATH --index {index_dir}`")
    for full in ([], ["--full"]):
        assert one_error(qa("index", *full, "--index", str(index_dir))) == expected
    assert sorted(p.name for p in generation.iterdir()) == files  # nothing deleted
    ask = one_error(qa("ask", "--index", str(index_dir), QUESTION))
    assert ask == (f"qa: error: the index at {index_dir} is damaged (its live generation g000001 has an unreadable "
                   f"manifest.json); repair it with `qa index PATH --index {index_dir}`")


def test_new_folder_without_path_is_refused(tmp_path):
    target = tmp_path / "new"
    line = one_error(qa("index", "--index", str(target)))
    assert line == f"qa: error: what should {target} index? name the files or folders: `qa index PATH --index {target}`"


def test_truncated_manifest_advice_works(small_index, tmp_path, embedder):
    """The advice printed for a truncated manifest is a command that repairs the index."""
    index_dir = copy_of(small_index, tmp_path)
    manifest = live_generation(index_dir) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])
    line = one_error(qa("ask", "--index", str(index_dir), QUESTION))
    advice = f"repair it with `qa index --index {index_dir}`"
    assert line.endswith(advice), line
    repaired = qa("index", "-q", "--index", str(index_dir))
    assert repaired.returncode == 0 and "2 documents" in repaired.stdout, repaired.stderr
    manifest = live_generation(index_dir) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])
    again = qa("index", "--full", "-q", "--index", str(index_dir))
    assert again.returncode == 0 and "2 documents" in again.stdout, again.stderr
    assert "Vladivostok" in answers(index_dir, embedder)


# --------------------------------------------------------------------------- damaged arrays


def _garbage_spans(generation: Path) -> None:
    """sentence_spans.npy with its valid header and random data of the same size after it."""
    path = generation / "sentence_spans.npy"
    spans = np.load(path)
    np.save(path, np.random.default_rng(15).integers(-2**31, 2**31 - 1, spans.shape, dtype=np.int32))


def _nan_vectors(generation: Path) -> None:
    path = generation / "vectors.npy"
    vectors = np.load(path)
    vectors[3] = np.nan
    np.save(path, vectors)


def _nan_tokens(generation: Path) -> None:
    path = generation / "token_codes.npy"  # int8 values, then each token's float32 scale
    codes = np.load(path)
    codes[np.load(generation / "token_offsets.npy")[5] + 2, -4:] = np.frombuffer(np.float32(np.inf).tobytes(), np.uint8)
    np.save(path, codes)


def _short_vectors(generation: Path) -> None:
    path = generation / "vectors.npy"
    np.save(path, np.load(path)[:-1])


@pytest.mark.parametrize("damage, message, repaired", [
    (_garbage_spans, "sentence_spans.npy: sentence owners are not in passage order", None),
    (_nan_vectors, "1 passages have vectors that are not finite unit vectors", 1),
    (_nan_tokens, "1 passages have vectors that are not finite unit vectors", 1),
    (_short_vectors, None, None),
])
def test_damaged_arrays_are_refused_then_repaired(corpus_index, tmp_path, embedder, damage, message, repaired):
    """Open refuses (one line, in `qa ask` and `qa stats`, exit 1); an incremental `qa index`
    re-embeds what is damaged instead of keeping it; then the index answers."""
    index_dir = copy_of(corpus_index, tmp_path)
    damage(live_generation(index_dir))
    with pytest.raises(IndexStoreError) as error:
        PassageIndex.open(index_dir)
    text = str(error.value)
    assert text.startswith(f"the index at {index_dir} is damaged (") and (message is None or message in text)
    assert text.endswith(f"; repair it with `qa index --index {index_dir}`")
    for command in (["ask", QUESTION], ["stats"]):
        assert one_error(qa(*command, "--index", str(index_dir))) == f"qa: error: {text}"
    report = build_index(None, index_dir, embedder)
    if repaired:
        assert report.embedded == repaired and f"re-embedded {repaired} passages" in " ".join(report.warnings)
    else:
        assert report.full and "damaged" in report.reason and report.embedded == report.passages
    index = PassageIndex.open(index_dir)
    assert np.isfinite(index.vectors).all() and np.isfinite(index.tokens.codec.decode(np.asarray(index.tokens.codes))).all()
    assert "Vladivostok" in answers(index_dir, embedder)


# --------------------------------------------------------------------------- the build lock


@pytest.mark.slow  # `qa index` loads the model's tokenizer
def test_lock_where_the_folder_cannot_be_written(tmp_path):
    line = one_error(qa("index", str(CORPUS), "--index", "/proc"))
    assert line == ("qa: error: cannot create /proc/.lock (No such file or directory): "
                    "the index folder /proc cannot be written")


def test_lock_in_an_immutable_folder(small_index, small_corpus, tmp_path, embedder):
    """chattr +i: nothing can be created in the folder, not even by root; with and without a `.lock`."""
    index_dir = copy_of(small_index, tmp_path)
    (index_dir / ".lock").touch()
    if subprocess.run(["chattr", "+i", str(index_dir)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    try:
        with_lock = one_error(qa("index", "-q", "--index", str(index_dir)))
        subprocess.run(["chattr", "-i", str(index_dir)], check=True)
        (index_dir / ".lock").unlink()
        subprocess.run(["chattr", "+i", str(index_dir)], check=True)
        without_lock = one_error(qa("index", "-q", "--index", str(index_dir)))
    finally:
        subprocess.run(["chattr", "-i", str(index_dir)], check=True)
    assert with_lock == (f"qa: error: could not write the index at {index_dir} (Operation not permitted); "
                         "the previous index, if any, is unchanged")
    assert without_lock == (f"qa: error: cannot create {index_dir}/.lock (Operation not permitted): "
                            f"the index folder {index_dir} cannot be written")
    _no_leftovers(index_dir)
    assert "Vladivostok" in answers(index_dir, embedder)


def test_lock_that_is_a_folder_still_locks(small_index, small_corpus, tmp_path, embedder):
    index_dir = copy_of(small_index, tmp_path)
    (index_dir / ".lock").mkdir()
    with build_lock(index_dir):
        with pytest.raises(IndexStoreError, match="another `qa index` is building"):
            with build_lock(index_dir):
                pass
    for _ in range(2):  # updated, and updated again: the folder is no obstacle
        proc = qa("index", "-q", "--index", str(index_dir))
        assert proc.returncode == 0 and "embedded 0 passages" in proc.stdout, proc.stderr
    assert "Vladivostok" in answers(index_dir, embedder)


# --------------------------------------------------------------------------- disk full


def _no_leftovers(index_dir: Path) -> None:
    assert not [p.name for p in index_dir.iterdir() if p.name.startswith((".tmp-g", ".CURRENT.tmp-"))]


def test_size_limited_write_leaves_the_index_and_no_staging(corpus_index, tmp_path, embedder):
    """A real write refused by the kernel past 100 kB (RLIMIT_FSIZE) while writing a generation."""
    index_dir = copy_of(corpus_index, tmp_path)
    before = live_generation(index_dir)
    for _ in range(2):  # failed attempts do not pile up
        line = one_error(qa("index", "--full", "-q", "--index", str(index_dir), file_size_limit=100_000))
        assert re.fullmatch(re.escape(f"qa: error: could not write the index at {index_dir} (disk full or file size "
                                      "limit reached: ") + r"\d+ requested and \d+ written\); the previous index, "
                            r"if any, is unchanged", line), line
        _no_leftovers(index_dir)
    assert live_generation(index_dir) == before
    assert "Vladivostok" in answers(index_dir, embedder)


def test_faiss_write_error_is_one_line_and_cleans_up(corpus_index, tmp_path, embedder, monkeypatch):
    """faiss reports a full disk as RuntimeError: its real error, from a write to /dev/full."""
    import faiss

    index_dir = copy_of(corpus_index, tmp_path)
    real = faiss.write_index
    monkeypatch.setattr(faiss, "write_index", lambda index, path: real(index, "/dev/full"))
    with pytest.raises(IndexStoreError) as error:
        build_index(None, index_dir, embedder, full=True)
    assert str(error.value) == (f"could not write the index at {index_dir} (No space left on device); "
                                "the previous index, if any, is unchanged")
    _no_leftovers(index_dir)
    monkeypatch.undo()
    assert "Vladivostok" in answers(index_dir, embedder)


def test_full_tmpfs_fails_in_faiss_write(corpus_index, tmp_path, embedder):
    """A real small filesystem with room for the index and the next generation up to half of
    faiss.index (the last big file): faiss.write_index hits ENOSPC, a RuntimeError."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    pages = {f.name: -(-f.stat().st_size // 4096) for f in live_generation(corpus_index).iterdir()}
    before_faiss = ("passages.jsonl", "documents.json", "vectors.npy", "sentence_spans.npy", "token_codes.npy",
                    "token_offsets.npy", "token_sentences.npy")
    room = sum(pages.values()) + 2 + sum(pages[n] for n in before_faiss) + pages["faiss.index"] // 2
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room * 4096}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        index_dir = copy_of(corpus_index, mount)
        free = shutil.disk_usage(mount).free
        line = one_error(qa("index", "--full", "-q", "--index", str(index_dir)))
        assert line == (f"qa: error: could not write the index at {index_dir} (No space left on device); "
                        "the previous index, if any, is unchanged")
        _no_leftovers(index_dir)
        assert shutil.disk_usage(mount).free == free
        assert "Vladivostok" in answers(index_dir, embedder)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


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
    count = token_counter(embedder)
    passages, work = _cut_word(tmp_path, 1_000_000, count)
    assert all(count(p.text) <= 500 for p in passages)
    assert work < 16 * 1_000_000


def test_five_megabyte_word(tmp_path):
    started = time.perf_counter()
    passages, work = _cut_word(tmp_path, 5_000_000, lambda text: len(text) // 3 + 1)
    assert len(passages) > 1000 and work < 16 * 5_000_000
    assert time.perf_counter() - started < 30


# --------------------------------------------------------------------------- questions that are not text


def test_undecodable_stdin_is_replaced_and_reported_once(corpus_index):
    latin1 = "où Kim a-t-il rencontré Poutine ?\n".encode("latin-1")
    stdin = latin1 + b"\xff\xfe where did Kim meet Putin? \x80\n"
    proc = qa("ask", "--json", "-k", "1", "--index", str(corpus_index), stdin=stdin)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "qa: warning: standard input is not valid UTF-8; undecodable bytes were replaced by \ufffd"]
    questions = [json.loads(line)["question"] for line in proc.stdout.splitlines()]
    assert questions == ["o\ufffd Kim a-t-il rencontr\ufffd Poutine ?", "\ufffd\ufffd where did Kim meet Putin? \ufffd"]


def test_question_with_surrogates_is_answered(retriever):
    """A str carrying undecodable bytes (from argv or a surrogateescape stream) is still answered."""
    answer = retriever.ask("where did Kim meet Putin\udcff?", k=1)
    assert answer.question == "where did Kim meet Putin\ufffd?" and "Vladivostok" in answer.hits[0].text


def test_undecodable_bytes_typed_in_the_repl(retriever, tmp_path):
    from prompt_toolkit.input import create_pipe_input

    from qa.repl import Repl

    from .test_repl import capture_output, plain

    output, buffer = capture_output()
    with create_pipe_input() as pipe:
        pipe.send_bytes(b"where did Kim meet Putin\xff?\r" + "o\xf9 est Kim\r".encode("latin-1") + b":quit\r")
        code = Repl(lambda: retriever, input=pipe, output=output, history_path=tmp_path / "history").run()
    text = plain(buffer.getvalue())
    assert code == 0 and "Traceback" not in text and "error" not in text, text
    assert text.count("note: the input is not valid UTF-8; undecodable bytes were replaced by \ufffd") == 1
    assert "Vladivostok" in text


# --------------------------------------------------------------------------- malformed datasets


def _dataset(tmp_path: Path, corpus_rows: list[str], query_rows: list[str]) -> Path:
    folder = tmp_path / "dataset"
    folder.mkdir()
    good = '{"id": "p1", "doc_id": "d1", "text": "Kim met Putin in Vladivostok."}'
    (folder / "corpus.jsonl").write_text("\n".join([good, "", *corpus_rows]) + "\n")
    query = '{"id": "q1", "question": "where did Kim meet Putin?", "gold_ids": ["p1"]}'
    (folder / "queries.jsonl").write_text("\n".join([query, *query_rows]) + "\n")
    return folder


@pytest.mark.parametrize("corpus_rows, query_rows, where, problem", [
    (['{"id": "p2", "text": "no document"}'], [], "corpus.jsonl, line 3", "field 'doc_id': field required"),
    (['["p2", "d2", "an array"]'], [], "corpus.jsonl, line 3", "the row is not a JSON object"),
    (['{"id": 2, "doc_id": 7, "text": 3.5}'], [], "corpus.jsonl, line 3", "field 'text': input should be a valid string"),
    ([], ['{"id": "q2", "question": 42, "gold_ids": ["p1"]}'], "queries.jsonl, line 2",
     "field 'question': input should be a valid string"),
    ([], ['{"id": "q2", "question": "who?", "gold_ids": []}'], "queries.jsonl, line 2",
     "field 'gold_ids': list should have at least 1 item after validation, not 0"),
    ([], ['{"id": "q2", "question": "who?", "gold_ids": [1, 2'], "queries.jsonl, line 2", "not valid JSON"),
])
def test_malformed_dataset_rows(tmp_path, corpus_rows, query_rows, where, problem):
    folder = _dataset(tmp_path, corpus_rows, query_rows)
    line = one_error(qa("eval", str(folder), timeout=60))
    assert line.startswith(f"qa: error: {folder / where.split(',')[0]}, line {where.split()[-1]}: {problem}"), line


# --------------------------------------------------------------------------- the last resort


def test_unexpected_error_is_one_line_unless_qa_debug(corpus_index):
    probe = ("import sys, qa.cli as cli\n"
             "def broken(args):\n    raise ZeroDivisionError('division by zero')\n"
             f"cli.cmd_stats = broken\nsys.exit(cli.main(['stats', '--index', {str(corpus_index)!r}]))\n")
    run = lambda env: subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,  # noqa: E731
                                     env={**os.environ, **env}, timeout=60)
    quiet = run({"QA_DEBUG": ""})
    assert one_error(quiet) == ("qa: error: unexpected ZeroDivisionError in `qa stats`: division by zero; "
                                "QA_DEBUG=1 shows the traceback")
    loud = run({"QA_DEBUG": "1"})
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "ZeroDivisionError" in loud.stderr


def test_unexpected_error_in_the_repl(retriever, tmp_path, monkeypatch):
    from qa.repl import Repl

    from .test_repl import capture_output, plain

    def broken(self, arg):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(Repl, "_cmd_stats", broken)
    for debug in ("", "1"):
        monkeypatch.setenv("QA_DEBUG", debug)
        output, buffer = capture_output()
        repl = Repl(lambda: retriever, input=None, output=output, history_path=tmp_path / "history")
        assert repl.handle_line(":stats") is True
        text = plain(buffer.getvalue())
        assert ("error: unexpected ZeroDivisionError in :stats: division by zero; QA_DEBUG=1 shows the traceback"
                in text)
        assert ("Traceback" in text) == bool(debug)
