"""The persistent passage index: vectors, FAISS, passage metadata and a manifest on disk.

Layout of an index folder::

    CURRENT              names the live generation, replaced atomically (os.replace)
    g000007/             one complete generation
        manifest.json    format, model id and fingerprint, prefixes, chunking, FAISS kind, ...
        passages.jsonl   one Passage a line (text, sources, offsets, content hash)
        documents.json   the documents and their sha256
        vectors.npy      float32 [n, dim], L2-normalised, row i = passage i
        faiss.index      the passage vectors: exact inner product, or HNSW from APPROXIMATE_FROM on
        token_codes.npy  every passage's content tokens, compressed (qa.token_store), memory-mapped
        token_offsets.npy    int64 [n + 1]: passage i's tokens are rows offsets[i]:offsets[i + 1]
        token_sentences.npy  uint16 [T]: the sentence of its passage each token is in
        sentence_spans.npy   int32 [m, 3]: owning passage, start, end (offsets in its text)

One forward pass per passage gives its vector and its tokens. Candidates come from the vectors
(and BM25); the best are reranked by MaxSim between the question's tokens and theirs (see
`search`), and the sentence holding the best-matching tokens is the one marked as the answer.

A build writes a new generation beside the live one and only then switches CURRENT, so a build
killed at any moment (kill -9 included) leaves the previous index intact, and a reader that
opened the previous generation keeps reading it (the previous generation is kept).
Incremental builds re-embed only passages whose content hash is not in the live generation.

With `--store milvus:PATH.db` or `--store http://host:19530` the passage vectors are also written
to a Milvus collection (:mod:`qa.stores.milvus_store`), which then answers the passage search
with document and date filters pushed down to it; the generation records the store in its
manifest and holds no faiss.index. See :mod:`qa.stores.milvus_store` for how a build keeps the
generations atomic there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from .embedder import progress_bar
from .errors import IndexStoreError, QAError
from .ingest import load_corpus
from .ingest.sentences import split_sentences
from .passage_encoding import PassageInput, encode_passages
from .paths import default_corpus, default_index_dir
from .records import Corpus, Document, Passage
from .stores import milvus_index
from .stores.base import Restriction, StoreRecord
from .stores.location import StoreLocation, parse_store
from .text import path_bytes, path_text, real_path
from .token_store import FILES as TOKEN_FILES, Codebook, TokenCodec, TokenStore

FORMAT_VERSION = 3  # 3: token store, no sentence vectors (format 2 is rebuilt in full)
# Exact search while the passage count is below this, HNSW from there on: about where one exact
# search costs as much as embedding the question with the ONNX engine, so that past it search
# would dominate.
# Exact search stays below it because HNSW's recall, high on real sentence vectors, is poor on
# vectors without structure. The figures (cost per 10k vectors, the question's cost, recall) and
# the crossover they give are in BENCHMARKS.md, from `python -m bench --only scaling`.
APPROXIMATE_FROM = 100_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128


class _Params(BaseModel):
    """Typed parameters that scripts may still read the way they read the old dicts: p["M"]."""

    def __getitem__(self, key: str):
        return getattr(self, key)


class ExactFaiss(_Params):
    """Exact inner-product search (IndexFlatIP): below APPROXIMATE_FROM passages."""

    kind: Literal["IndexFlatIP"] = "IndexFlatIP"
    exact: Literal[True] = True
    approximate_from: int | None = None


class HnswFaiss(_Params):
    """Approximate search (IndexHNSWFlat); the names are FAISS's own, as the manifest stores them."""

    kind: Literal["IndexHNSWFlat"] = "IndexHNSWFlat"
    exact: Literal[False] = False
    M: int
    efConstruction: int
    efSearch: int
    metric: Literal["inner_product"] = "inner_product"
    approximate_from: int | None = None


FaissParams = Annotated[ExactFaiss | HnswFaiss, Field(discriminator="kind")]
_FAISS_ADAPTER = TypeAdapter(FaissParams)


class Chunking(_Params):
    """How the corpus was cut into passages: a different cut means different passages."""

    unit: str = "paragraph"
    max_tokens: int


class IndexIdentity(BaseModel):
    """What an index must share with a run to be reused: format, model, prompts, chunking."""

    format_version: int = FORMAT_VERSION
    model_id: str
    model_fingerprint: str
    query_prefix: str
    passage_prefix: str
    chunking: Chunking
    # The ONNX engine's precision for passages (fp32 or int8); absent from older manifests: fp32.
    # Questions of either precision search either (EVALUATION.md, "int8 engine").
    passage_precision: str = "fp32"

    def incompatibility(self, other: IndexIdentity) -> str | None:
        """Why an index with this identity cannot be reused for a run described by `other`."""
        if self.format_version != other.format_version:
            return f"index format {self.format_version}, this version of qa writes {other.format_version}"
        if self.model_fingerprint != other.model_fingerprint:
            return f"built with model {self.model_id} ({self.model_fingerprint}), not {other.model_id} ({other.model_fingerprint})"
        if (self.query_prefix, self.passage_prefix) != (other.query_prefix, other.passage_prefix):
            return "built with other query/passage prefixes"
        if self.passage_precision != other.passage_precision:
            return f"its passages were embedded at {self.passage_precision}, this build embeds them at {other.passage_precision}"
        if self.chunking != other.chunking:
            return (f"built with other chunking parameters ({self.chunking.model_dump()} vs "
                    f"{other.chunking.model_dump()})")
        return None


