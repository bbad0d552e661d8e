"""The vector-store interface: passage vectors by id (content hash), top-k search, filters.

What the index needs from a store, and nothing more: add or replace vectors by id, delete by
id, search the top k by inner product (optionally restricted to some passages or by scalar
filters on the documents and dates that cite them), count, and close. Ids are the passages'
content hashes (:meth:`qa.records.Passage.content_hash`), so an unchanged passage keeps its id
and is never written again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel


class StoreRecord(BaseModel):
    """What an index generation's manifest keeps of the store that holds its passage vectors."""

    kind: str = "milvus"
    uri: str  # a Milvus Lite .db path or http(s)://host:port (never the token)
    collection: str
    owner: str  # a random id also in the collection's properties: one index per collection


@dataclass(frozen=True)
class PassageFields:
    """The scalar fields stored with a vector, for filters pushed down to the store."""

    doc_ids: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Restriction:
    """Which passages a search may return: a passage must cite one of `doc_ids` (when given)
    and one of `dates` (when given); `ids` lists the allowed ids exactly (a store that cannot
    filter by fields uses it).

    `beyond_primary`, when given, says the reader knows every match: the rows whose first
    source (its document and date) passes, plus these ids, whose match is another source. A store
    then filters on its indexed scalar first-source fields instead of scanning the ARRAY ones."""

    doc_ids: frozenset[str] | None = None
    dates: frozenset[str] | None = None
    ids: frozenset[str] | None = field(default=None, compare=False)
    beyond_primary: frozenset[str] | None = field(default=None, compare=False)


class VectorStore(ABC):
    """Passage vectors keyed by id; inner-product search over L2-normalised vectors."""

    kind: str

    @abstractmethod
    def add(self, ids: Sequence[str], vectors: np.ndarray, fields: Sequence[PassageFields] | None = None) -> int:
        """Add or replace the vectors of `ids`; the number of rows written."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Remove `ids` (unknown ids are ignored); the number asked to be removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, restriction: Restriction | None = None
               ) -> list[list[tuple[str, float]]]:
        """For each query, up to `k` (id, inner product) pairs, best first."""

    @abstractmethod
    def count(self) -> int:
        """Vectors stored."""

    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
