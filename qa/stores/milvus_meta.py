"""A Milvus index's generations, kept in Milvus: manifests, documents, row lists and CURRENT.

Everything a reader needs besides the passage rows lives in a second collection beside them
(`COLLECTION__qa`), as text in chunks of at most a server's VARCHAR (65,535 bytes):

    g000007:documents:000000...   the generation's documents (JSON), in chunks
    g000007:rows:000000...        its row keys in passage order (64 hex each), in chunks
    g000007:manifest              its manifest and chunk counts, written last: the generation is complete
    CURRENT                       the live generation's name, switched after the manifest

So a generation is complete only once its manifest row exists, and it is live only once CURRENT
names it: a build killed at any moment leaves the previous generation answering (a missing or
damaged CURRENT falls back to the newest complete generation, as a local index's does). Rows are
never changed once written, only added and, after the switch, deleted when neither the live nor
the previous generation names them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

CHUNK = 60_000  # characters of a chunk: ASCII JSON, under a server's 65,535-byte VARCHAR
_NAME = re.compile(r"g\d{6}")


def meta_collection(collection: str) -> str:
    return f"{collection}__qa"


@dataclass
class StoredGeneration:
    """A complete generation as the metadata collection holds it."""

    name: str
    manifest: dict  # IndexManifest's JSON
    documents: list[dict]
    rows: list[str]  # row keys, in passage order


class GenerationLog:
    """The metadata collection of one Milvus index, through a connected MilvusStore's client."""

    def __init__(self, client, collection: str):
        self.client, self.name = client, meta_collection(collection)

    def exists(self) -> bool:
        return bool(self.client.has_collection(self.name))

    def create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("payload", DataType.VARCHAR, max_length=65_535)
        schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in a collection
        index = self.client.prepare_index_params()
        index.add_index("unused", index_type="FLAT", metric_type="IP")
        self.client.create_collection(self.name, schema=schema, index_params=index)
        self.client.load_collection(self.name)

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.name)

    def load(self) -> None:
        self.client.load_collection(self.name)

    # ------------------------------------------------------------------ reading

    def current(self) -> str | None:
        """The name CURRENT holds when it is a generation name."""
        value = self._get(["CURRENT"]).get("CURRENT")
        return value if value and _NAME.fullmatch(value) else None

    def complete(self) -> list[str]:
        """The complete generations (manifest written), newest first."""
        rows = self.client.query(self.name, filter='pk like "g%"', output_fields=["pk"], limit=16_384)
        names = {row["pk"].split(":")[0] for row in rows if row["pk"].endswith(":manifest")}
        return sorted((n for n in names if _NAME.fullmatch(n)), reverse=True)

    def names(self) -> set[str]:
        """Every generation with any row, complete or not (a killed build's)."""
        rows = self.client.query(self.name, filter='pk like "g%"', output_fields=["pk"], limit=16_384)
        return {row["pk"].split(":")[0] for row in rows}

    def live(self) -> tuple[str | None, str | None]:
        """(the generation to read, what is wrong with CURRENT if it is not that one)."""
        complete = self.complete()
        name = self.current()
        if name is not None and name in complete:
            return name, None
        problem = "CURRENT is missing" if name is None else f"CURRENT names {name}, which is incomplete"
        return (complete[0] if complete else None), problem

    def read(self, name: str) -> StoredGeneration:
        """A complete generation; ValueError when a chunk is missing or does not parse."""
        head = self._get([f"{name}:manifest"]).get(f"{name}:manifest")
        if head is None:
            raise ValueError(f"{name} has no manifest")
        record = json.loads(head)
        documents = self._chunks(name, "documents", record["documents"])
        rows = self._chunks(name, "rows", record["rows"])
        if len(rows) % 64:
            raise ValueError(f"{name}: its row list is cut")
        return StoredGeneration(name, record["manifest"], json.loads(documents) if documents else [],
                                [rows[i:i + 64] for i in range(0, len(rows), 64)])

    def _chunks(self, name: str, kind: str, count: int) -> str:
        keys = [f"{name}:{kind}:{i:06d}" for i in range(count)]
        found: dict[str, str] = {}
        for start in range(0, len(keys), 256):
            found.update(self._get(keys[start:start + 256]))
        missing = [k for k in keys if k not in found]
        if missing:
            raise ValueError(f"{len(missing)} of the {kind} chunks of {name} are missing")
        return "".join(found[k] for k in keys)

    def _get(self, keys: list[str]) -> dict[str, str]:
        values = json.dumps(keys)
        rows = self.client.query(self.name, filter=f"pk in {values}", output_fields=["pk", "payload"],
                                 limit=len(keys))
        return {row["pk"]: row["payload"] for row in rows}

    # ------------------------------------------------------------------ writing

    def next_name(self) -> str:
        numbers = [int(n[1:]) for n in self.names() | ({self.current()} - {None})]
        return f"g{1 + max(numbers or [0]):06d}"

    def write(self, name: str, manifest_json: str, documents_json: str, rows: list[str]) -> None:
        """The chunks of a generation, then its manifest (complete), flushed; CURRENT is not changed."""
        rows_text = "".join(rows)
        if any(len(r) != 64 for r in rows):
            raise ValueError("row keys are 64 hex digits")
        doc_chunks = _split(documents_json)
        row_chunks = _split(rows_text)
        payload = [(f"{name}:documents:{i:06d}", c) for i, c in enumerate(doc_chunks)]
        payload += [(f"{name}:rows:{i:06d}", c) for i, c in enumerate(row_chunks)]
        self._put(payload)
        self.client.flush(self.name)
        head = json.dumps({"manifest": json.loads(manifest_json), "documents": len(doc_chunks),
                           "rows": len(row_chunks)}, ensure_ascii=True)
        self._put([(f"{name}:manifest", head)])
        self.client.flush(self.name)

    def switch(self, name: str) -> None:
        self._put([("CURRENT", name)])
        self.client.flush(self.name)

    def forget(self, keep: set[str]) -> None:
        """Delete every generation's rows but those of `keep` (older ones, killed builds')."""
        for name in self.names() - keep:
            self.client.delete(self.name, filter=f'pk like "{name}:%"')

    def _put(self, items: list[tuple[str, str]]) -> None:
        unused = np.zeros(2, np.float32)
        unused[0] = 1.0
        for start in range(0, len(items), 64):
            self.client.upsert(self.name, [{"pk": k, "payload": v, "unused": unused}
                                           for k, v in items[start:start + 64]])


def _split(text: str) -> list[str]:
    return [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
