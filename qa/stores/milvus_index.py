"""An index generation over a Milvus store: the build's sync and clean-up, the reader's search.

A build (`sync`) makes sure the collection exists with this model, inserts the passages whose
content hash it lacks (and rewrites the few whose documents or dates changed), flushes, and
only after the local generation is live (`clean_up`) deletes the hashes that neither the new
nor the previous generation uses. A reader (`search_rows`) maps hashes back to its
generation's rows, skipping those it does not know, and over-fetches until it has k.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np

from ..errors import IndexStoreError
from ..records import Passage
from .base import PassageFields, Restriction, StoreRecord
from .location import StoreLocation
from .milvus_store import EXACT_BELOW, MAX_LIMIT, NLIST_MAX, MilvusStore

OVERFETCH = 16  # extra hits asked for, so unknown hashes (a killed build's, the previous generation's) cost no round trip


def shown(uri: str, collection: str) -> str:
    """A store record as --store writes it."""
    if uri.startswith(("http://", "https://")):
        return f"{uri}/{collection}"
    return f"milvus:{uri}"


def passage_fields(p: Passage) -> PassageFields:
    """The documents and dates of every place the passage occurs (filters match any of them)."""
    sources = p.sources()
    return PassageFields(tuple(dict.fromkeys(s.doc_id for s in sources)),
                         tuple(dict.fromkeys(s.date for s in sources if s.date)))


def merged_fields(passages: Sequence[Passage]) -> dict[str, PassageFields]:
    """Fields per content hash (passages sharing a hash share one row, so their fields merge)."""
    merged: dict[str, PassageFields] = {}
    for p in passages:
        f, key = passage_fields(p), p.content_hash()
        if key in merged:
            old = merged[key]
            f = PassageFields(tuple(dict.fromkeys(old.doc_ids + f.doc_ids)), tuple(dict.fromkeys(old.dates + f.dates)))
        merged[key] = f
    return merged


def _identity(manifest) -> dict[str, str]:
    return {"model_fingerprint": manifest.model_fingerprint, "model_id": manifest.model_id,
            "dimension": str(manifest.dimension), "format_version": str(manifest.format_version)}


def sync(location: StoreLocation, manifest, previous, passages: Sequence[Passage], vectors: np.ndarray, *,
         rebuild: bool) -> tuple[MilvusStore, StoreRecord, int]:
    """Bring the collection up to `passages` without deleting anything: (store, record, rows written)."""
    store = MilvusStore.connect(location)
    try:
        owner = _owner(store, location, previous, rebuild)
        identity = _identity(manifest)
        if not store.exists():
            store.create(manifest.dimension, {**identity, "owner": owner}, **index_for(len(passages)))
        elif rebuild or store.properties().get("model_fingerprint") != manifest.model_fingerprint:
            store.drop()
            store.create(manifest.dimension, {**identity, "owner": owner}, **index_for(len(passages)))
        else:
            store.load()
        wanted = merged_fields(passages)
        row_of = {p.content_hash(): i for i, p in enumerate(passages)}
        stored = store.stored_fields(list(wanted))
        write = [key for key, f in wanted.items() if stored.get(key) != f]
        if write:
            store.add(write, vectors[[row_of[key] for key in write]], [wanted[key] for key in write])
            store.flush()
        return store, StoreRecord(uri=location.uri, collection=location.collection, owner=owner), len(write)
    except IndexStoreError:
        store.close()
        raise
    except Exception as exc:  # noqa: BLE001 - pymilvus's errors: one line, the previous index intact
        store.close()
        raise IndexStoreError(f"could not write the vectors to {location.shown()} "
                              f"({' '.join(str(getattr(exc, 'message', '') or exc).split())[:160]}); "
                              "the previous index, if any, is unchanged") from None


def _owner(store: MilvusStore, location: StoreLocation, previous, rebuild: bool) -> str:
    """This index's owner id (a new one on its first build); another index's collection is refused
    unless the build replaces it (--full)."""
    mine = previous.store.owner if previous is not None and previous.store is not None else None
    if store.exists() and not rebuild and store.properties().get("owner") != mine:
        raise IndexStoreError(f"the collection {location.collection} of {location.shown()} holds another qa "
                              "index; name another collection (http://HOST:PORT/NAME, another milvus:PATH.db) "
                              "or replace it with --full")
    return mine or uuid.uuid4().hex


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


def clean_up(store: MilvusStore, passages: Sequence[Passage], previous: Sequence[Passage]) -> list[str]:
    """Delete the hashes neither generation uses (stale rows, a killed build's); warnings."""
    keep = {p.content_hash() for p in passages} | {p.content_hash() for p in previous}
    try:
        stale = store.all_ids() - keep
        if stale:
            store.delete(sorted(stale))
    except Exception as exc:  # noqa: BLE001 - the new generation is live: say it, do not fail the build
        return [f"could not delete unused vectors from {store.location.shown()} "
                f"({' '.join(str(exc).split())[:120]}); the next build retries"]
    return []


def open_for_search(manifest, location: StoreLocation, passages: int) -> MilvusStore:
    """The store of a Milvus generation, checked: the collection exists, with this model, loaded."""
    record = manifest.store
    if location.kind != "milvus" or location.uri != record.uri or location.collection != record.collection:
        location = StoreLocation("milvus", location.local, uri=record.uri, collection=record.collection,
                                 token=location.token)
    store = MilvusStore.connect(location)
    try:
        if not store.exists():
            raise IndexStoreError(f"the index at {location.local} keeps its vectors in {location.shown()}, which has no "
                                  f"collection {record.collection}; rebuild it with `qa index --store {location.shown()} --full`")
        props = store.properties()
        if props.get("model_fingerprint") != manifest.model_fingerprint:
            raise IndexStoreError(f"the collection {record.collection} of {location.shown()} was built with model "
                                  f"{props.get('model_id')}, not {manifest.model_id}; rebuild it with "
                                  f"`qa index --store {location.shown()} --full`")
        if props.get("owner") != record.owner:
            raise IndexStoreError(f"the collection {record.collection} of {location.shown()} now holds another qa index; "
                                  f"rebuild this one with `qa index --store {location.shown()} --full`")
        store.load()
        store.dimension = manifest.dimension
    except IndexStoreError:
        store.close()
        raise
    return store


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
