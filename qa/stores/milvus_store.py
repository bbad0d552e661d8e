"""The Milvus vector store: a Milvus server or Milvus Lite through pymilvus's MilvusClient.

One collection per index, one row per passage: primary key the row key (a hash of the model and
the passage's whole record, so a row is never changed once written), its vector, the ids and
dates of the documents that cite it (ARRAY fields, so document and date filters run inside
Milvus as scalar filters), its content hash, its record (text, sources, sentence spans: JSON)
and its compressed tokens (base64 in VARCHAR fields: Milvus Lite has no binary field and no
Array-of-Structs, and a server's VARCHAR holds at most 65,535 bytes, so a passage's tokens
span up to TOKEN_FIELDS of them). pymilvus is imported here only, when a Milvus store is opened.
The generations that name rows live in a second collection (:mod:`.milvus_meta`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import IndexStoreError
from .base import PassageFields, Restriction, VectorStore
from .location import StoreLocation, require_scale

# FLAT (exact) for a collection below EXACT_BELOW vectors, IVF_FLAT from there on: measured
# against HNSW and FLAT by `python -m bench --only stores` (BENCHMARKS.md). nlist grows with the
# collection; nprobe is a search parameter.
EXACT_BELOW = 100_000
NLIST_MAX = 4096
NPROBE = 32
MAX_SOURCES = 4096  # Milvus's largest ARRAY capacity: a passage cited by more keeps the first ones
BATCH = 1000  # rows per insert call
MAX_LIMIT = 16384  # Milvus's largest top-k
PROPERTY_PREFIX = "qa."
VARCHAR_MAX = 65_535  # a Milvus server's largest VARCHAR (bytes); Milvus Lite has no limit
TOKEN_FIELDS = tuple(f"tokens_{i}" for i in range(5))  # 5 x 65,535 base64 chars: 245 KB, 630 int8 tokens
SCHEMA_VERSION = "2"  # 2: a row per passage with its record and tokens (1: vectors only, keyed by content hash)


_LITE_CLIENTS: dict[str, int] = {}  # open MilvusStores per Milvus Lite file in this process


def _escape(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _values(items: Iterable[str]) -> str:
    return "[" + ", ".join(_escape(x) for x in sorted(items)) + "]"


class MilvusStore(VectorStore):
    """A Milvus collection of passage vectors keyed by content hash."""

    kind = "milvus"

    def __init__(self, location: StoreLocation, client, dimension: int | None = None):
        self.location, self.client, self.collection = location, client, location.collection
        self.dimension = dimension
        self.search_params: dict = {"nprobe": NPROBE, "ef": 128}

    # ------------------------------------------------------------------ opening

    @classmethod
    def connect(cls, location: StoreLocation) -> MilvusStore:
        pymilvus = require_scale("pymilvus", f"--store {location.shown()}")
        import logging

        # its notices and its logged tracebacks are not the user's: failures reach the user as one line
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # Lite's server: an RPC it lacks (iterator)
        if location.lite:
            require_scale("milvus_lite", f"--store {location.shown()}")
        try:
            client = pymilvus.MilvusClient(uri=location.uri, token=location.token or "")
        except Exception as exc:  # noqa: BLE001 - pymilvus raises its own hierarchy; one line
            raise IndexStoreError(_connect_error(location, exc)) from None
        if location.lite:
            _LITE_CLIENTS[location.uri] = _LITE_CLIENTS.get(location.uri, 0) + 1
        return cls(location, client)

    def exists(self) -> bool:
        return bool(self.client.has_collection(self.collection))

    def properties(self) -> dict[str, str]:
        described = self.client.describe_collection(self.collection)
        return {k.removeprefix(PROPERTY_PREFIX): v for k, v in (described.get("properties") or {}).items()
                if k.startswith(PROPERTY_PREFIX)}

    def create(self, dimension: int, properties: dict[str, str], nlist: int = 1024, index_type: str = "IVF_FLAT",
               params: dict | None = None) -> None:
        """A new, empty, loaded collection with its index built explicitly."""
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("doc_ids", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_SOURCES,
                         max_length=1024)
        schema.add_field("dates", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_SOURCES,
                         max_length=16)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)  # the first source's, indexed:
        schema.add_field("date", DataType.VARCHAR, max_length=16)  # filters without scanning the ARRAY fields
        schema.add_field("record", DataType.VARCHAR, max_length=VARCHAR_MAX)
        for name in TOKEN_FIELDS:
            schema.add_field(name, DataType.VARCHAR, max_length=VARCHAR_MAX)
        index = self.client.prepare_index_params()
        if params is None:
            params = {"nlist": nlist} if index_type.startswith("IVF") else {}
        index.add_index("vector", index_type=index_type, metric_type="IP", params=params)
        index.add_index("doc_id", index_type="INVERTED")
        index.add_index("date", index_type="INVERTED")
        self.client.create_collection(self.collection, schema=schema, index_params=index,
                                      properties={PROPERTY_PREFIX + k: str(v) for k, v in properties.items()})
        self.client.load_collection(self.collection)
        self.dimension = dimension

    def set_properties(self, properties: dict[str, str]) -> None:
        self.client.alter_collection_properties(self.collection,
                                                properties={PROPERTY_PREFIX + k: str(v) for k, v in properties.items()})

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.collection)

    def load(self) -> None:
        self.client.load_collection(self.collection)

    def close(self) -> None:
        """Close the connection; the last store of a Milvus Lite file in this process also stops
        its embedded server, which holds the file's lock (one process at a time)."""
        if self.client is None:
            return
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection is not worth an error
            pass
        self.client = None
        if self.location.lite:
            _LITE_CLIENTS[self.location.uri] -= 1
            if not _LITE_CLIENTS[self.location.uri]:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.location.uri)

    # ------------------------------------------------------------------ the interface

    def add(self, ids: Sequence[str], vectors: np.ndarray, fields: Sequence[PassageFields] | None = None) -> int:
        fields = fields or [PassageFields()] * len(ids)
        for start in range(0, len(ids), BATCH):
            rows = [{"pk": ids[i], "content_hash": ids[i], "vector": np.asarray(vectors[i], np.float32),
                     "doc_ids": list(fields[i].doc_ids[:MAX_SOURCES]), "dates": list(fields[i].dates[:MAX_SOURCES]),
                     "doc_id": fields[i].doc_ids[0] if fields[i].doc_ids else "",
                     "date": fields[i].dates[0] if fields[i].dates else "", "record": "", **dict.fromkeys(TOKEN_FIELDS, "")}
                    for i in range(start, min(len(ids), start + BATCH))]
            self.client.upsert(self.collection, rows)
        return len(ids)

    def write_rows(self, rows: Sequence[dict]) -> int:
        """Insert whole rows (every field of the schema), BATCH at a time; the number written."""
        rows = list(rows)
        for start in range(0, len(rows), BATCH):
            self.client.upsert(self.collection, rows[start:start + BATCH])
        return len(rows)

    def fetch(self, ids: Sequence[str], fields: Sequence[str], batch: int = BATCH) -> dict[str, dict]:
        """The rows of those of `ids` the collection holds, with `fields`: one query a batch."""
        found: dict[str, dict] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            for row in self.client.query(self.collection, filter=f"pk in {_values(chunk)}",
                                         output_fields=["pk", *fields], limit=len(chunk)):
                found[row["pk"]] = row
        return found

    def schema_version(self) -> str | None:
        return self.properties().get("schema")

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(ids)
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.collection, ids=ids[start:start + BATCH])
        return len(ids)

    def count(self) -> int:
        result = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def search(self, queries: np.ndarray, k: int, restriction: Restriction | None = None
               ) -> list[list[tuple[str, float]]]:
        if k <= 0:
            return [[] for _ in queries]
        found = self.client.search(self.collection, data=[np.asarray(q, np.float32) for q in np.atleast_2d(queries)],
                                   limit=min(k, MAX_LIMIT), filter=filter_expression(restriction),
                                   search_params={"metric_type": "IP", "params": self.search_params},
                                   output_fields=[])
        return [[(hit["pk"], float(hit["distance"])) for hit in hits] for hits in found]

    # ------------------------------------------------------------------ for builds

    def stored_fields(self, ids: Sequence[str]) -> dict[str, PassageFields]:
        """The fields stored for those of `ids` that the collection holds."""
        known: dict[str, PassageFields] = {}
        ids = list(ids)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            for row in self.client.query(self.collection, filter=f"pk in {_values(chunk)}",
                                         output_fields=["pk", "doc_ids", "dates"], limit=len(chunk)):
                known[row["pk"]] = PassageFields(tuple(row["doc_ids"] or ()), tuple(row["dates"] or ()))
        return known

    def all_ids(self) -> set[str]:
        """Every id in the collection (an iterator: no 16,384-row query limit)."""
        iterator = self.client.query_iterator(self.collection, batch_size=BATCH * 4, filter="", output_fields=["pk"])
        ids: set[str] = set()
        try:
            while batch := iterator.next():
                ids.update(row["pk"] for row in batch)
        finally:
            iterator.close()
        return ids

    def flush(self, timeout: float = 600) -> None:
        """Seal what was written and wait until the index covers it: until then Milvus searches
        new rows with its interim index for growing segments (IVF, 128 lists), not ours."""
        import time

        self.client.flush(self.collection)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.client.describe_index(self.collection, "vector")
            if not int(state.get("pending_index_rows", 0)) and state.get("state", "Finished") == "Finished":
                return
            time.sleep(0.2)


