"""An index that lives wholly in a Milvus store: rows encoded and decoded, the live generation read.

Nothing of a Milvus index is on the reader's disk. A row holds a passage's record (its text,
sources and sentence spans, as ASCII JSON), its vector and its int8 tokens (base64, over up to
TOKEN_FIELDS VARCHAR fields); the generations that name rows are in the metadata collection
(:mod:`qa.stores.milvus_meta`). :class:`StoredIndex` reads the live generation's manifest,
documents and every passage record at open (the ranking's BM25 needs the text: Milvus Lite's
own full-text search has no stemming or accent folding, see README), and fetches vectors and
tokens for the candidates of each question only, one query for the candidates' vectors and one
for the reranked ones' tokens, kept in a bounded cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexStoreError
from ..records import Document, Passage
from ..stores import milvus_index
from ..stores.base import Restriction
from ..stores.location import StoreLocation
from ..stores.milvus_meta import GenerationLog
from ..stores.milvus_store import SCHEMA_VERSION, TOKEN_FIELDS, VARCHAR_MAX, MilvusStore
from .manifest import IndexManifest
from .stats import IndexStats
from .tokens import Int8Codec, TokenBlock

CACHE_ROWS = 2048  # rows whose vector and tokens a reader keeps (~140 MB of tokens at PIAF's 70 KB)


# ---------------------------------------------------------------------- rows


def record_json(passage: Passage, spans: np.ndarray) -> tuple[str, int]:
    """(the row's record: passage and sentence spans as ASCII JSON, sources dropped to fit).

    A server's VARCHAR holds 65,535 bytes: a passage cited in thousands of places keeps the
    first sources that fit (the second value says how many were dropped)."""
    spans_list = [[int(a), int(b)] for a, b in np.asarray(spans).reshape(-1, 2)]
    others = list(passage.other_sources)
    keep = len(others)
    while True:
        trimmed = passage if keep == len(others) else passage.model_copy(update={"other_sources": others[:keep]})
        text = json.dumps({"passage": trimmed.model_dump(mode="json"), "spans": spans_list}, ensure_ascii=True,
                          separators=(",", ":"))
        if len(text) <= VARCHAR_MAX or keep == 0:
            return text, len(others) - keep
        keep = keep * 3 // 4


def parse_record(text: str) -> tuple[Passage, np.ndarray]:
    data = json.loads(text)
    return Passage.model_validate(data["passage"]), np.asarray(data["spans"], np.int32).reshape(-1, 2)


def row_key(fingerprint: str, record: str) -> str:
    """A row's primary key: the model and the whole record, so a written row never changes."""
    return hashlib.sha256(f"{fingerprint}\0{record}".encode()).hexdigest()


def encode_tokens(block: TokenBlock) -> dict[str, str]:
    """A passage's tokens as the TOKEN_FIELDS of its row (sentence numbers, then the int8 codes)."""
    raw = np.uint32(len(block.codes)).tobytes() + np.asarray(block.sentences, np.uint16).tobytes() + \
        np.ascontiguousarray(block.codes, np.uint8).tobytes()
    text = base64.b64encode(raw).decode("ascii")
    parts = [text[i:i + VARCHAR_MAX] for i in range(0, len(text), VARCHAR_MAX)]
    if len(parts) > len(TOKEN_FIELDS):
        raise IndexStoreError(f"a passage of {len(block.codes)} tokens does not fit in a Milvus row "
                              f"({len(TOKEN_FIELDS)} x {VARCHAR_MAX} characters)")
    return {name: parts[i] if i < len(parts) else "" for i, name in enumerate(TOKEN_FIELDS)}


def decode_tokens(row: dict, width: int) -> TokenBlock:
    raw = base64.b64decode("".join(row.get(name) or "" for name in TOKEN_FIELDS))
    count = int(np.frombuffer(raw[:4], np.uint32)[0]) if raw else 0
    sentences = np.frombuffer(raw[4:4 + 2 * count], np.uint16)
    codes = np.frombuffer(raw[4 + 2 * count:], np.uint8)
    if len(sentences) != count or len(codes) != count * width:
        raise ValueError("a row's tokens are cut")
    return TokenBlock(codes.reshape(count, width), sentences)


# ---------------------------------------------------------------------- opening


def open_log(location: StoreLocation, *, create: bool = False) -> tuple[MilvusStore, GenerationLog]:
    """The store and its generation log, connected (a Lite file that does not exist is not created
    unless `create`)."""
    store = milvus_index.connect_checked(location, create=create)
    log = GenerationLog(store.client, location.collection)
    try:
        if log.exists():
            log.load()
    except Exception as exc:  # noqa: BLE001 - a collection Milvus cannot load: damage, in one line
        store.close()
        raise unreadable(location, exc) from None
    return store, log


def unreadable(location: StoreLocation, exc: BaseException) -> IndexStoreError:
    """The one-line error for a store that fails while it is read: a damaged Lite folder (moved
    aside by `qa index --full`), or a server's error."""
    what = " ".join(str(getattr(exc, "message", "") or exc).split())[:140]
    if location.lite:
        return milvus_index.StoreDamagedError(
            f"{location.shown()} is damaged ({what}); rebuild it with `qa index --full --store {location.shown()} "
            "PATH...`, which moves it aside")
    return IndexStoreError(f"cannot read the index in {location.shown()} ({what})")


def read_live(location: StoreLocation, store: MilvusStore, log: GenerationLog):
    """(generation, manifest, note) of the live generation; IndexStoreError when there is none."""
    shown = location.shown()
    if store.exists() and store.schema_version() != SCHEMA_VERSION:
        raise IndexStoreError(f"the collection {location.collection} of {shown} was written by an older qa (vectors "
                              f"only); rebuild it with `qa index --full --store {shown} PATH...`")
    if not store.exists() or not log.exists():
        raise IndexStoreError(f"no index in {shown}; build it with `qa index --store {shown} PATH...`")
    store.load()
    name, problem = log.live()
    if name is None:
        raise IndexStoreError(f"the index in {shown} is damaged (no generation is complete); rebuild it with "
                              f"`qa index --full --store {shown} PATH...`")
    try:
        generation = log.read(name)
        manifest = IndexManifest.model_validate(generation.manifest)
    except ValueError as exc:
        raise IndexStoreError(f"the index in {shown} is damaged ({' '.join(str(exc).split())[:120]}); rebuild it "
                              f"with `qa index --full --store {shown}`") from None
    note = f"{problem}; using {name}, the newest complete generation" if problem else None
    return generation, manifest, note


class StoredIndex:
    """The live generation of a Milvus index: records in memory, vectors and tokens fetched; read
    as a :class:`qa.index.reading.PassageIndex` is (passages, documents, vectors, tokens, search)."""

    def __init__(self, location: StoreLocation, store: MilvusStore, name: str, manifest: IndexManifest,
                 keys: list[str], passages: list[Passage], documents: list[Document], spans: list[np.ndarray]):
        self.path, self.location, self.generation, self.manifest = location.shown(), location, name, manifest
        self.passages, self.documents, self.keys = passages, documents, keys
        self.sentence_spans = np.concatenate([np.column_stack([np.full(len(s), i, np.int32), s]) for i, s in
                                              enumerate(spans)]).astype(np.int32) if spans else np.zeros((0, 3), np.int32)
        self.sentence_offsets = np.searchsorted(self.sentence_spans[:, 0], np.arange(len(passages) + 1)).astype(np.int64)
        self.faiss_passages = None
        self.note = None
        self.store = store
        self._hash_rows = {key: [i] for i, key in enumerate(keys)}
        self.rows = _RowCache(store, keys, manifest.dimension)
        self.vectors = _Vectors(self.rows, len(passages), manifest.dimension)
        self.tokens = _Tokens(self.rows, Int8Codec(manifest.dimension))

    @classmethod
    def open(cls, location: StoreLocation) -> StoredIndex:
        store, log = open_log(location)
        try:
            generation, manifest, note = read_live(location, store, log)
            store.dimension = manifest.dimension
            found = store.fetch(generation.rows, ["record"])
            missing = len(generation.rows) - len(found)
            if missing:
                raise IndexStoreError(f"the index in {location.shown()} is damaged ({missing} passages of "
                                      f"{generation.name} are missing); repair it with "
                                      f"`qa index --store {location.shown()}`")
            passages, spans = zip(*(parse_record(found[key]["record"]) for key in generation.rows)) \
                if generation.rows else ((), ())
            documents = [Document.model_validate(d) for d in generation.documents]
        except IndexStoreError:
            store.close()
            raise
        except Exception as exc:  # noqa: BLE001 - pymilvus's errors, a record that does not parse: one line
            store.close()
            raise unreadable(location, exc) from None
        index = cls(location, store, generation.name, manifest, generation.rows, list(passages), documents, list(spans))
        index.note = note
        return index

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None,
               restriction=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k passage rows by vector, from Milvus (filters pushed down as `restriction`; `subset`
        checks the hits against this generation's own metadata)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if subset is not None and restriction is not None:
            restriction = self._by_first_source(subset, restriction)
        return milvus_index.search_rows(self.store, self._hash_rows, queries, min(k, len(self.passages)), subset,
                                        restriction)

    def _by_first_source(self, subset: np.ndarray, restriction: Restriction) -> Restriction:
        """The restriction on the indexed first-source fields, plus the rows of `subset` (every
        match, known from the records) that only another source lets in."""
        docs, dates = restriction.doc_ids, restriction.dates
        beyond = frozenset(self.keys[row] for row in subset.tolist()
                           if (docs is not None and self.passages[row].doc_id not in docs)
                           or (dates is not None and self.passages[row].date not in dates))
        return Restriction(doc_ids=docs, dates=dates, beyond_primary=beyond)

    def close(self) -> None:
        """Release the store's connection (Milvus Lite serves one process at a time)."""
        self.store.close()

    def damage(self) -> str | None:
        return None

    def describe(self) -> IndexStats:
        return stored_stats(self.location, self.store, self.generation, self.manifest, self.note)


def stored_stats(location: StoreLocation, store: MilvusStore, name: str, manifest: IndexManifest,
                 note: str | None) -> IndexStats:
    """`qa stats` of a Milvus index: the Milvus index type, not a FAISS one."""
    described = store.client.describe_index(store.collection, "vector") or {}
    kind = described.get("index_type", "?")
    nlist = (described.get("params") or {}).get("nlist") or described.get("nlist")
    return IndexStats(index=location.shown(), generation=name, documents=manifest.documents,
                      passages=manifest.passages, model=manifest.model_id,
                      passage_precision=manifest.passage_precision, dimension=manifest.dimension,
                      faiss="none", exact=kind == "FLAT",
                      bytes_on_disk=_lite_bytes(location), built_at=_time(manifest.built_at), sources=manifest.sources,
                      store=location.shown(), vector_index=f"{kind}{f' (nlist {nlist})' if nlist else ''}", note=note)


def _lite_bytes(location: StoreLocation) -> int:
    """The size of a Milvus Lite folder (all its collections); 0 for a server, whose disk is not ours."""
    if not location.lite:
        return 0
    folder = Path(location.uri)
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def describe_stored(location: StoreLocation) -> IndexStats:
    """The statistics of a Milvus index without reading its passages (manifest and index only)."""
    store, log = open_log(location)
    try:
        generation, manifest, note = read_live(location, store, log)
        return stored_stats(location, store, generation.name, manifest, note)
    except IndexStoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - pymilvus's errors: one line
        raise unreadable(location, exc) from None
    finally:
        store.close()


def _time(stamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


# ---------------------------------------------------------------------- vectors and tokens on demand


class _RowCache:
    """Vectors and token blocks of recently ranked rows, fetched in one query per kind and call."""

    def __init__(self, store: MilvusStore, keys: list[str], dimension: int):
        self.store, self.keys, self.dimension = store, keys, dimension
        self.width = Int8Codec(dimension).width
        self.vectors: OrderedDict[int, np.ndarray] = OrderedDict()
        self.blocks: OrderedDict[int, TokenBlock] = OrderedDict()
        self.lock = threading.Lock()
        self.queries = 0  # round trips made, for tests and benchmarks

    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([self._get(rows, self.vectors, ["vector"], self._vector)[r] for r in rows.tolist()]) \
            if len(rows) else np.zeros((0, self.dimension), np.float32)

    def blocks_of(self, rows: np.ndarray) -> list[TokenBlock]:
        found = self._get(rows, self.blocks, list(TOKEN_FIELDS), lambda row: decode_tokens(row, self.width))
        return [found[r] for r in rows.tolist()]

    @staticmethod
    def _vector(row: dict) -> np.ndarray:
        return np.asarray(row["vector"], np.float32)

    def _get(self, rows: np.ndarray, cache: OrderedDict, fields: list[str], convert) -> dict:
        wanted = list(dict.fromkeys(int(r) for r in rows.tolist()))
        with self.lock:
            have = {r: cache[r] for r in wanted if r in cache}
            for r in have:
                cache.move_to_end(r)
        missing = [r for r in wanted if r not in have]
        if missing:
            fetched = self.store.fetch([self.keys[r] for r in missing], fields, batch=max(len(missing), 1))
            self.queries += 1
            for r in missing:
                row = fetched.get(self.keys[r])
                if row is None:
                    raise IndexStoreError(f"the index in {self.store.location.shown()} lost a passage's row while "
                                          "it was read; reopen it")
                have[r] = convert(row)
            with self.lock:
                for r in missing:
                    cache[r] = have[r]
                while len(cache) > CACHE_ROWS:
                    cache.popitem(last=False)
        return have


class _Vectors:
    """The passage vectors as an array-like: `vectors[rows]`, `vectors[i]`, fetched on demand."""

    def __init__(self, rows: _RowCache, n: int, dimension: int):
        self.rows, self.shape, self.dtype = rows, (n, dimension), np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.rows.vectors_of(np.asarray([int(key)]))[0]
        rows = np.arange(self.shape[0])[key] if isinstance(key, slice) else np.asarray(key, np.int64)
        return self.rows.vectors_of(rows)


class _Tokens:
    """The token store's reading side (:class:`qa.index.tokens.TokenStore`) over fetched rows."""

    def __init__(self, rows: _RowCache, codec: Int8Codec):
        self.rows, self.codec = rows, codec

    def similarities(self, question: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blocks = self.rows.blocks_of(np.asarray(rows, np.int64))
        counts = np.asarray([len(b.codes) for b in blocks], np.int64)
        codes = np.concatenate([b.codes for b in blocks]) if blocks else self.codec.empty()
        return self.codec.similarities(question, codes), counts

    def tokens(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blocks = self.rows.blocks_of(np.asarray(rows, np.int64))
        codes = np.concatenate([b.codes for b in blocks]) if blocks else self.codec.empty()
        return self.codec.decode(codes), np.asarray([len(b.codes) for b in blocks], np.int64)

    def sentences_of(self, row: int) -> np.ndarray:
        return self.rows.blocks_of(np.asarray([row]))[0].sentences


@dataclass
class StoredBuildState:
    """What a build reads of the live generation of a Milvus index (nothing of it is local)."""

    name: str
    manifest: IndexManifest
    keys: list[str]
    passages: list[Passage]


def previous_state(location: StoreLocation, store: MilvusStore, log: GenerationLog) -> StoredBuildState | None:
    """The live generation and its passages, or None (no index yet, or one that must be rebuilt)."""
    try:
        generation, manifest, _ = read_live(location, store, log)
        found = store.fetch(generation.rows, ["record"])
        if len(found) != len(generation.rows):
            return None
        passages = [parse_record(found[k]["record"])[0] for k in generation.rows]
    except (IndexStoreError, ValueError, KeyError):
        return None
    return StoredBuildState(name=generation.name, manifest=manifest, keys=generation.rows, passages=passages)
