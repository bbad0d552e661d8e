"""Files on disk done safely: advisory locks, atomic folder swaps, readable modes, sha256.

Shared by the model build (:mod:`qa.model.default`) and its ONNX export (:mod:`qa.model.export`), which
both write a complete folder beside its final place and rename it in.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock on `path` for the time of the block (waits for the holder)."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def make_readable(folder: Path) -> None:
    """mkdtemp and some writers create owner-only modes; a model folder is plain readable data."""
    for item in [folder, *folder.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)


def swap_into_place(staging: Path, dest: Path) -> None:
    """Replace `dest` by the complete folder `staging` (a reader sees the old or the new one)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(staging, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