class IndexManifest(IndexIdentity):
    """A generation's record: its identity, then what was built (sizes, FAISS, sources, time)."""

    dimension: int
    faiss: FaissParams
    tokens: TokenCodec | None = None  # None only in manifests of format 2
    passages: int
    documents: int
    corpus_fingerprint: str
    sources: list[str]  # as shown: bytes that are not UTF-8 escaped (see corpus.path_text)
    built_at: float
    raw_sources: list[str | None] = []  # the exact bytes (hex) of each source that is not UTF-8
    store: StoreRecord | None = None  # None: FAISS files in the generation

    def source_paths(self) -> list[str]:
        """The sources as paths that open the files again, whatever their names' bytes."""
        raw = self.raw_sources or [None] * len(self.sources)
        return [real_path(text, r) for text, r in zip(self.sources, raw, strict=True)]


class BuildReport(BaseModel):
    """What `build_index` did, for the summary line and for tests."""

    index: str
    documents: int
    passages: int
    new: int
    changed: int
    removed: int
    embedded: int
    seconds: float
    full: bool
    reason: str | None = None
    warnings: list[str] = []
    padding: float = 0.0  # share of the engine's token slots that were padding (batches sorted by length)
    stored: int | None = None  # vectors written to a Milvus store (None: FAISS files)

    def summary(self) -> str:
        how = "full rebuild" if self.full else "incremental"
        text = (f"{self.documents} documents, {self.passages} passages: {self.new} new, {self.changed} changed, "
                f"{self.removed} removed; embedded {self.embedded} passages in {self.seconds:.1f} s ({how})")
        text += f"; wrote {self.stored} vectors to the store" if self.stored is not None else ""
        return text + (f"; rebuilt because {self.reason}" if self.reason else "")


# --------------------------------------------------------------------------- locations


def _is_default(path: Path) -> bool:
    return path.resolve() == default_index_dir().resolve()


# --------------------------------------------------------------------------- reading


@dataclass
class Vectors:
    """Passage vectors, sentence spans and stored tokens, aligned with a passage list."""

    passages: np.ndarray  # [n, dim]
    spans: np.ndarray  # [m, 3] int32: passage row, start, end
    tokens: TokenStore

    def sentence_rows(self) -> np.ndarray:
        """offsets[i]:offsets[i+1] are the sentence rows of passage i (sentences are grouped)."""
        return np.searchsorted(self.spans[:, 0], np.arange(len(self.passages) + 1)).astype(np.int64)


def structural_damage(manifest: IndexManifest, passages: list[Passage], vectors: Vectors,
                      documents: int | None = None) -> str | None:
    """Why the arrays cannot belong to these passages (shapes, counts, sentence spans, tokens),
    or None.

    Linear in the index size and pure numpy, so it runs on every open: a file with a valid header
    and garbage after it must not turn into an IndexError on some question.
    """
    n, dim = len(passages), manifest.dimension
    p, spans = vectors.passages, vectors.spans
    if n != manifest.passages or (documents is not None and documents != manifest.documents):
        return (f"passages.jsonl or documents.json disagree with the manifest "
                f"({n} passages, manifest {manifest.passages})")
    if p.ndim != 2 or p.shape[1] != dim or p.dtype.kind != "f":
        return f"vectors.npy holds {p.dtype}{list(p.shape)}, expected float vectors of {dim}"
    if len(p) != n:
        return f"vectors.npy has {len(p)} rows for {n} passages"
    if spans.ndim != 2 or spans.shape[1:] != (3,) or spans.dtype.kind not in "iu":
        return f"sentence_spans.npy holds {spans.dtype}{list(spans.shape)}, expected int [m, 3]"
    if manifest.tokens is not None and vectors.tokens.codebook.codec != manifest.tokens:
        return f"the token store is {vectors.tokens.codebook.codec.kind}, the manifest says {manifest.tokens.kind}"
    return _span_damage(passages, spans.astype(np.int64)) or vectors.tokens.damage(n, dim)


def _span_damage(passages: list[Passage], spans: np.ndarray) -> str | None:
    """Sentence owners must run 0, 0, 1, ... n-1 (every passage has one) and offsets fit its text."""
    owners, starts, ends = spans[:, 0], spans[:, 1], spans[:, 2]
    if len(passages) and (len(owners) == 0 or owners[0] != 0 or owners[-1] != len(passages) - 1
                          or not np.isin(np.diff(owners), (0, 1)).all()):
        return "sentence_spans.npy: sentence owners are not in passage order"
    lengths = np.fromiter((len(p.text) for p in passages), np.int64, len(passages))
    if not ((0 <= starts) & (starts <= ends) & (ends <= lengths[owners])).all():
        return "sentence_spans.npy: sentence offsets out of range"
    return None


def nonfinite_passages(vectors: Vectors) -> np.ndarray:
    """Mask of the passages whose vector or one of whose tokens' scales is NaN or infinite."""
    bad = ~np.isfinite(vectors.passages).all(axis=1)
    tokens = vectors.tokens
    if len(tokens.codes):
        bad_tokens = np.flatnonzero(~np.isfinite(tokens.codebook.scales(np.asarray(tokens.codes))))
        bad[np.searchsorted(tokens.offsets, bad_tokens, side="right") - 1] = True
    return bad


