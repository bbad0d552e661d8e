"""A Milvus index under hostile conditions (issue 25's Milvus items), on real Milvus Lite files.

The store named by --store is the one used (another .db, a moved one, a missing one that a
reader must not create); a damaged Lite database (a file, random bytes, a truncated or garbled
segment, a zeroed collection manifest) is one line and exit 1, never a traceback nor "another
process has it open", and `qa index --full --store ...` rebuilds it, moving the damaged one aside.
Indexes are built with the fake embedder (fast); `qa ask` runs as a real process and fails on
opening the store, before any model is needed; one repair runs the real `qa index --full`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.errors import IndexStoreError
from qa.stores.location import parse_store

from .conftest import CORPUS, REPO

pytest.importorskip("pymilvus", reason="the scale extra: pip install 'qa[scale]'")

QUESTION = "where did Kim meet Putin?"


def qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd or REPO, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})


def one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: error: "), result.stderr
    assert "Traceback" not in result.stderr and "another process" not in result.stderr
    return lines[0]


def passages_in(store: str) -> int:
    from qa.index import PassageIndex

    index = PassageIndex.open(None, parse_store(store))
    try:
        return len(index)
    finally:
        index.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory, fake_embedder) -> Path:
    """A complete Milvus Lite index of the corpus (fake embedder), copied by each test."""
    from qa.index import build_index

    db = tmp_path_factory.mktemp("milvus-hostile") / "good.db"
    build_index([CORPUS], None, fake_embedder, store=f"milvus:{db}")
    return db


def segment(db: Path) -> Path:
    return next((db / "collections" / "qa_passages").rglob("*.parquet"))


def as_text_file(db: Path) -> None:
    shutil.rmtree(db)
    db.write_text("not a database\n")


def as_random_bytes(db: Path) -> None:
    shutil.rmtree(db)
    db.write_bytes(os.urandom(8192))


def truncated_segment(db: Path) -> None:
    data = segment(db)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def garbled_segment(db: Path) -> None:
    data = segment(db)
    raw = bytearray(data.read_bytes())
    raw[100:4000] = os.urandom(3900)
    data.write_bytes(bytes(raw))


def zeroed_generation_manifests(db: Path) -> None:
    for name in ("manifest.json", "manifest.json.prev"):
        target = db / "collections" / "qa_passages__qa" / name
        if target.exists():
            target.write_bytes(b"\0" * target.stat().st_size)


DAMAGE = [as_text_file, as_random_bytes, truncated_segment, garbled_segment, zeroed_generation_manifests]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__ for d in DAMAGE])
def test_a_damaged_lite_file_is_one_line_and_full_moves_it_aside(tmp_path, built, fake_embedder, damage):
    from qa.index import build_index

    db = tmp_path / "x.db"
    shutil.copytree(built, db)
    damage(db)
    line = one_error(qa("ask", "--store", f"milvus:{db}", QUESTION))
    assert f"milvus:{db} is damaged" in line and f"qa index --full --store milvus:{db}" in line
    with pytest.raises(IndexStoreError, match="is damaged"):  # a build without --full does not replace it
        build_index([CORPUS], None, fake_embedder, store=f"milvus:{db}")
    report = build_index([CORPUS], None, fake_embedder, store=f"milvus:{db}", full=True)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("x.db.damaged-")]
    assert len(aside) == 1 and any("moved the damaged" in w for w in report.warnings)
    assert report.passages == passages_in(f"milvus:{db}") == 53


def test_a_zeroed_passage_collection_manifest_is_not_an_empty_answer(tmp_path, built, fake_embedder):
    """Milvus Lite then sees an empty collection: not 'No passage found.' with exit 0."""
    from qa.index import build_index

    db = tmp_path / "x.db"
    shutil.copytree(built, db)
    manifest = db / "collections" / "qa_passages" / "manifest.json"
    manifest.write_bytes(b"\0" * manifest.stat().st_size)
    line = one_error(qa("ask", "--store", f"milvus:{db}", QUESTION))
    assert "is damaged (53 passages of g000001 are missing)" in line and f"qa index --store milvus:{db}" in line
    build_index([CORPUS], None, fake_embedder, store=f"milvus:{db}")  # the command it names repairs it
    assert passages_in(f"milvus:{db}") == 53


def test_the_store_named_is_the_one_used(tmp_path, built, fake_embedder):
    """Another .db is another index; a moved .db answers where it now is; the old path is 'no
    index' and is not created by asking."""
    from qa.index import build_index

    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(sorted(CORPUS.glob("*.txt"))[0], small)
    other = tmp_path / "other.db"
    build_index([small], None, fake_embedder, store=f"milvus:{other}")
    moved = tmp_path / "moved.db"
    shutil.copytree(built, moved)
    assert passages_in(f"milvus:{moved}") == 53 and 0 < passages_in(f"milvus:{other}") < 53
    gone = tmp_path / "gone.db"
    shutil.copytree(built, gone)
    gone.rename(tmp_path / "renamed.db")
    assert passages_in(f"milvus:{tmp_path / 'renamed.db'}") == 53
    line = one_error(qa("ask", "--store", f"milvus:{gone}", QUESTION))
    assert line == (f"qa: error: no index in milvus:{gone} ({gone} does not exist); build it with "
                    f"`qa index --store milvus:{gone} PATH...`")
    assert not gone.exists()
    line = one_error(qa("stats", "--store", f"milvus:{moved}", "--index", str(tmp_path / "old.db.qa")))
    assert f"--store milvus:{moved} holds the whole index; --index {tmp_path / 'old.db.qa'} is not used" in line


def test_a_new_lite_file_gets_its_folders_or_says_why_not(tmp_path, fake_embedder):
    """Its missing parent folders are made, as an index folder's are; a file in the way is named,
    not taken for another process holding the database."""
    from qa.index import build_index

    nested = tmp_path / "a" / "b" / "x.db"
    assert build_index([CORPUS], None, fake_embedder, store=f"milvus:{nested}").passages == passages_in(
        f"milvus:{nested}") == 53
    (tmp_path / "afile").write_text("in the way\n")
    with pytest.raises(IndexStoreError) as raised:
        build_index([CORPUS], None, fake_embedder, store=f"milvus:{tmp_path / 'afile' / 'x.db'}")
    assert str(raised.value) == f"cannot create milvus:{tmp_path / 'afile' / 'x.db'}: {tmp_path / 'afile'} is a file, not a folder"


def test_qa_index_full_repairs_a_damaged_file_for_qa_ask(tmp_path, embedder):  # embedder: marks it slow
    """The whole repair through the command line, with the real model."""
    db = tmp_path / "x.db"
    db.write_bytes(os.urandom(4096))
    assert "is damaged" in one_error(qa("ask", "--store", f"milvus:{db}", QUESTION))
    rebuilt = qa("index", "-q", "--full", "--store", f"milvus:{db}", str(CORPUS))
    assert rebuilt.returncode == 0 and "moved the damaged" in rebuilt.stderr, rebuilt.stderr
    answer = qa("ask", "-k", "1", "--store", f"milvus:{db}", QUESTION, cwd=tmp_path)
    assert answer.returncode == 0 and "Vladivostok" in answer.stdout, answer.stderr