def filter_expression(restriction: Restriction | None) -> str:
    """The Milvus boolean expression for a restriction ('' when it allows everything)."""
    if restriction is None:
        return ""
    if restriction.beyond_primary is not None:  # the indexed first-source fields, and the few others
        primary = []
        if restriction.doc_ids is not None:
            primary.append(f"doc_id in {_values(restriction.doc_ids)}")
        if restriction.dates is not None:
            primary.append(f"date in {_values(restriction.dates)}")
        expression = " and ".join(primary) or "pk != \"\""
        if restriction.beyond_primary:
            expression = f"({expression}) or pk in {_values(restriction.beyond_primary)}"
        return expression
    parts = []
    if restriction.doc_ids is not None:
        parts.append(f"array_contains_any(doc_ids, {_values(restriction.doc_ids)})")
    if restriction.dates is not None:
        parts.append(f"array_contains_any(dates, {_values(restriction.dates)})")
    if restriction.ids is not None and not parts:
        parts.append(f"pk in {_values(restriction.ids)}")
    return " and ".join(parts)


def _connect_error(location: StoreLocation, exc: Exception) -> str:
    text = " ".join(str(getattr(exc, "message", "") or exc).split())[:160]
    if location.lite and "Open local milvus failed" in text:
        return (f"cannot open the Milvus Lite file {location.uri}: another process has it open (Milvus Lite "
                "serves one process at a time; a `qa index` may be running)")
    return f"cannot reach the Milvus store {location.shown()}: {text}"