def _damaged(path: Path, what: str) -> str:
    return f"the index at {path} is damaged ({what}); repair it with {repair_command(path)}"


def _missing_message(path: Path) -> str:
    """No complete generation: say whether there is nothing or something damaged."""
    if _generations(path):
        return _damaged(path, "no generation is complete: manifest.json or other files unreadable")
    how = "`qa index`" if _is_default(path) else f"`qa index PATH... --index {path}`"
    return f"no index at {path}; build it with {how}"


class PassageIndex:
    """One generation of an index, loaded (vectors, FAISS index, passages; tokens memory-mapped)."""

    def __init__(self, path: Path, generation: Path, manifest: IndexManifest, passages: list[Passage],
                 documents: list[Document], vectors: Vectors, faiss_passages):
        self.path, self.generation, self.manifest = path, generation, manifest
        self.passages, self.documents = passages, documents
        self.vectors, self.sentence_spans, self.tokens = vectors.passages, vectors.spans, vectors.tokens
        self.sentence_offsets = vectors.sentence_rows()
        self.faiss_passages = faiss_passages
        self.note: str | None = None  # why another generation than CURRENT's is used, if it is
        self.store = None  # a MilvusStore answering the passage search, when the manifest names one
        self._hash_rows: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def open(cls, path: Path | str | None = None, store: StoreLocation | None = None) -> PassageIndex:
        """Load the live generation of the index at `path` (default: embeddings/), checked whole.

        Anything damaged is one IndexStoreError naming the damage and the command that repairs
        it, on open rather than as an IndexError or a `nan` score on some later question.
        """
        path = Path(path or default_index_dir())
        generation = live_generation(path)
        if generation is None:
            raise IndexStoreError(_missing_message(path))
        _check_format(path, read_manifest(generation))
        try:
            index = cls._load(path, generation)
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexStoreError(_damaged(path, _describe(exc))) from None
        damage = index.damage()
        if damage:
            raise IndexStoreError(_damaged(path, damage))
        index.note = pointer_problem(path)
        if index.manifest.store is not None:
            index.store = milvus_index.open_for_search(index.manifest, store or _location_of(path, index.manifest),
                                                       len(index.passages))
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
        vectors = _read_vectors(generation, manifest)
        return cls(path, generation, manifest, _read_passages(generation), documents, vectors, faiss_passages)

    def damage(self) -> str | None:
        """The first sign of damage in this generation, or None; reads nothing more from disk."""
        vectors = Vectors(self.vectors, self.sentence_spans, self.tokens)
        counts = {}  # none when a Milvus store holds the passage vectors
        if self.faiss_passages is not None:
            counts["faiss.index"] = (self.faiss_passages.d, self.faiss_passages.ntotal)
        return _generation_damage(self.manifest, self.passages, len(self.documents), vectors, counts)

    def describe(self) -> IndexStats:
        """The statistics of this generation (see :func:`describe`)."""
        return _stats(self.path, self.generation, self.manifest, self.note)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None,
               restriction: Restriction | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k passage rows for each query by the passage vectors.

        `subset` restricts the search to those passage rows, exactly, so a narrow filter still
        returns its best matches instead of whatever survives a global top-k. With a Milvus
        store, `restriction` (the same filter as scalar conditions) is pushed down to Milvus.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.store is not None and (subset is None or restriction is not None):
            return self._search_store(queries, k, subset, restriction)
        if subset is not None:
            return self._search_subset(queries, k, subset)
        k = min(k, len(self.passages))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.faiss_passages.search(queries, k)

    def _search_store(self, queries: np.ndarray, k: int, subset: np.ndarray | None,
                      restriction: Restriction | None) -> tuple[np.ndarray, np.ndarray]:
        """Passages from the Milvus store, hashes mapped to this generation's rows (unknown ones skipped)."""
        if self._hash_rows is None:
            self._hash_rows = milvus_index.hash_rows(self.passages)
        return milvus_index.search_rows(self.store, self._hash_rows, queries, min(k, len(self.passages)),
                                        subset, restriction)

    def close(self) -> None:
        """Release the store's connection (Milvus Lite serves one process at a time)."""
        if self.store is not None:
            self.store.close()

    def _search_subset(self, queries: np.ndarray, k: int, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.vectors[subset].T
        k = min(k, len(subset))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, 1), subset[top]


def _check_format(path: Path, manifest: IndexManifest) -> None:
    """An index of another format is refused with the command that rebuilds it."""
    if manifest.format_version != FORMAT_VERSION:
        raise IndexStoreError(f"the index at {path} has format {manifest.format_version}, this version of qa reads "
                              f"{FORMAT_VERSION}; rebuild it with {repair_command(path)} (then it is one full rebuild)")


class IndexStats(BaseModel):
    """What an index holds, as `qa stats` and the REPL's :stats show it."""

    index: str
    generation: str
    documents: int
    passages: int
    model: str
    dimension: int
    faiss: str
    exact: bool
    bytes_on_disk: int
    built_at: str
    sources: list[str]
    store: str | None = None  # where the passage vectors are searched, when not in faiss.index
    note: str | None = None  # why another generation than CURRENT's is used


