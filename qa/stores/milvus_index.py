"""A Milvus index's store, checked and searched: opening a Lite file safely, index choice, search.

`connect_checked` opens a store the way a user expects: a Milvus Lite file that does not exist is
not created by a reader, and a damaged one (a file where its folder should be, unreadable or
unwritable, a collection manifest that does not parse) is one line naming it and the command
that rebuilds it, never pymilvus's traceback or its "another process has it open" guess.
`search_rows` maps a store's hits back to a generation's passage rows, skipping keys that
generation does not name (a killed build's rows), and over-fetches until it has k.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexStoreError
from ..records import Passage
from ..text import path_text
from .base import PassageFields, Restriction
from .location import StoreLocation
from .milvus_store import EXACT_BELOW, MAX_LIMIT, NLIST_MAX, MilvusStore

OVERFETCH = 16  # extra hits asked for, so unknown keys (a killed build's, the previous generation's) cost no round trip


class StoreDamagedError(IndexStoreError):
    """The Milvus Lite file cannot be opened as a database: `qa index --full` moves it aside."""


def shown(uri: str, collection: str) -> str:
    """A store record as --store writes it."""
    if uri.startswith(("http://", "https://")):
        return f"{uri}/{collection}"
    return f"milvus:{uri}"


def connect_checked(location: StoreLocation, *, create: bool = False) -> MilvusStore:
    """The store, connected; for Milvus Lite the file is checked first and diagnosed on failure."""
    if not location.lite:
        return MilvusStore.connect(location)
    path = Path(location.uri)
    rebuild = f"`qa index --full --store {location.shown()} PATH...`"
    if not path.exists() and not os.path.islink(path):
        if not create:
            raise IndexStoreError(f"no index in {location.shown()} ({path} does not exist); build it with "
                                  f"`qa index --store {location.shown()} PATH...`")
        blocked = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
        if blocked is not None:
            raise IndexStoreError(f"cannot create {location.shown()}: {path_text(blocked)} is a file, not a folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexStoreError(f"cannot create {location.shown()}: {exc.strerror or exc} "
                                  f"({path_text(exc.filename or path.parent)})") from None
    elif not path.is_dir():
        raise StoreDamagedError(f"{location.shown()} is damaged: {path} is a file, not a Milvus Lite database "
                                f"(a folder); rebuild it with {rebuild}, which moves it aside")
    elif not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise IndexStoreError(f"cannot open {location.shown()}: {path} is not writable (Milvus Lite writes its lock "
                              "and log there even to read)")
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)  # its failed start logs a traceback
    try:
        return MilvusStore.connect(location)
    except IndexStoreError:
        raise IndexStoreError(lite_problem(location, rebuild)) from None


def lite_problem(location: StoreLocation, rebuild: str) -> str:
    """Why Milvus Lite would not open its folder: the database opened directly to learn its error."""
    from milvus_lite import MilvusLite
    from milvus_lite.exceptions import DataDirLockedError

    try:
        MilvusLite(location.uri).close()
    except DataDirLockedError:
        return (f"cannot open {location.shown()}: another process has it open (Milvus Lite serves one process "
                "at a time; a `qa index` may be running)")
    except Exception as exc:  # noqa: BLE001 - whatever the library raises on a damaged folder
        raise StoreDamagedError(f"{location.shown()} is damaged ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:100]}); rebuild it with {rebuild}, which moves it "
                                "aside") from None
    return f"cannot open {location.shown()}: Milvus Lite did not start on it"


def move_aside(location: StoreLocation) -> Path:
    """Rename a damaged Lite file out of the way (never deleted: it may hold what someone wants)."""
    path = Path(location.uri)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    return aside


def passage_fields(p: Passage) -> PassageFields:
    """The documents and dates of every place the passage occurs (filters match any of them)."""
    sources = p.sources()
    return PassageFields(tuple(dict.fromkeys(s.doc_id for s in sources)),
                         tuple(dict.fromkeys(s.date for s in sources if s.date)))


def index_for(n: int) -> dict:
    """The Milvus index of a collection created for about `n` vectors: FLAT (exact, as FAISS
    exact) below EXACT_BELOW, else IVF_FLAT with `nlist_for(n)` lists."""
    if n < EXACT_BELOW:
        return {"index_type": "FLAT"}
    return {"index_type": "IVF_FLAT", "nlist": nlist_for(n)}


def nlist_for(n: int) -> int:
    """IVF lists for a collection of about `n` vectors: 4 sqrt(n), at most NLIST_MAX, and at least 39
    vectors a list (FAISS's k-means warns below that; a small collection gets one list: exact)."""
    return int(max(1, min(NLIST_MAX, 4 * np.sqrt(max(n, 1)), n // 39)))


def hash_rows(passages: Sequence[Passage]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(passages):
        rows.setdefault(p.content_hash(), []).append(i)
    return rows


def search_rows(store: MilvusStore, rows_of: dict[str, list[int]], queries: np.ndarray, k: int,
                subset: np.ndarray | None, restriction: Restriction | None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) [n, k] like FAISS's (-1 where fewer): hits of this generation only, and
    within `subset` when given (the pushed-down filter, checked against local metadata)."""
    allowed = None
    if subset is not None:
        allowed = set(int(r) for r in subset)
    scores = np.full((len(queries), k), -np.inf, np.float32)
    found = np.full((len(queries), k), -1, np.int64)
    for qi, query in enumerate(queries):
        limit = min(MAX_LIMIT, k + OVERFETCH)
        while True:
            hits = store.search(query[None, :], limit, restriction)[0]
            mine = [(row, s) for key, s in hits for row in rows_of.get(key, ()) if allowed is None or row in allowed]
            if len(mine) >= k or len(hits) < limit or limit == MAX_LIMIT:
                break
            limit = min(MAX_LIMIT, limit * 4)
        for j, (row, s) in enumerate(mine[:k]):
            found[qi, j], scores[qi, j] = row, s
    return scores, found
