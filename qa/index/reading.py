"""Opening an index for questions: the live generation loaded, checked, and searched.

:class:`PassageIndex` is one generation in memory (passages, vectors, FAISS; tokens
memory-mapped), searched by passage vector exactly or through a Milvus store;
:func:`describe` answers `qa stats` from the files' headers without loading FAISS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import IndexStoreError
from ..paths import default_index_dir
from ..records import Document, Passage
from ..stores import milvus_index
from ..stores.base import Restriction
from ..stores.faiss_store import FaissStore
from ..stores.location import StoreLocation, parse_store
from .generations import damaged, fallback_note, live_generation, missing_message, read_manifest
from .integrity import (Vectors, check_format, describe_error, faiss_header, generation_damage, read_passages,
                        read_vectors)
from .manifest import HnswFaiss, IndexManifest
from .stats import IndexStats


class PassageIndex:
    """One generation of an index, loaded (vectors, FAISS index, passages; tokens memory-mapped)."""

    def __init__(self, path: Path, generation: Path, manifest: IndexManifest, passages: list[Passage],
                 documents: list[Document], vectors: Vectors, faiss_passages):
        self.path, self.generation, self.manifest = path, generation, manifest
        self.passages, self.documents = passages, documents
        self.vectors, self.sentence_spans, self.tokens = vectors.passages, vectors.spans, vectors.tokens
        self.sentence_offsets = vectors.sentence_rows()
        self.faiss_passages = faiss_passages
        self.vector_store = FaissStore.of_rows(self.vectors, faiss_passages) if faiss_passages is not None else None
        self.note: str | None = None  # why another generation than CURRENT's is used, if it is
        self.store = None  # a Milvus index is a StoredIndex (qa.index.stored): never this class

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def open(cls, path: Path | str | None = None, store: StoreLocation | None = None) -> PassageIndex:
        """Load the live generation of the index at `path` (default: embeddings/), checked whole.

        Anything damaged is one IndexStoreError naming the damage and the command that repairs
        it, on open rather than as an IndexError or a `nan` score on some later question.
        """
        if store is not None and store.kind == "milvus":  # the whole index is in the store: nothing local
            from .stored import StoredIndex

            return StoredIndex.open(store)
        path = Path(path or default_index_dir())
        generation = live_generation(path)
        if generation is None:
            raise IndexStoreError(missing_message(path))
        check_format(path, read_manifest(generation))
        try:
            index = cls._load(path, generation)
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexStoreError(damaged(path, describe_error(exc))) from None
        damage = index.damage()
        if damage:
            raise IndexStoreError(damaged(path, damage))
        index.note = fallback_note(path, generation)
        if index.manifest.store is not None:
            raise IndexStoreError(legacy_store_message(path, index.manifest))
        return index

    @classmethod
    def _load(cls, path: Path, generation: Path) -> PassageIndex:
        import faiss

        manifest = read_manifest(generation)
        documents = [Document.model_validate(d) for d in
                     json.loads((generation / "documents.json").read_text(encoding="utf-8"))]
        faiss_passages = faiss.read_index(str(generation / "faiss.index")) if manifest.store is None else None
        if faiss_passages is not None and isinstance(manifest.faiss, HnswFaiss):
            faiss_passages.hnsw.efSearch = manifest.faiss.efSearch
        vectors = read_vectors(generation, manifest)
        return cls(path, generation, manifest, read_passages(generation), documents, vectors, faiss_passages)

    def damage(self) -> str | None:
        """The first sign of damage in this generation, or None; reads nothing more from disk."""
        vectors = Vectors(self.vectors, self.sentence_spans, self.tokens)
        counts = {}  # none when a Milvus store holds the passage vectors
        if self.faiss_passages is not None:
            counts["faiss.index"] = (self.faiss_passages.d, self.faiss_passages.ntotal)
        return generation_damage(self.manifest, self.passages, len(self.documents), vectors, counts)

    def describe(self) -> IndexStats:
        """The statistics of this generation (see :func:`describe`)."""
        return _stats(self.path, self.generation, self.manifest, self.note)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None,
               restriction: Restriction | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k passage rows for each query by the passage vectors, through the FAISS store.

        `subset` restricts the search to those passage rows, exactly, so a narrow filter still
        returns its best matches instead of whatever survives a global top-k. `restriction` (the
        same filter as scalar conditions) is what a Milvus index pushes down; FAISS needs `subset`.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        return self.vector_store.search_rows(queries, k, subset)

    def close(self) -> None:
        """Nothing to release (a Milvus index's StoredIndex closes its connection)."""


def describe(path: Path | str | None = None, store: str | StoreLocation | None = None) -> IndexStats:
    """The statistics of the index at `path` (default: the default index), after the checks
    `PassageIndex.open` makes but without loading FAISS, so it answers at once. With a Milvus
    `store` (a --store URI), the collection is checked too: model, and every vector there."""
    location = store if isinstance(store, StoreLocation) else parse_store(store, path)
    if location.kind == "milvus":
        from .stored import describe_stored

        return describe_stored(location)
    path = location.local
    generation, manifest = inspect_index(path)
    if manifest.store is not None:
        raise IndexStoreError(legacy_store_message(path, manifest))
    return _stats(path, generation, manifest, fallback_note(path, generation))


def _stats(path: Path, generation: Path, manifest: IndexManifest, note: str | None) -> IndexStats:
    return IndexStats(
        index=str(path), generation=generation.name, documents=manifest.documents, passages=manifest.passages,
        model=manifest.model_id, passage_precision=manifest.passage_precision, dimension=manifest.dimension,
        faiss=manifest.faiss.kind, exact=manifest.faiss.exact,
        bytes_on_disk=sum(f.stat().st_size for f in generation.iterdir() if f.is_file()),
        built_at=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifest.built_at)), sources=manifest.sources,
        store=milvus_index.shown(manifest.store.uri, manifest.store.collection) if manifest.store else None,
        note=note)


def inspect_index(path: Path) -> tuple[Path, IndexManifest]:
    """(live generation, manifest) after the checks `PassageIndex.open` makes, without FAISS.

    For `qa stats`, which must answer at once: the FAISS files are checked by their headers.
    """
    generation = live_generation(path)
    if generation is None:
        raise IndexStoreError(missing_message(path))
    manifest = read_manifest(generation)
    check_format(path, manifest)
    try:
        documents = json.loads((generation / "documents.json").read_text(encoding="utf-8"))
        counts = {name: faiss_header(generation / name) for name in faiss_files(manifest)}
        damage = generation_damage(manifest, read_passages(generation), len(documents),
                                    read_vectors(generation, manifest), counts)
    except (OSError, ValueError) as exc:
        damage = describe_error(exc)
    if damage:
        raise IndexStoreError(damaged(path, damage))
    return generation, manifest


def faiss_files(manifest: IndexManifest) -> tuple[str, ...]:
    """The FAISS files of a generation: no faiss.index when a Milvus store holds the passages."""
    return () if manifest.store is not None else ("faiss.index",)


def legacy_store_message(path: Path, manifest: IndexManifest) -> str:
    """An index folder written by a qa that kept only the vectors in Milvus: it is rebuilt into the
    store, which now holds the whole index."""
    where = milvus_index.shown(manifest.store.uri, manifest.store.collection)
    return (f"the index at {path} keeps its vectors in {where}, as an older qa did; a Milvus index now lives "
            f"wholly in the store: rebuild it with `qa index --full --store {where}`")