def describe(path: Path | str | None = None, store: str | StoreLocation | None = None) -> IndexStats:
    """The statistics of the index at `path` (default: the default index), after the checks
    `PassageIndex.open` makes but without loading FAISS, so it answers at once. With a Milvus
    `store` (a --store URI), the collection is checked too: model, and every vector there."""
    location = store if isinstance(store, StoreLocation) else parse_store(store, path)
    path = location.local
    generation, manifest = inspect_index(path)
    if manifest.store is not None:
        with milvus_index.open_for_search(manifest, location if location.kind == "milvus" else
                                          _location_of(path, manifest), manifest.passages):
            pass
    return _stats(path, generation, manifest, pointer_problem(path))


def _stats(path: Path, generation: Path, manifest: IndexManifest, problem: str | None) -> IndexStats:
    return IndexStats(
        index=str(path), generation=generation.name, documents=manifest.documents, passages=manifest.passages,
        model=manifest.model_id, dimension=manifest.dimension, faiss=manifest.faiss.kind, exact=manifest.faiss.exact,
        bytes_on_disk=sum(f.stat().st_size for f in generation.iterdir() if f.is_file()),
        built_at=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifest.built_at)), sources=manifest.sources,
        store=milvus_index.shown(manifest.store.uri, manifest.store.collection) if manifest.store else None,
        note=f"{problem}; using {generation.name}, the newest complete generation" if problem else None)


def inspect_index(path: Path) -> tuple[Path, IndexManifest]:
    """(live generation, manifest) after the checks `PassageIndex.open` makes, without FAISS.

    For `qa stats`, which must answer at once: the FAISS files are checked by their headers.
    """
    generation = live_generation(path)
    if generation is None:
        raise IndexStoreError(_missing_message(path))
    manifest = read_manifest(generation)
    _check_format(path, manifest)
    try:
        documents = json.loads((generation / "documents.json").read_text(encoding="utf-8"))
        counts = {name: _faiss_header(generation / name) for name in _faiss_files(manifest)}
        damage = _generation_damage(manifest, _read_passages(generation), len(documents),
                                    _read_vectors(generation, manifest), counts)
    except (OSError, ValueError) as exc:
        damage = _describe(exc)
    if damage:
        raise IndexStoreError(_damaged(path, damage))
    return generation, manifest


def _faiss_files(manifest: IndexManifest) -> tuple[str, ...]:
    """The FAISS files of a generation: no faiss.index when a Milvus store holds the passages."""
    return () if manifest.store is not None else ("faiss.index",)


def _location_of(path: Path, manifest: IndexManifest) -> StoreLocation:
    """The store a generation's manifest names, reached with today's token."""
    record = manifest.store
    uri = record.uri if record.uri.startswith(("http://", "https://")) else f"milvus:{record.uri}"
    if record.uri.startswith(("http://", "https://")):
        uri = f"{record.uri}/{record.collection}"
    return parse_store(uri, path)


def _faiss_header(path: Path) -> tuple[int, int]:
    """(dimension, vector count) from a FAISS file: every index type starts fourcc, d, ntotal."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) < 16:
        raise ValueError(f"{path.name} is truncated")
    _, dim, ntotal = struct.unpack("<4siq", head)
    return dim, ntotal


def _generation_damage(manifest: IndexManifest, passages: list[Passage], documents: int, vectors: Vectors,
                       counts: dict[str, tuple[int, int]]) -> str | None:
    """Every integrity check of a loaded generation, first problem only; `counts` are the FAISS
    indexes' (dimension, vector count), from the loaded objects or the files' headers."""
    return (structural_damage(manifest, passages, vectors, documents=documents)
            or _faiss_damage(manifest, vectors, counts) or _nonfinite_damage(vectors))


def _describe(exc: Exception, limit: int = 120) -> str:
    """An exception from reading a file, on one line: its type and the start of its message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:limit]}"


def _faiss_damage(manifest: IndexManifest, vectors: Vectors, counts: dict[str, tuple[int, int]]) -> str | None:
    expected = {"faiss.index": len(vectors.passages)}
    for name, (dim, ntotal) in counts.items():  # faiss.index is absent when a Milvus store holds the passages
        if (dim, ntotal) != (manifest.dimension, expected[name]):
            return f"{name} holds {ntotal} vectors of {dim}, expected {expected[name]} of {manifest.dimension}"
    return None


def _nonfinite_damage(vectors: Vectors) -> str | None:
    bad = int(nonfinite_passages(vectors).sum())
    return f"{bad} passages have vectors that are not finite numbers" if bad else None


def _read_passages(generation: Path) -> list[Passage]:
    return [Passage.model_validate_json(line) for line in
            (generation / "passages.jsonl").read_text(encoding="utf-8").splitlines() if line]


def _read_vectors(generation: Path, manifest: IndexManifest) -> Vectors:
    return Vectors(np.load(generation / "vectors.npy"), np.load(generation / "sentence_spans.npy"),
                   TokenStore.open(generation, manifest.dimension))


GENERATION_NAME = re.compile(r"g\d{6}")
GENERATION_FILES = ("manifest.json", "passages.jsonl", "documents.json", "vectors.npy", "sentence_spans.npy",
                    "faiss.index", *TOKEN_FILES)


