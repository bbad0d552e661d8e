"""Writing a generation atomically: staged, fsynced, then switched in; one build at a time.

A build writes a new generation beside the live one and only then replaces CURRENT, so a build
killed at any moment (kill -9 included) leaves the previous index intact; a failed write removes
what it staged. Older generations than the previous one are removed after the switch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import IndexStoreError
from ..records import Corpus
from .generations import live_damage, live_generation, newest_complete
from .integrity import Vectors
from .manifest import IndexManifest, make_faiss_index
from .tokens import FILES as TOKEN_FILES


@contextlib.contextmanager
def build_lock(index_dir: Path):
    """An exclusive flock on `.lock` (a folder of that name is locked as well as a file)."""
    fd = _open_lock(index_dir / ".lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexStoreError(f"another `qa index` is building {index_dir}; wait for it to finish") from None
        except OSError as exc:
            raise IndexStoreError(f"cannot lock {index_dir / '.lock'} ({exc.strerror or exc})") from None
        yield
    finally:
        os.close(fd)


def _open_lock(lock: Path) -> int:
    """A descriptor to flock: read-only, so a read-only `.lock` file or a `.lock` folder still works."""
    try:
        return os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    except IsADirectoryError:
        pass
    except OSError as exc:
        raise IndexStoreError(f"cannot create {lock} ({exc.strerror or exc}): "
                              f"the index folder {lock.parent} cannot be written") from None
    try:
        return os.open(lock, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise IndexStoreError(f"cannot open {lock} ({exc.strerror or exc})") from None


def write_generation(index_dir: Path, manifest: IndexManifest, corpus: Corpus, vectors: Vectors) -> None:
    """Write a complete new generation, fsync it, then switch CURRENT to it atomically.

    A failed write (disk full included) removes its staging folder and pointer file, so failed
    attempts do not pile up and keep the disk full.
    """
    previous = _previous_generation(index_dir)
    number = 1 + max([int(p.name[1:]) for p in index_dir.glob("g[0-9]*") if p.name[1:].isdigit()] or [0])
    generation = index_dir / f"g{number:06d}"
    staging = index_dir / f".tmp-g{number:06d}-{os.getpid()}"
    pointer = index_dir / f".CURRENT.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        _write_files(staging, manifest, corpus, vectors)
        os.replace(staging, generation)
        pointer.write_text(generation.name + "\n")
        _fsync(pointer)
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        pointer.unlink(missing_ok=True)
        raise
    _fsync(index_dir)
    _remove_stale(index_dir, keep={generation.name, previous.name if previous else ""})


def _previous_generation(index_dir: Path) -> Path | None:
    """The generation kept beside the new one for readers that have it open: the live one, or,
    when the live one is damaged (it is replaced, not kept), the newest complete one."""
    if live_damage(index_dir) is not None:
        return newest_complete(index_dir)
    return live_generation(index_dir)


def _write_files(staging: Path, manifest: IndexManifest, corpus: Corpus, vectors: Vectors) -> None:
    """Every file of a generation, fsynced; the manifest last, and the sources in it and beside it."""
    import faiss

    with open(staging / "passages.jsonl", "w", encoding="utf-8") as fh:
        for p in corpus.passages:
            fh.write(p.model_dump_json() + "\n")
    (staging / "documents.json").write_text(
        json.dumps([d.model_dump() for d in corpus.documents], ensure_ascii=False, indent=1), encoding="utf-8")
    np.save(staging / "vectors.npy", vectors.passages)
    np.save(staging / "sentence_spans.npy", vectors.spans)
    tokens = vectors.tokens
    for name, array in zip(TOKEN_FILES, (tokens.codes, tokens.offsets, tokens.sentences)):
        np.save(staging / name, np.ascontiguousarray(array))
    if manifest.store is None:  # a Milvus store searches the passages instead
        faiss.write_index(make_faiss_index(vectors.passages, manifest.faiss), str(staging / "faiss.index"))
    raw = manifest.raw_sources or [None] * len(manifest.sources)
    (staging / "sources.json").write_text(json.dumps({"sources": manifest.sources, "raw_sources": raw}, indent=1))
    (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    for item in staging.iterdir():
        _fsync(item)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(index_dir: Path, keep: set[str]) -> None:
    """Generations older than the previous one, and leftovers of killed builds."""
    for item in index_dir.iterdir():
        stale_generation = item.name.startswith("g") and item.name[1:].isdigit() and item.name not in keep
        if stale_generation or item.name.startswith((".tmp-g", ".CURRENT.tmp-")):
            if item.name.endswith(f"-{os.getpid()}"):
                continue
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)


def write_error(exc: OSError | RuntimeError) -> str:
    """The cause of a failed write in a few words; faiss puts errno's text inside a long message,
    and numpy reports a short write (disk full, file size limit) with byte counts only."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    for known in ("No space left on device", "File too large", "Permission denied", "Read-only file system"):
        if known in text:
            return known
    if "requested and" in text and "written" in text:
        return f"disk full or file size limit reached: {text[:80]}"
    return text[:120]
