"""`--store URI`: which store an index uses.

    PATH                   FAISS files in the index folder PATH (the default: embeddings/)
    milvus:PATH.db         Milvus Lite, embedded, storing to the folder PATH.db
    http(s)://HOST:PORT[/COLLECTION]
                           a Milvus server (token: $QA_MILVUS_TOKEN)

A Milvus index lives wholly in the store (records, vectors, fields, tokens, generations); the
default collection is `qa_passages`. `local` is only a FAISS index's folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import QAError
from ..paths import default_index_dir, milvus_token, server_store_dir

DEFAULT_COLLECTION = "qa_passages"
SCALE_INSTALL = "pip install 'qa[scale]'"
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


@dataclass(frozen=True)
class StoreLocation:
    """A parsed --store: the kind of store, how to reach it, and the local index folder."""

    kind: str  # "faiss" | "milvus"
    local: Path  # the index folder: generations of passages and manifest (and FAISS files)
    uri: str | None = None  # what MilvusClient is given: a .db path (Milvus Lite) or http(s)://host:port
    collection: str = DEFAULT_COLLECTION
    token: str | None = None

    @property
    def lite(self) -> bool:
        return self.kind == "milvus" and not self.uri.startswith(("http://", "https://"))

    def shown(self) -> str:
        """As the user writes it."""
        if self.kind == "faiss":
            return str(self.local)
        if self.lite:
            return f"milvus:{self.uri}"
        return f"{self.uri}/{self.collection}" if self.collection != DEFAULT_COLLECTION else self.uri

    def record(self) -> dict:
        """What the manifest keeps of it (never the token)."""
        return {"kind": self.kind, "uri": self.uri, "collection": self.collection}


def parse_store(store: str | Path | None = None, index: str | Path | None = None) -> StoreLocation:
    """The store `store` names (None: FAISS in `index`, else the default index folder)."""
    if store is None or isinstance(store, Path):
        return StoreLocation("faiss", Path(store or index or default_index_dir()))
    text = str(store).strip()
    if text.startswith("milvus:"):
        db = text.removeprefix("milvus:")
        if db.startswith("//"):
            raise QAError(f"--store {text}: a Milvus server is http://HOST:PORT, Milvus Lite is milvus:PATH.db")
        if not db.endswith(".db"):
            raise QAError(f"--store {text}: Milvus Lite stores to a file whose name ends in .db (milvus:PATH.db)")
        path = Path(db).expanduser().resolve()
        require_scale("milvus_lite", f"--store {text}")
        return StoreLocation("milvus", Path(index) if index else path.with_name(path.name + ".qa"), uri=str(path))
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is not None and not 1 <= port <= 65535:
            raise QAError(f"--store {text}: the port must be a number from 1 to 65535, e.g. http://localhost:19530")
        if not parts.hostname or parts.port is None:
            raise QAError(f"--store {text}: a Milvus server is http(s)://HOST:PORT[/COLLECTION], e.g. "
                          "http://localhost:19530")
        collection = parts.path.strip("/") or DEFAULT_COLLECTION
        if not _COLLECTION.fullmatch(collection):
            raise QAError(f"--store {text}: {collection!r} is not a Milvus collection name (letters, digits, _)")
        uri = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        local = Path(index) if index else server_store_dir(parts.hostname, parts.port, collection)
        require_scale("pymilvus", f"--store {text}")
        return StoreLocation("milvus", local, uri=uri, collection=collection, token=milvus_token())
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise QAError(f"--store {text}: unknown kind of store; use a folder (FAISS), milvus:PATH.db or "
                      "http(s)://HOST:PORT")
    if index is not None and Path(index) != Path(text):
        raise QAError(f"--store {text} and --index {index} name two different FAISS index folders; give one")
    return StoreLocation("faiss", Path(text))


def require_scale(module: str, what: str):
    """Import `module` of the scale extra, or one line saying how to install it."""
    import importlib

    try:
        importlib.import_module("pymilvus" if module == "milvus_lite" else module)  # Lite is reached through it
        return importlib.import_module(module)
    except ImportError:
        raise QAError(f"{what} needs the scale extra, which is not installed: {SCALE_INSTALL}") from None