def live_generation(path: Path) -> Path | None:
    """The generation CURRENT names if it is valid, else the newest complete one, else None.

    CURRENT is only ever a plain generation name inside `path` (a `../` path is not followed), so
    a damaged, truncated or deleted pointer costs nothing as long as one complete generation is
    left: readers and the next build use it instead of seeing "no index" and rebuilding over it.
    """
    name = _pointer(path)
    if name is not None and _complete(path / name):
        return path / name
    return next((g for g in _generations(path) if _complete(g)), None)


def pointer_problem(path: Path) -> str | None:
    """What is wrong with CURRENT (None: it names a complete generation), for warnings."""
    name = _pointer(path)
    if name is not None and _complete(path / name):
        return None
    if not (path / "CURRENT").exists():
        return "CURRENT is missing"
    if name is None:
        return "CURRENT does not name a generation"
    return f"CURRENT names {name}, which is missing or incomplete"


def _pointer(path: Path) -> str | None:
    """The generation name in CURRENT when it is one (g + 6 digits), whatever bytes it holds."""
    try:
        raw = (path / "CURRENT").read_bytes()[:64]
    except OSError:
        return None
    name = raw.decode("ascii", "replace").strip()
    return name if GENERATION_NAME.fullmatch(name) else None


def _generations(path: Path) -> list[Path]:
    """The generation folders of an index, newest first."""
    try:
        names = [p.name for p in path.iterdir() if GENERATION_NAME.fullmatch(p.name) and p.is_dir()]
    except OSError:
        return []
    return [path / name for name in sorted(names, reverse=True)]


def _complete(generation: Path) -> bool:
    """Every file of a generation is there and its manifest parses (cheap: no arrays read)."""
    try:
        manifest = _parse_manifest(generation)
    except (OSError, ValueError):
        return False
    # Another format's files are not known here: its manifest is enough for the open to say
    # "rebuild it" and for a build to rebuild it, instead of "damaged" or "no index".
    names = [n for n in GENERATION_FILES if n != "faiss.index" or manifest.store is None]
    return manifest.format_version != FORMAT_VERSION or all((generation / n).is_file() for n in names)


def recorded_sources(path: Path) -> list[str] | None:
    """The source paths the index was built from, from the first generation that still says.

    Each generation records them twice (manifest.json and sources.json), so a rebuild without
    PATH finds them even when the live manifest is damaged.
    """
    live = live_generation(path)
    for generation in ([live] if live else []) + _generations(path):
        for reader in (lambda g: _parse_manifest(g).source_paths(), _read_sources_file):
            try:
                return reader(generation)
            except (OSError, ValueError, TypeError, KeyError):
                continue
    return None


def _read_sources_file(generation: Path) -> list[str]:
    record = json.loads((generation / "sources.json").read_text(encoding="utf-8"))
    return [real_path(text, raw) for text, raw in zip(record["sources"], record["raw_sources"], strict=True)]


def repair_command(path: Path) -> str:
    """The command that rebuilds the index at `path`, as the user should type it."""
    if _is_default(path):
        return "`qa index`"
    return f"`qa index --index {path}`" if recorded_sources(path) else f"`qa index PATH --index {path}`"


def rebuild_reason(path: Path, spec) -> str | None:
    """Why the index at `path` cannot serve model `spec` as it is (None: it can).

    Lets the default index rebuild itself after an upgrade instead of failing on first use.
    """
    generation = live_generation(path)
    if generation is None:
        return "it does not exist yet"
    try:
        manifest = read_manifest(generation)
    except IndexStoreError:
        return "its manifest is unreadable"
    if manifest.format_version != FORMAT_VERSION:
        return f"it has index format {manifest.format_version}, this version of qa reads {FORMAT_VERSION}"
    if manifest.model_fingerprint != spec.fingerprint:
        return f"it was built with another model ({manifest.model_id})"
    return None


def _parse_manifest(generation: Path) -> IndexManifest:
    return IndexManifest.model_validate_json((generation / "manifest.json").read_bytes())


def read_manifest(generation: Path) -> IndexManifest:
    try:
        return _parse_manifest(generation)
    except (OSError, ValueError) as exc:
        what = f"unreadable manifest in {generation.name}: {' '.join(str(exc).split())[:120]}"
        raise IndexStoreError(_damaged(generation.parent, what)) from None


# --------------------------------------------------------------------------- building


def build_index(paths: Sequence[str | Path] | None, index_dir: str | Path | None, embedder, *,
                full: bool = False, progress: bool = False, store: str | StoreLocation | None = None) -> BuildReport:
    """Build or update the index at `index_dir` from `paths` (default: the shipped corpus).

    With no paths, an existing index is updated from the paths it was built from. `store` is a
    --store URI (see :mod:`qa.stores.location`): a Milvus store takes the passage vectors, and
    `index_dir`, when given, is where its local half goes.
    """
    location = store if isinstance(store, StoreLocation) else parse_store(store, index_dir)
    index_dir = location.local
    sources = _sources_for(paths, index_dir)
    with _SplittingBar(progress) as bar:
        corpus = load_corpus(sources, count_tokens=_token_counter(embedder), max_tokens=embedder.max_tokens,
                             progress=bar.report)
    return update_index(corpus, index_dir, embedder, sources=sources, full=full, progress=progress,
                        store=location if location.kind == "milvus" else None)


