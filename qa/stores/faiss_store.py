"""The FAISS vector store: vectors in memory (or memory-mapped), an exact or approximate index.

Used for the local index (`--store PATH`, the default): a generation's `vectors.npy` and
`faiss.index` are this store written to disk, and :class:`qa.index.reading.PassageIndex`
searches through it (:meth:`FaissStore.of_rows`: a read-only store whose ids are the rows).
Ids map to rows; a restricted search is exact over the allowed rows, so a narrow filter still
returns its best matches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import PassageFields, Restriction, VectorStore


class FaissStore(VectorStore):
    """Passage vectors and a FAISS index over them; `index=None` builds an exact one on demand."""

    kind = "faiss"

    def __init__(self, ids: Sequence[str] = (), vectors: np.ndarray | None = None, index=None, dimension: int = 384):
        self.ids = list(ids)
        self.vectors = np.zeros((0, dimension), np.float32) if vectors is None else vectors
        self.rows = {key: row for row, key in enumerate(self.ids)}
        self._index = index
        self._fields: dict[str, PassageFields] = {}

    @classmethod
    def of_rows(cls, vectors: np.ndarray, index) -> FaissStore:
        """A generation's vectors and FAISS index as a store whose ids are the row numbers
        ("0", "1", ...), made without a dict of a million ids: searched by rows (`search_rows`)."""
        store = cls(vectors=vectors, index=index)
        store.ids = _RowIds(len(vectors))
        store.rows = _RowIds.Lookup(len(vectors))
        return store

    @property
    def index(self):
        if self._index is None:
            import faiss

            self._index = faiss.IndexFlatIP(self.vectors.shape[1])
            self._index.add(np.ascontiguousarray(self.vectors, dtype=np.float32))
        return self._index

    def add(self, ids, vectors, fields=None) -> int:
        vectors = np.asarray(vectors, np.float32)
        fresh = [i for i, key in enumerate(ids) if key not in self.rows]
        for i, key in enumerate(ids):
            if key in self.rows:
                self.vectors[self.rows[key]] = vectors[i]
        for i in fresh:
            self.rows[ids[i]] = len(self.ids)
            self.ids.append(ids[i])
        if fresh:
            self.vectors = np.concatenate([self.vectors, vectors[fresh]])
        for key, value in zip(ids, fields or ()):
            self._fields[key] = value
        self._index = None
        return len(ids)

    def delete(self, ids) -> int:
        gone = {key for key in ids if key in self.rows}
        if gone:
            keep = [row for row, key in enumerate(self.ids) if key not in gone]
            self.ids = [self.ids[row] for row in keep]
            self.vectors = self.vectors[keep]
            self.rows = {key: row for row, key in enumerate(self.ids)}
            self._index = None
        return len(gone)

    def count(self) -> int:
        return len(self.ids)

    def search(self, queries, k, restriction=None):
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        rows = self.allowed_rows(restriction)
        scores, found = self.search_rows(queries, k, rows)
        return [[(self.ids[r], float(s)) for r, s in zip(rs, ss) if r >= 0] for rs, ss in zip(found, scores)]

    def allowed_rows(self, restriction: Restriction | None) -> np.ndarray | None:
        """The rows a restriction allows (None: all); fields are matched as Milvus matches them."""
        if restriction is None:
            return None
        keep = []
        for row, key in enumerate(self.ids):
            f = self._fields.get(key, PassageFields())
            if restriction.ids is not None and key not in restriction.ids:
                continue
            if restriction.doc_ids is not None and not restriction.doc_ids & set(f.doc_ids):
                continue
            if restriction.dates is not None and not restriction.dates & set(f.dates):
                continue
            keep.append(row)
        return np.asarray(keep, np.int64)

    def search_rows(self, queries: np.ndarray, k: int, rows: np.ndarray | None = None):
        """(scores, rows) [n, k']: by the index over every row, or exactly over `rows`."""
        if rows is not None:
            scores = queries @ self.vectors[rows].T
            top = np.argsort(-scores, axis=1, kind="stable")[:, :min(k, len(rows))]
            return np.take_along_axis(scores, top, 1), rows[top]
        k = min(k, len(self.vectors))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(queries, k)


class _RowIds(Sequence):
    """The ids "0" .. "n-1" of a store over a generation's rows, computed, not stored."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [str(r) for r in range(self.n)[row]]
        if not -self.n <= row < self.n:
            raise IndexError(row)
        return str(row % self.n)

    class Lookup(dict):
        """id -> row for row-number ids, computed."""

        def __init__(self, n: int):
            super().__init__()
            self.n = n

        def __contains__(self, key) -> bool:
            return isinstance(key, str) and key.isdigit() and int(key) < self.n

        def __getitem__(self, key):
            if key not in self:
                raise KeyError(key)
            return int(key)

        def get(self, key, default=None):
            return self[key] if key in self else default

        def __len__(self) -> int:
            return self.n