class _SplittingBar:
    """A progress bar over the characters split into passages, on input long enough to wait
    for (a multi-megabyte paragraph is windowed to the model's limit with its tokenizer)."""

    MIN_CHARS = 500_000

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def report(self, done: int, total: int) -> None:
        if not self.enabled or total < self.MIN_CHARS:
            return
        if self.bar is None:
            self.bar = progress_bar(total, True, desc="splitting", unit="char")
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> _SplittingBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def ensure_default_index(embedder, *, notify: Callable[[str], None], progress: bool = False) -> Path:
    """The default index, rebuilt in full from the default corpus first when it is missing or
    cannot serve `embedder`'s model (an upgrade), so the first `qa` just works; `notify` gets
    the one-line messages."""
    path = default_index_dir()
    reason = rebuild_reason(path, embedder.spec)
    if reason is not None:
        notify(f"building the index of the default corpus ({reason})…")
        report = build_index(None, None, embedder, full=True, progress=progress)
        for warning in report.warnings:
            notify(f"warning: {warning}")
        notify(report.summary())
    return path


def _sources_for(paths: Sequence[str | Path] | None, index_dir: Path) -> list[str]:
    """The paths given, else those the index recorded, else the shipped corpus for the default index.

    Any other index without a readable record is refused: filling it with the shipped articles
    would silently replace an index of another corpus (the build deletes older generations).
    """
    if paths:
        return [str(Path(p).resolve()) for p in paths]
    recorded = recorded_sources(index_dir)
    if recorded:
        return recorded
    if _is_default(index_dir):
        corpus = default_corpus()
        if not corpus.exists():
            raise QAError(f"no articles to index: {path_text(corpus)} does not exist; run qa in a folder that "
                          "holds corpus/, set QA_CORPUS, or name them: `qa index PATH`")
        return [str(corpus.resolve())]
    if _generations(index_dir):
        raise IndexStoreError(f"the index at {index_dir} has no readable record of what it was built from; "
                              f"name it: `qa index PATH --index {index_dir}`")
    raise QAError(f"what should {index_dir} index? name the files or folders: `qa index PATH --index {index_dir}`")


def update_index(corpus: Corpus, index_dir: str | Path, embedder, *, sources: list[str] | None = None,
                 full: bool = False, progress: bool = False, store: StoreLocation | None = None) -> BuildReport:
    """Make the index at `index_dir` hold exactly `corpus`, embedding only what it lacks."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    if not corpus.passages:
        raise QAError(f"no passages found in {', '.join(map(path_text, sources or [])) or 'the corpus'}")
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexStoreError(f"the index path {index_dir} is a file, not a folder")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexStoreError(f"cannot create the index folder {index_dir}: {exc.strerror or exc}") from None
    with _build_lock(index_dir):
        notes = [f"{problem}; updated from {live_generation(index_dir).name}"] if (
            (problem := pointer_problem(index_dir)) and live_generation(index_dir)) else []
        previous = _previous_state(index_dir)
        identity = _identity_for(embedder)
        reason = previous.reason(identity) if previous is not None and not full else None
        reuse = {} if (full or reason or previous is None) else previous.reuse
        if previous is not None and previous.repaired and reuse:
            notes.append(f"re-embedded {previous.repaired} passages whose stored vectors were not finite numbers")
        vectors, embedded, padding = _vectors_for(corpus.passages, previous, reuse, embedder, progress)
        manifest = _manifest_for(identity, corpus, vectors, sources or [])
        milvus, stored = None, None
        if store is not None:  # the new vectors go to Milvus first; nothing there is deleted yet
            milvus, manifest.store, stored = milvus_index.sync(store, manifest, previous.manifest if previous else None,
                                                       corpus.passages, vectors.passages, rebuild=bool(full or reason))
        elif previous is not None and previous.manifest.store is not None:
            notes.append(f"the previous generation's vectors stay in {previous.manifest.store.uri}")
        try:
            _write_generation(index_dir, manifest, corpus, vectors)
        except (OSError, RuntimeError) as exc:  # disk full (faiss raises RuntimeError), permissions
            raise IndexStoreError(f"could not write the index at {index_dir} ({_write_error(exc)}); "
                                  "the previous index, if any, is unchanged") from None
        finally:
            if milvus is not None and live_generation(index_dir) is not None:
                notes += milvus_index.clean_up(milvus, corpus.passages, previous.passages if previous else [])
            if milvus is not None:
                milvus.close()
        new, changed, removed = _diff(previous.passages if previous else [], corpus.passages)
    return BuildReport(index=str(index_dir), documents=len(corpus.documents), passages=len(corpus.passages),
                       new=new, changed=changed, removed=removed, embedded=embedded,
                       seconds=time.perf_counter() - started, full=bool(full or reason or previous is None),
                       reason=reason, warnings=corpus.warnings + notes, padding=round(padding, 4), stored=stored)


def _write_error(exc: OSError | RuntimeError) -> str:
    """The cause of a failed write in a few words; faiss puts errno's text inside a long message,
    and numpy reports a short write (disk full, file size limit) with byte counts only."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    for known in ("No space left on device", "File too large", "Permission denied", "Read-only file system"):
        if known in text:
            return known
    if "requested and" in text and "written" in text:
        return f"disk full or file size limit reached: {text[:80]}"
    return text[:120]


def _token_counter(embedder):
    prefix = embedder.spec.passage_prefix

    def count(text: str) -> int:
        return embedder.count_tokens(prefix + text)

    return count


@contextlib.contextmanager
def _build_lock(index_dir: Path):
    """An exclusive flock on `.lock` (a folder of that name is locked as well as a file)."""
    fd = _open_lock(index_dir / ".lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexStoreError(f"another `qa index` is building {index_dir}; wait for it to finish") from None
        except OSError as exc:
            raise IndexStoreError(f"cannot lock {index_dir / '.lock'} ({exc.strerror or exc})") from None
        yield
    finally:
        os.close(fd)


def _open_lock(lock: Path) -> int:
    """A descriptor to flock: read-only, so a read-only `.lock` file or a `.lock` folder still works."""
    try:
        return os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    except IsADirectoryError:
        pass
    except OSError as exc:
        raise IndexStoreError(f"cannot create {lock} ({exc.strerror or exc}): "
                              f"the index folder {lock.parent} cannot be written") from None
    try:
        return os.open(lock, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise IndexStoreError(f"cannot open {lock} ({exc.strerror or exc})") from None


@dataclass
class _Previous:
    """The live generation as a build sees it: what may be reused, and what must not be."""

    manifest: IndexManifest
    reuse: dict  # content hash -> (passage vector, sentence spans [k, 2], stored token block)
    passages: list[Passage]
    damage: str | None = None  # the arrays cannot be trusted at all
    repaired: int = 0  # passages left out of `reuse` because their vectors are not finite

    def reason(self, target: IndexIdentity) -> str | None:
        """Why nothing can be reused (a rebuild in full), or None."""
        problem = self.manifest.incompatibility(target)
        return problem or (f"the stored index was damaged ({self.damage})" if self.damage else None)


def _previous_state(index_dir: Path) -> _Previous | None:
    """The live generation, checked like `PassageIndex.open` does: damage is repaired, not reused."""
    generation = live_generation(index_dir)
    if generation is None:
        return None
    manifest = read_manifest(generation)
    if manifest.format_version != FORMAT_VERSION:
        return _Previous(manifest, {}, _read_passages_or_none(generation))
    try:
        passages = _read_passages(generation)
        vectors = _read_vectors(generation, manifest)
        damage = structural_damage(manifest, passages, vectors)
    except (OSError, ValueError, RuntimeError) as exc:
        return _Previous(manifest, {}, [], damage=_describe(exc, 80))
    if damage:
        return _Previous(manifest, {}, passages, damage=damage)
    rows, bad = vectors.sentence_rows(), nonfinite_passages(vectors)
    reuse = {p.content_hash(): (vectors.passages[i], vectors.spans[rows[i]:rows[i + 1], 1:], vectors.tokens.block(i))
             for i, p in enumerate(passages) if not bad[i]}
    return _Previous(manifest, reuse, passages, repaired=int(bad.sum()))


def _read_passages_or_none(generation: Path) -> list[Passage]:
    try:
        return _read_passages(generation)
    except (OSError, ValueError):
        return []


def _identity_for(embedder) -> IndexIdentity:
    """What a build with `embedder` produces, before anything is embedded."""
    spec = embedder.spec
    return IndexIdentity(model_id=spec.model_id, model_fingerprint=spec.fingerprint, query_prefix=spec.query_prefix,
                         passage_prefix=spec.passage_prefix, chunking=Chunking(max_tokens=embedder.max_tokens),
                         passage_precision=embedder.passage_precision)


def _manifest_for(identity: IndexIdentity, corpus: Corpus, vectors: Vectors, sources: list[str]) -> IndexManifest:
    """The complete manifest of a generation holding `corpus` embedded as `vectors`."""
    fingerprint = hashlib.sha256()
    for doc in sorted(corpus.documents, key=lambda d: d.doc_id):
        fingerprint.update(f"{doc.doc_id}\0{doc.sha256}\n".encode())
    return IndexManifest(
        **dict(identity), dimension=int(vectors.passages.shape[1]), faiss=_faiss_params(len(vectors.passages)),
        tokens=vectors.tokens.codebook.codec,
        passages=len(corpus.passages), documents=len(corpus.documents),
        corpus_fingerprint=fingerprint.hexdigest()[:32], sources=[path_text(s) for s in sources],
        raw_sources=[path_bytes(s) for s in sources] if any(map(path_bytes, sources)) else [], built_at=time.time(),
    )


def _vectors_for(passages: list[Passage], previous: _Previous | None, reuse: dict, embedder,
                 progress: bool) -> tuple[Vectors, int, float]:
    """Reuse stored vectors and tokens by content hash; embed the rest, one forward pass each."""
    missing = [i for i, p in enumerate(passages) if p.content_hash() not in reuse]
    spans_of = {i: np.asarray(split_sentences(passages[i].text) or [(0, len(passages[i].text))], np.int32)
                for i in missing}
    inputs = [PassageInput(passages[i].embed_text(), len(passages[i].embed_text()) - len(passages[i].text),
                           spans_of[i][:, 1].astype(np.int64)) for i in missing]
    encoded = encode_passages(embedder, inputs, progress=progress and len(inputs) > 64)
    fresh = dict(zip(missing, range(len(missing))))
    rows_p, rows_spans, blocks = [], [], []
    for i, p in enumerate(passages):
        if i in fresh:
            vector, spans, block = encoded.vectors[fresh[i]], spans_of[i], encoded.blocks[fresh[i]]
        else:
            vector, spans, block = reuse[p.content_hash()]
        rows_p.append(vector)
        blocks.append(block)
        rows_spans.append(np.column_stack([np.full(len(spans), i, np.int32), spans]).astype(np.int32))
    codebook = Codebook(embedder.dimension)
    codes = np.concatenate([b.codes for b in blocks]) if blocks else codebook.empty()
    offsets = np.concatenate([[0], np.cumsum([len(b.codes) for b in blocks])]).astype(np.int64)
    sentences = np.concatenate([b.sentences for b in blocks]).astype(np.uint16) if blocks else np.zeros(0, np.uint16)
    vectors = Vectors(np.asarray(rows_p, np.float32).reshape(len(passages), -1), np.concatenate(rows_spans),
                      TokenStore(codebook, codes, offsets, sentences))
    return vectors, len(missing), encoded.padding


def _faiss_params(n: int) -> ExactFaiss | HnswFaiss:
    """The FAISS index for `n` passage vectors."""
    if n < APPROXIMATE_FROM:
        return ExactFaiss(approximate_from=APPROXIMATE_FROM)
    return HnswFaiss(M=HNSW_M, efConstruction=HNSW_EF_CONSTRUCTION, efSearch=HNSW_EF_SEARCH,
                     approximate_from=APPROXIMATE_FROM)


def make_faiss_index(vectors: np.ndarray, params: ExactFaiss | HnswFaiss | dict):
    """The FAISS index that `params` (from `_faiss_params`, or its old dict form) describes, filled."""
    import faiss

    if isinstance(params, dict):
        params = _FAISS_ADAPTER.validate_python(params)
    dim = vectors.shape[1]
    if isinstance(params, ExactFaiss):
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, params.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.efConstruction
        index.hnsw.efSearch = params.efSearch
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _write_generation(index_dir: Path, manifest: IndexManifest, corpus: Corpus, vectors: Vectors) -> None:
    """Write a complete new generation, fsync it, then switch CURRENT to it atomically.

    A failed write (disk full included) removes its staging folder and pointer file, so failed
    attempts do not pile up and keep the disk full.
    """
    previous = live_generation(index_dir)
    number = 1 + max([int(p.name[1:]) for p in index_dir.glob("g[0-9]*") if p.name[1:].isdigit()] or [0])
    generation = index_dir / f"g{number:06d}"
    staging = index_dir / f".tmp-g{number:06d}-{os.getpid()}"
    pointer = index_dir / f".CURRENT.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        _write_files(staging, manifest, corpus, vectors)
        os.replace(staging, generation)
        pointer.write_text(generation.name + "\n")
        _fsync(pointer)
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        pointer.unlink(missing_ok=True)
        raise
    _fsync(index_dir)
    _remove_stale(index_dir, keep={generation.name, previous.name if previous else ""})


def _write_files(staging: Path, manifest: IndexManifest, corpus: Corpus, vectors: Vectors) -> None:
    """Every file of a generation, fsynced; the manifest last, and the sources in it and beside it."""
    import faiss

    with open(staging / "passages.jsonl", "w", encoding="utf-8") as fh:
        for p in corpus.passages:
            fh.write(p.model_dump_json() + "\n")
    (staging / "documents.json").write_text(
        json.dumps([d.model_dump() for d in corpus.documents], ensure_ascii=False, indent=1), encoding="utf-8")
    np.save(staging / "vectors.npy", vectors.passages)
    np.save(staging / "sentence_spans.npy", vectors.spans)
    tokens = vectors.tokens
    for name, array in zip(TOKEN_FILES, (tokens.codes, tokens.offsets, tokens.sentences)):
        np.save(staging / name, np.ascontiguousarray(array))
    if manifest.store is None:  # a Milvus store searches the passages instead
        faiss.write_index(make_faiss_index(vectors.passages, manifest.faiss), str(staging / "faiss.index"))
    raw = manifest.raw_sources or [None] * len(manifest.sources)
    (staging / "sources.json").write_text(json.dumps({"sources": manifest.sources, "raw_sources": raw}, indent=1))
    (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    for item in staging.iterdir():
        _fsync(item)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(index_dir: Path, keep: set[str]) -> None:
    """Generations older than the previous one, and leftovers of killed builds."""
    for item in index_dir.iterdir():
        stale_generation = item.name.startswith("g") and item.name[1:].isdigit() and item.name not in keep
        if stale_generation or item.name.startswith((".tmp-g", ".CURRENT.tmp-")):
            if item.name.endswith(f"-{os.getpid()}"):
                continue
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)


def _diff(old: list[Passage], new: list[Passage]) -> tuple[int, int, int]:
    """(new, changed, removed) passages, a passage being known by its place: (document, paragraph)."""
    before = {(p.doc_id, p.paragraph): p.content_hash() for p in old}
    after = {(p.doc_id, p.paragraph): p.content_hash() for p in new}
    added = sum(1 for key in after if key not in before)
    removed = sum(1 for key in before if key not in after)
    changed = sum(1 for key, digest in after.items() if key in before and before[key] != digest)
    return added, changed, removed
